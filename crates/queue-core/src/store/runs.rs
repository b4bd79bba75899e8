use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{StoreError, Trigger};

mod ending;

pub use ending::{
    Failed, HELD_ROW_WAIT, RunReport, fail_run, fail_run_unless_held, finish_run, requeue_run,
    requeue_run_unless_held, retry_run,
};

/// `task_runs.status` (a CHECK constraint in PostgreSQL keeps the same five values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    Partial,
    Failed,
}

/// Compares with the spelling PostgreSQL stores (`run.status == "failed"`).
impl PartialEq<&str> for RunStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RunStatus {
    /// Every status, in the order a run can pass through them.
    pub const ALL: [RunStatus; 5] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Partial,
        RunStatus::Failed,
    ];

    /// The status spelled as PostgreSQL stores it; None for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Partial | RunStatus::Failed
        )
    }
}

/// A row of `task_runs`: the lifecycle columns every kind shares.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Run {
    pub run_id: String,
    pub kind: String,
    pub queue: String,
    pub task_id: Option<String>,
    pub trigger: Trigger,
    pub status: RunStatus,
    pub payload: serde_json::Value,
    pub result: serde_json::Value,
    pub lock_key: Option<String>,
    pub max_retries: i32,
    pub attempt: i32,
    pub retries: i32,
    pub retry_at: Option<DateTime<Utc>>,
    pub worker_id: Option<String>,
    pub message: Option<String>,
    pub error_detail: serde_json::Value,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A run about to be queued.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub run_id: &'a str,
    pub kind: &'a str,
    pub queue: &'a str,
    pub task_id: &'a str,
    pub trigger: Trigger,
    pub payload: &'a serde_json::Map<String, serde_json::Value>,
    /// The exclusive key the run holds while it is active (a scrape's: its site), released by
    /// every way the run ends.
    pub lock_key: Option<&'a str>,
    /// How many times a transiently failed attempt may be retried.
    pub max_retries: u32,
}

/// Records a `queued` run; inside a caller's transaction when it must commit with other writes.
pub async fn insert_run(
    executor: impl sqlx::PgExecutor<'_>,
    run: &NewRun<'_>,
) -> Result<(), StoreError> {
    sqlx::query!(
        "INSERT INTO task_runs (id, run_id, kind, queue, task_id, trigger, payload, lock_key, \
             max_retries) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        Uuid::new_v4(),
        run.run_id,
        run.kind,
        run.queue,
        run.task_id,
        run.trigger.as_str(),
        serde_json::Value::Object(run.payload.clone()),
        run.lock_key,
        run.max_retries.min(100) as i32,
    )
    .execute(executor)
    .await?;
    Ok(())
}

pub async fn create_run(pool: &PgPool, run: &NewRun<'_>) -> Result<(), StoreError> {
    insert_run(pool, run).await
}

pub async fn get_run(pool: &PgPool, run_id: &str) -> Result<Option<Run>, StoreError> {
    Ok(sqlx::query_as!(
        Run,
        r#"SELECT run_id, kind, queue, task_id, trigger AS "trigger: Trigger",
               status AS "status: RunStatus", payload, result, lock_key, max_retries, attempt,
               retries, retry_at, worker_id, message, error_detail, started_at, finished_at,
               created_at, updated_at
           FROM task_runs WHERE run_id = $1"#,
        run_id
    )
    .fetch_optional(pool)
    .await?)
}

/// What happened when a worker tried to start a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    /// The run is now `running`; this is its n-th start.
    Started { attempt: i32 },
    /// The run already ended (a duplicate delivery): nothing to do.
    AlreadyFinished { status: RunStatus },
    /// No such run.
    Missing,
    /// Another transaction holds the run's row, so nothing changed: try again later. A worker
    /// cut off mid-transaction keeps the rows it wrote locked until PostgreSQL ends its
    /// session (`idle_in_transaction_session_timeout`, 30 s and more); a start waiting for
    /// one would hold up everything behind it.
    Busy,
}

/// Marks a run `running` as its next attempt and records the attempt. Only a `queued` or
/// `running` run (a redelivery) can start, so a task delivered after its run ended changes
/// nothing. The attempt number returned is the caller's token: every later change to the run by
/// this worker is compare-and-set on it, so a worker whose task was recovered and started again
/// elsewhere cannot overwrite the newer attempt's result. A row another transaction holds is
/// not waited for (`Busy`).
pub async fn start_run(
    pool: &PgPool,
    run_id: &str,
    task_id: &str,
    worker_id: &str,
) -> Result<StartOutcome, StoreError> {
    let mut tx = pool.begin().await?;
    let outcome = start_in(&mut tx, run_id, task_id, worker_id).await?;
    tx.commit().await?;
    Ok(outcome)
}

