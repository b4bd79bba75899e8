//! PostgreSQL: the ledger. `scrape_runs` records every run and `scrape_run_attempts` each of its
//! attempts. The scrape kind's own tables (`site_schedules`, `jobs`, `scrape_run_postings`) are
//! read and written by `trawl-scrape-runs`; the migrations of all of them live here.
mod runs;

pub use runs::{
    AttemptStatus, NewRun, RunAttempt, RunReport, RunStatus, ScrapeRun, StartOutcome,
    count_runs_by_status, create_run, create_scheduled_run, fail_run, finish_run, get_run,
    requeue_run, retry_run, run_attempts, stale_active_runs, start_run,
};

/// The schema, embedded so every binary and test migrates the same way.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");
