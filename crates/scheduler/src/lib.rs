//! The scheduler: decides which sites are due and queues one run for each, behind its lock.
mod daemon;
mod pass;

pub use daemon::{Scheduler, new_scheduler_id};
pub use pass::{PassError, PassStats, SchedulerStatus, run_pass, run_pass_at, status};
