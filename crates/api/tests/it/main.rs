mod endpoints;
mod hardening;
mod helpers;
mod metrics;
mod scrape;
