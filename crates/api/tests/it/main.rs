mod endpoints;
mod hardening;
mod helpers;
mod scrape;
