mod endpoints;
mod hardening;
mod helpers;
mod metrics;
mod postings;
mod scrape;
