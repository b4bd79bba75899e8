//! PostgreSQL: the ledger. `site_schedules` says what to scrape and when, `scrape_runs` records
//! every run, `jobs` holds the postings and `scrape_run_postings` links each run to what it saw.
mod jobs;
mod runs;
mod sites;

pub use jobs::{PostingOutcome, RunPosting, run_postings, upsert_page};
pub use runs::{
    AttemptStatus, NewRun, RunAttempt, RunReport, RunStatus, ScrapeRun, StartOutcome,
    count_runs_by_status, create_run, create_scheduled_run, fail_run, finish_run, get_run,
    requeue_run, retry_run, run_attempts, stale_active_runs, start_run,
};
pub use sites::{NewSite, SiteSchedule, due_sites, get_site, list_sites, upsert_site};

/// The schema, embedded so every binary and test migrates the same way.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");
