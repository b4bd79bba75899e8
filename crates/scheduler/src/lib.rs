//! The scheduler: decides which sites are due and queues one run for each, behind its lock.
mod config;
mod daemon;

pub use config::SchedulerConfig;
pub use daemon::{Scheduler, new_scheduler_id};
pub use trawl_schedule::{
    PassError, PassStats, SchedulerStatus, run_pass, run_pass_alerting, run_pass_at, status,
};
