//! PostgreSQL: the ledger. `task_runs` records every run of every kind and
//! `task_run_attempts` each of its attempts; this module writes only the lifecycle's columns.
//! Kinds keep their own tables (the scrape kind's `site_schedules`, `jobs`,
//! `scrape_run_postings`, read and written by `trawl-scrape-runs`); the migrations of all of
//! them live here.
mod batched;
mod runs;
mod schedules;
mod taken;

pub use batched::{LedgerBatcher, finish_runs, start_runs};
pub use runs::{
    AttemptStatus, Failed, HELD_ROW_WAIT, NewRun, Run, RunAttempt, RunReport, RunStatus,
    StartOutcome, count_runs_by_status, create_run, fail_run, fail_run_unless_held, finish_run,
    get_run, insert_run, requeue_run, requeue_run_unless_held, retry_run, run_attempts,
    stale_active_runs, start_run,
};
pub use schedules::{
    NewRecurringTask, RecurringTask, check_recurring, claim_fire, delete_recurring, due_recurring,
    list_recurring, upsert_recurring,
};
pub use taken::{TakenRun, start_taken};

/// The schema, embedded so every binary and test migrates the same way.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");
