//! One scheduler pass, as the scheduler daemon's leader and `POST /scheduler/run` both run it:
//! recover dead workers' tasks, promote due retries, reconcile the ledger with Redis, and queue
//! one run for each site and each recurring task that is due, behind its lock; then sweep the
//! pipelines' batches (SLAs, stages whose run ended outside them).
mod pass;
mod recurring;

pub use pass::{
    PassError, PassStats, SchedulerStatus, run_pass, run_pass_alerting, run_pass_at, status,
};
