mod endpoints;
mod helpers;
mod scrape;
