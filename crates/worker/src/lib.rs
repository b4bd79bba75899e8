//! The worker: takes tasks, scrapes their sites, stores the postings and records each run.
mod config;
mod outcome;
mod settings;
mod worker;

pub use config::WorkerConfig;
pub use outcome::{Outcome, Processed, WorkerError};
pub use settings::{WorkerSettings, new_worker_id};
pub use trawl_scrape_runs::{Ended, Executor, retry_delay};
pub use worker::Worker;
