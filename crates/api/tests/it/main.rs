mod dashboard;
mod endpoints;
mod hardening;
mod helpers;
mod metrics;
mod openapi;
mod postings;
mod scrape;
