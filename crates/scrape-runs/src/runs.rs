//! Scrape runs as seed 003 shows them (`scrape_runs`): the ledger row with the scrape kind's
//! columns, and the scheduler's claim of a due site together with its run.
use chrono::{DateTime, Utc};
use queue_core::StoreError;
use queue_core::Trigger;
use queue_core::store::{self, NewRun, RunStatus};
use serde::Serialize;
use sqlx::PgPool;

/// A row of `scrape_runs`.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ScrapeRun {
    pub run_id: String,
    pub site_name: String,
    pub task_id: Option<String>,
    pub trigger: Trigger,
    pub status: RunStatus,
    pub search_term: Option<String>,
    pub location: Option<String>,
    pub results_wanted: Option<i32>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub requested_pages: Option<i32>,
    pub completed_pages: Option<i32>,
    pub errors_count: Option<i32>,
    pub jobs_found: i32,
    pub jobs_inserted: i32,
    pub jobs_updated: i32,
    pub jobs_unchanged: i32,
    pub jobs_invalid: i32,
    pub attempt: i32,
    pub retries: i32,
    pub retry_at: Option<DateTime<Utc>>,
    pub worker_id: Option<String>,
    pub message: Option<String>,
    pub error_detail: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A scrape run by id; None if there is none (or the run is of another kind).
pub async fn get_scrape_run(pool: &PgPool, run_id: &str) -> Result<Option<ScrapeRun>, StoreError> {
    Ok(sqlx::query_as!(
        ScrapeRun,
        r#"SELECT run_id, site_name AS "site_name!", task_id, trigger AS "trigger: Trigger",
               status AS "status: RunStatus", search_term, location, results_wanted,
               started_at, finished_at, requested_pages, completed_pages, errors_count,
               jobs_found, jobs_inserted, jobs_updated, jobs_unchanged, jobs_invalid, attempt,
               retries, retry_at, worker_id, message, error_detail, created_at, updated_at
           FROM task_runs WHERE run_id = $1 AND kind = 'scrape'"#,
        run_id
    )
    .fetch_optional(pool)
    .await?)
}

/// Claims a due site for one run and records the run, in one transaction: the compare-and-set on
/// `next_run_at` makes two racing scheduler passes create one run, not two. Returns false when
/// another pass got there first (nothing written).
pub async fn create_scheduled_run(
    pool: &PgPool,
    site_schedule_id: uuid::Uuid,
    run: &NewRun<'_>,
    now: DateTime<Utc>,
    next_run_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await?;
    let claimed = sqlx::query!(
        "UPDATE site_schedules SET last_run_at = now(), next_run_at = $2, updated_at = now() \
         WHERE id = $1 AND enabled AND (next_run_at IS NULL OR next_run_at <= $3)",
        site_schedule_id,
        next_run_at,
        now,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if claimed == 0 {
        return Ok(false);
    }
    store::insert_run(&mut *tx, run).await?;
    tx.commit().await?;
    Ok(true)
}
