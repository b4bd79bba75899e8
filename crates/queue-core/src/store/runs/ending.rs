//! How a run ends, or goes back to wait: finished by its attempt, retried later, failed from
//! outside, requeued. Every write is compare-and-set. A kind's own columns follow from what is
//! written here (the scrape kind's trigger counts its postings on every end).
use std::time::Duration;

use sqlx::PgPool;

use super::{AttemptStatus, RunStatus};
use crate::StoreError;

/// What an attempt reports when it ends, whatever its kind.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub status: RunStatus,
    pub message: String,
    /// Why it failed, in detail (the pages that failed, the postings refused...).
    pub error_detail: serde_json::Value,
    /// The kind's figures (`task_runs.result`): a scrape's pages and refused postings.
    pub result: serde_json::Value,
}

impl RunReport {
    /// A failed attempt that has only a message to show.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            status: RunStatus::Failed,
            message: message.into(),
            error_detail: serde_json::json!({}),
            result: serde_json::json!({}),
        }
    }
}

/// Writes a run's terminal status, if `attempt` is still the run's current attempt and it is
/// running (compare-and-set). Returns false if the run was not running this attempt.
pub async fn finish_run(
    pool: &PgPool,
    run_id: &str,
    attempt: i32,
    report: &RunReport,
) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await?;
    let updated = sqlx::query!(
        "UPDATE task_runs SET status = $3, finished_at = now(), message = $4, \
             error_detail = $5, result = $6, updated_at = now() \
         WHERE run_id = $1 AND attempt = $2 AND status = 'running'",
        run_id,
        attempt,
        report.status.as_str(),
        report.message,
        report.error_detail,
        report.result,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated == 1 {
        end_attempt(
            &mut tx,
            run_id,
            attempt,
            report.status.into(),
            &report.message,
            false,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(updated == 1)
}

/// Puts a run whose attempt failed transiently back to `queued` if it has retries left
/// (`retries < max_retries`, the budget recorded with the run) and `attempt` is still its current attempt (compare-and-set).
/// `delay_for(n)` says how long the n-th retry waits. Returns the retry number and its delay, or
/// None when the run must end instead.
pub async fn retry_run(
    pool: &PgPool,
    run_id: &str,
    attempt: i32,
    delay_for: impl FnOnce(i32) -> std::time::Duration,
    report: &RunReport,
) -> Result<Option<(i32, std::time::Duration)>, StoreError> {
    let mut tx = pool.begin().await?;
    let retry = sqlx::query!(
        r#"UPDATE task_runs SET status = 'queued', retries = retries + 1, updated_at = now()
           WHERE run_id = $1 AND attempt = $2 AND status = 'running' AND retries < max_retries
           RETURNING retries AS "retries!", max_retries AS "max_retries!""#,
        run_id,
        attempt,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some((retry, max_retries)) = retry.map(|row| (row.retries, row.max_retries)) else {
        return Ok(None);
    };
    let delay = delay_for(retry);
    let message = format!(
        "attempt {attempt} failed, retry {retry} of {max_retries} in {:.1} s: {}",
        delay.as_secs_f64(),
        report.message
    );
    sqlx::query!(
        "UPDATE task_runs SET retry_at = now() + make_interval(secs => $2), message = $3, \
             error_detail = $4, result = $5 \
         WHERE run_id = $1",
        run_id,
        delay.as_secs_f64(),
        message,
        report.error_detail,
        report.result,
    )
    .execute(&mut *tx)
    .await?;
    end_attempt(
        &mut tx,
        run_id,
        attempt,
        AttemptStatus::Failed,
        &report.message,
        true,
    )
    .await?;
    tx.commit().await?;
    Ok(Some((retry, delay)))
}

async fn end_attempt(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    run_id: &str,
    attempt: i32,
    status: AttemptStatus,
    message: &str,
    retried: bool,
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE task_run_attempts SET status = $3, finished_at = now(), message = $4, \
             retried = $5 \
         WHERE run_id = $1 AND attempt = $2",
        run_id,
        attempt,
        status as AttemptStatus,
        message,
        retried,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Fails a run that has not ended, with the reason. Returns false if it had already ended.
/// Used by whoever has authority over the run as a whole (reconciler, recovery, cancel, a
/// worker that cannot start it); a worker ending its own attempt uses `finish_run`.
///
/// Returns the run's lock key (which the caller releases: `queue_core::fail_run` does both), or
/// None if the run had already ended.
pub async fn fail_run(
    pool: &PgPool,
    run_id: &str,
    message: &str,
) -> Result<Option<Failed>, StoreError> {
    fail(pool, run_id, message, RowWait::AsLongAsItTakes).await
}

/// `fail_run` for a writer that should not wait long on a session holding the run's row (an
/// operator's cancel, the reconciler): gives up after `wait` with `StoreError::RowHeld`,
/// nothing changed.
pub async fn fail_run_unless_held(
    pool: &PgPool,
    run_id: &str,
    message: &str,
    wait: Duration,
) -> Result<Option<Failed>, StoreError> {
    fail(pool, run_id, message, RowWait::AtMost(wait)).await
}

async fn fail(
    pool: &PgPool,
    run_id: &str,
    message: &str,
    wait: RowWait,
) -> Result<Option<Failed>, StoreError> {
    let mut tx = pool.begin().await?;
    wait.apply(&mut tx).await?;
    let ended = sqlx::query!(
        "UPDATE task_runs SET status = 'failed', finished_at = now(), message = $2, \
             updated_at = now() \
         WHERE run_id = $1 AND status IN ('queued', 'running') RETURNING attempt, lock_key",
        run_id,
        message,
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(|err| held_or(err, run_id))?;
    if let Some(row) = &ended {
        close_running_attempt(&mut tx, run_id, row.attempt, AttemptStatus::Failed, message).await?;
    }
    tx.commit().await?;
    Ok(ended.map(|row| Failed {
        lock_key: row.lock_key,
    }))
}

/// How long an operator's cancel waits when another session holds the run's row. A worker's
/// ledger flush holds rows for milliseconds; a session cut off mid-transaction holds them until
/// PostgreSQL ends it (DATABASE_IDLE_IN_TRANSACTION_TIMEOUT, 30 s by default), and a cancel
/// should not hang that long.
pub const HELD_ROW_WAIT: Duration = Duration::from_secs(2);

#[derive(Clone, Copy)]
enum RowWait {
    AsLongAsItTakes,
    AtMost(Duration),
}

impl RowWait {
    async fn apply(self, tx: &mut sqlx::Transaction<'_, sqlx::Postgres>) -> Result<(), StoreError> {
        if let RowWait::AtMost(wait) = self {
            // lock_timeout 0 would mean "wait forever": at least a millisecond.
            let millis = wait.as_millis().max(1).to_string();
            // For this transaction only (`is_local`): the pool's connection keeps its default.
            sqlx::query!("SELECT set_config('lock_timeout', $1, true)", millis)
                .fetch_one(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

/// `lock_not_available` (55P03): the bounded wait for a held row ran out.
fn held_or(err: sqlx::Error, run_id: &str) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("55P03") => StoreError::RowHeld {
            run_id: run_id.to_owned(),
        },
        _ => err.into(),
    }
}

/// A run `fail_run` ended.
#[derive(Debug, Clone)]
pub struct Failed {
    /// The exclusive key the run held, to release.
    pub lock_key: Option<String>,
}

/// Ends the attempt if it is still marked running (it may never have started).
async fn close_running_attempt(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    run_id: &str,
    attempt: i32,
    status: AttemptStatus,
    message: &str,
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE task_run_attempts SET status = $3, finished_at = now(), message = $4 \
         WHERE run_id = $1 AND attempt = $2 AND status = 'running'",
        run_id,
        attempt,
        status as AttemptStatus,
        message,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Puts a run back to `queued` with the reason (its task went back to the queue). With
/// `attempt`, only if that is still the run's current attempt (a worker giving back its own
/// task); without, whatever attempt it is at.
pub async fn requeue_run(
    pool: &PgPool,
    run_id: &str,
    attempt: Option<i32>,
    message: &str,
) -> Result<bool, StoreError> {
    requeue(pool, run_id, attempt, message, RowWait::AsLongAsItTakes).await
}

/// `requeue_run` at whatever attempt, for the reconciler: gives up after `wait` with
/// `StoreError::RowHeld` when another session holds the row, nothing changed.
pub async fn requeue_run_unless_held(
    pool: &PgPool,
    run_id: &str,
    message: &str,
    wait: Duration,
) -> Result<bool, StoreError> {
    requeue(pool, run_id, None, message, RowWait::AtMost(wait)).await
}

async fn requeue(
    pool: &PgPool,
    run_id: &str,
    attempt: Option<i32>,
    message: &str,
    wait: RowWait,
) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await?;
    wait.apply(&mut tx).await?;
    let requeued = sqlx::query_scalar!(
        "UPDATE task_runs SET status = 'queued', message = $2, updated_at = now() \
         WHERE run_id = $1 AND status IN ('queued', 'running') \
             AND ($3::int IS NULL OR attempt = $3) RETURNING attempt",
        run_id,
        message,
        attempt,
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(|err| held_or(err, run_id))?;
    if let Some(attempt) = requeued {
        close_running_attempt(&mut tx, run_id, attempt, AttemptStatus::Abandoned, message).await?;
    }
    tx.commit().await?;
    Ok(requeued.is_some())
}
