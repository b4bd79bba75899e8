//! The scrape kind: its task (`ScrapeTask`), its handler (scrape a site through
//! `trawl-scrape`, store each page's postings as they arrive), its tables (sites and their
//! schedules, postings and their links to runs) and the Redis adapters its scraper uses.
mod handler;
pub mod postings;
pub mod recent;
mod redis_limits;
pub mod runs;
pub mod search;
pub mod sites;
pub mod task;

pub use handler::ScrapeHandler;
pub use redis_limits::{RedisBrowserSlots, RedisDomainPacer};
pub use runs::{ScrapeRun, get_scrape_run};
pub use task::{KIND, QUEUE, ScrapeTask, plan_for};