async fn start_in(
    tx: &mut sqlx::PgConnection,
    run_id: &str,
    task_id: &str,
    worker_id: &str,
) -> Result<StartOutcome, StoreError> {
    // Locked first, SKIP LOCKED, as `start_many` does: an UPDATE alone would wait.
    let started = sqlx::query_scalar!(
        "UPDATE task_runs SET status = 'running', started_at = now(), task_id = $2, \
             worker_id = $3, attempt = attempt + 1, retry_at = NULL, message = NULL, \
             updated_at = now() \
         WHERE run_id = (SELECT run_id FROM task_runs \
             WHERE run_id = $1 AND status IN ('queued', 'running') FOR NO KEY UPDATE SKIP LOCKED) \
         RETURNING attempt",
        run_id,
        task_id,
        worker_id,
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(attempt) = started {
        sqlx::query!(
            "UPDATE task_run_attempts SET status = 'abandoned', finished_at = now(), \
                 message = 'attempt ' || $2::int || ' started while this one was still running' \
             WHERE run_id = $1 AND status = 'running'",
            run_id,
            attempt,
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "INSERT INTO task_run_attempts (run_id, attempt, worker_id) VALUES ($1, $2, $3)",
            run_id,
            attempt,
            worker_id,
        )
        .execute(&mut *tx)
        .await?;
        return Ok(StartOutcome::Started { attempt });
    }
    let status = sqlx::query_scalar!(
        r#"SELECT status AS "status: RunStatus" FROM task_runs WHERE run_id = $1"#,
        run_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    // Startable yet not started: the row was held (read again now, it may have ended since).
    Ok(match status {
        Some(RunStatus::Queued | RunStatus::Running) => StartOutcome::Busy,
        Some(status) => StartOutcome::AlreadyFinished { status },
        None => StartOutcome::Missing,
    })
}

/// `task_run_attempts.status` (CHECKed to these values in PostgreSQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum AttemptStatus {
    /// In progress.
    Running,
    Succeeded,
    Partial,
    Failed,
    /// A later attempt started while this one was still marked running (its worker died or
    /// stalled), or its task went back to the queue.
    Abandoned,
}

impl AttemptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::Running => "running",
            AttemptStatus::Succeeded => "succeeded",
            AttemptStatus::Partial => "partial",
            AttemptStatus::Failed => "failed",
            AttemptStatus::Abandoned => "abandoned",
        }
    }
}

impl From<RunStatus> for AttemptStatus {
    /// How an attempt ended when it ended its run with `status`.
    fn from(status: RunStatus) -> Self {
        match status {
            RunStatus::Succeeded => AttemptStatus::Succeeded,
            RunStatus::Partial => AttemptStatus::Partial,
            RunStatus::Failed => AttemptStatus::Failed,
            RunStatus::Queued | RunStatus::Running => AttemptStatus::Running,
        }
    }
}

/// One attempt of a run.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct RunAttempt {
    pub attempt: i32,
    pub worker_id: Option<String>,
    pub status: AttemptStatus,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub retried: bool,
    pub message: Option<String>,
}

/// A run's attempts, first first.
pub async fn run_attempts(pool: &PgPool, run_id: &str) -> Result<Vec<RunAttempt>, StoreError> {
    Ok(sqlx::query_as!(
        RunAttempt,
        r#"SELECT attempt, worker_id, status AS "status: AttemptStatus", started_at,
               finished_at, retried, message
           FROM task_run_attempts WHERE run_id = $1 ORDER BY attempt"#,
        run_id
    )
    .fetch_all(pool)
    .await?)
}

/// How many runs are in each status.
pub async fn count_runs_by_status(pool: &PgPool) -> Result<Vec<(String, i64)>, StoreError> {
    let rows = sqlx::query!(
        r#"SELECT status, count(*) AS "runs!" FROM task_runs GROUP BY status ORDER BY status"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|row| (row.status, row.runs)).collect())
}

/// `queued` or `running` runs untouched for longer than `grace`, oldest first.
pub async fn stale_active_runs(
    pool: &PgPool,
    grace: std::time::Duration,
) -> Result<Vec<Run>, StoreError> {
    Ok(sqlx::query_as!(
        Run,
        r#"SELECT run_id, kind, queue, task_id, trigger AS "trigger: Trigger",
               status AS "status: RunStatus", payload, result, lock_key, max_retries, attempt,
               retries, retry_at, worker_id, message, error_detail, started_at, finished_at,
               created_at, updated_at
           FROM task_runs WHERE finished_at IS NULL AND status IN ('queued', 'running')
             AND updated_at < now() - make_interval(secs => $1)
           ORDER BY updated_at LIMIT 1000"#,
        grace.as_secs_f64()
    )
    .fetch_all(pool)
    .await?)
}
