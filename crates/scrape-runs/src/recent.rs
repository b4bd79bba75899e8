//! Runs of every kind, newest first, with the scrape kind's counts where a run has them,
//! filtered by site, kind and status, a page at a time: the dashboard's runs table, the API's
//! `GET /runs` and `trawl runs list`.
use chrono::{DateTime, Utc};
use queue_core::store::RunStatus;
use queue_core::{StoreError, Trigger};
use serde::Serialize;
use sqlx::PgPool;

/// Most runs on one page.
pub const MAX_RUNS_PAGE: i64 = 500;

/// Which runs: every filter optional.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub site: Option<String>,
    pub kind: Option<String>,
    pub status: Option<RunStatus>,
    /// The page after this position (from the previous page's `next`).
    pub after: Option<RunPosition>,
}

/// Where a page ended: the last run's `(created_at, run_id)`, the order runs are listed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunPosition {
    pub created_at: DateTime<Utc>,
    pub run_id: String,
}

impl RunPosition {
    /// The cursor a client sends back: `<created_at in µs>.<run_id>`.
    pub fn to_cursor(&self) -> String {
        format!("{}.{}", self.created_at.timestamp_micros(), self.run_id)
    }

    /// A cursor `to_cursor` made; None for anything else.
    pub fn from_cursor(cursor: &str) -> Option<Self> {
        let (micros, run_id) = cursor.split_once('.')?;
        if run_id.is_empty() || queue_core::check_text("cursor", run_id).is_err() {
            return None;
        }
        Some(Self {
            created_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            run_id: run_id.to_owned(),
        })
    }
}

/// One run as a list shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecentRun {
    pub run_id: String,
    pub kind: String,
    pub queue: String,
    pub trigger: Trigger,
    /// A scrape's site; none for other kinds.
    pub site_name: Option<String>,
    pub status: RunStatus,
    /// The attempt now or last running (0: never started).
    pub attempt: i32,
    /// A scrape's postings: found, new and updated (0 for other kinds).
    pub jobs_found: i32,
    pub jobs_inserted: i32,
    pub jobs_updated: i32,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Why it failed or was retried, or how it ended.
    pub message: Option<String>,
}

/// A page of runs and the cursor of the next, if there are more.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunPage {
    pub runs: Vec<RecentRun>,
    pub next: Option<String>,
}

/// The newest `limit` runs matching `filter`.
pub async fn recent_runs(
    pool: &PgPool,
    filter: &RunFilter,
    limit: i64,
) -> Result<Vec<RecentRun>, StoreError> {
    let (after_created, after_run) = match &filter.after {
        Some(position) => (Some(position.created_at), Some(position.run_id.as_str())),
        None => (None, None),
    };
    Ok(sqlx::query_as!(
        RecentRun,
        r#"SELECT run_id, kind, queue, trigger AS "trigger: Trigger", site_name,
                  status AS "status: RunStatus", attempt, jobs_found, jobs_inserted,
                  jobs_updated, created_at, started_at, finished_at, message
           FROM task_runs
           WHERE ($1::text IS NULL OR site_name = $1)
             AND ($2::text IS NULL OR kind = $2)
             AND ($3::text IS NULL OR status = $3)
             AND ($4::timestamptz IS NULL OR (created_at, run_id) < ($4, $5::text))
           ORDER BY created_at DESC, run_id DESC
           LIMIT $6"#,
        filter.site,
        filter.kind,
        filter.status.map(|status| status.as_str()),
        after_created,
        after_run,
        limit,
    )
    .fetch_all(pool)
    .await?)
}

/// A page of `limit` runs matching `filter` (`limit` at most `MAX_RUNS_PAGE`), with the
/// cursor of the next page when there is one.
pub async fn runs_page(
    pool: &PgPool,
    filter: &RunFilter,
    limit: i64,
) -> Result<RunPage, StoreError> {
    let limit = limit.clamp(1, MAX_RUNS_PAGE);
    let mut runs = recent_runs(pool, filter, limit + 1).await?;
    let more = runs.len() as i64 > limit;
    runs.truncate(limit as usize);
    let next = more.then(|| runs.last()).flatten().map(|last| {
        RunPosition {
            created_at: last.created_at,
            run_id: last.run_id.clone(),
        }
        .to_cursor()
    });
    Ok(RunPage { runs, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_anything_else_is_refused() {
        let position = RunPosition {
            created_at: DateTime::from_timestamp_micros(1_795_000_000_123_456).unwrap(),
            run_id: "manual_1a2b.3c".into(),
        };
        assert_eq!(
            RunPosition::from_cursor(&position.to_cursor()),
            Some(position)
        );
        for bad in [
            "",
            "12",
            "12.",
            "x.run",
            "99999999999999999999.run",
            "12.a\0b",
        ] {
            assert_eq!(RunPosition::from_cursor(bad), None, "{bad:?}");
        }
    }
}
