//! The worker: takes tasks, scrapes their sites, stores the postings and records each run.
mod config;
mod execute;
mod outcome;
mod settings;
mod worker;

pub use config::WorkerConfig;
pub use execute::{Ended, Executor, retry_delay};
pub use outcome::{Outcome, Processed, WorkerError};
pub use settings::{WorkerSettings, new_worker_id};
pub use worker::Worker;
