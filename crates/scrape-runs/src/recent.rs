//! Recent runs of every kind for the dashboard, with the scrape kind's counts where a run has
//! them, filtered by site, kind and status.
use chrono::{DateTime, Utc};
use queue_core::StoreError;
use queue_core::store::RunStatus;
use serde::Serialize;
use sqlx::PgPool;

/// Which runs: every filter optional.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub site: Option<String>,
    pub kind: Option<String>,
    pub status: Option<RunStatus>,
}

/// One line of the runs table.
#[derive(Debug, Clone, Serialize)]
pub struct RecentRun {
    pub run_id: String,
    pub kind: String,
    pub site_name: Option<String>,
    pub status: RunStatus,
    pub attempt: i32,
    pub jobs_found: i32,
    pub jobs_inserted: i32,
    pub jobs_updated: i32,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub message: Option<String>,
}

/// The newest `limit` runs matching `filter`.
pub async fn recent_runs(
    pool: &PgPool,
    filter: &RunFilter,
    limit: i64,
) -> Result<Vec<RecentRun>, StoreError> {
    Ok(sqlx::query_as!(
        RecentRun,
        r#"SELECT run_id, kind, site_name, status AS "status: RunStatus", attempt, jobs_found,
                  jobs_inserted, jobs_updated, created_at, started_at, finished_at, message
           FROM task_runs
           WHERE ($1::text IS NULL OR site_name = $1)
             AND ($2::text IS NULL OR kind = $2)
             AND ($3::text IS NULL OR status = $3)
           ORDER BY created_at DESC
           LIMIT $4"#,
        filter.site,
        filter.kind,
        filter.status.map(|status| status.as_str()),
        limit,
    )
    .fetch_all(pool)
    .await?)
}
