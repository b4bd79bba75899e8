//! A batch's stages: their audit rows (`batch_runs`) moving through running → success |
//! failed | upstream_failed | stopped, and their output records (`batch_records`).
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::StageCounts;
use crate::PipelineError;
use crate::stage::Stage;

/// `stage` and the stages after it (`with_stage` false: only those after).
fn stages_from(stage: Stage, with_stage: bool) -> Vec<String> {
    Stage::ALL
        .iter()
        .skip_while(|s| **s != stage)
        .skip(usize::from(!with_stage))
        .map(|s| s.as_str().to_owned())
        .collect()
}

/// Marks a stage running for `attempt` of `run_id`. None when the stage is past running
/// (done, failed, or its batch stopped): a redelivered or duplicate task has nothing to do.
pub async fn begin_stage(
    pool: &PgPool,
    batch_id: Uuid,
    stage: Stage,
    run_id: &str,
    attempt: i32,
) -> Result<Option<String>, PipelineError> {
    let row = sqlx::query_scalar!(
        "UPDATE batch_runs SET status = 'running', run_id = $3, attempt = $4, \
                started_at = COALESCE(started_at, now()), updated_at = now() \
         WHERE batch_id = $1 AND stage = $2 AND status IN ('queued', 'running') \
         RETURNING status",
        batch_id,
        stage.as_str(),
        run_id,
        attempt,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row)
}

/// Names the run that carries a stage, unless one is named already; returns the one named.
pub async fn assign_run(
    pool: &PgPool,
    batch_id: Uuid,
    stage: Stage,
    run_id: &str,
) -> Result<String, PipelineError> {
    Ok(sqlx::query_scalar!(
        "UPDATE batch_runs SET run_id = COALESCE(run_id, $3), updated_at = now() \
         WHERE batch_id = $1 AND stage = $2 RETURNING run_id AS \"run_id!\"",
        batch_id,
        stage.as_str(),
        run_id,
    )
    .fetch_one(pool)
    .await?)
}

/// The stage's status now.
pub async fn stage_status(
    pool: &PgPool,
    batch_id: Uuid,
    stage: Stage,
) -> Result<Option<(String, Option<String>)>, PipelineError> {
    let row = sqlx::query!(
        "SELECT status, run_id FROM batch_runs WHERE batch_id = $1 AND stage = $2",
        batch_id,
        stage.as_str()
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| (r.status, r.run_id)))
}

/// Locks the stage's row for the end of `attempt`; false when another attempt owns it or it is
/// no longer running (stopped by its SLA, ended by a newer attempt).
pub async fn lock_running(
    tx: &mut PgConnection,
    batch_id: Uuid,
    stage: Stage,
    attempt: i32,
) -> Result<bool, PipelineError> {
    Ok(sqlx::query_scalar!(
        "SELECT 1 AS \"one!\" FROM batch_runs \
         WHERE batch_id = $1 AND stage = $2 AND status = 'running' AND attempt = $3 FOR UPDATE",
        batch_id,
        stage.as_str(),
        attempt,
    )
    .fetch_optional(&mut *tx)
    .await?
    .is_some())
}

/// Replaces the stage's output records.
pub async fn write_records(
    tx: &mut PgConnection,
    batch_id: Uuid,
    stage: Stage,
    records: &[String],
) -> Result<(), PipelineError> {
    sqlx::query!(
        "DELETE FROM batch_records WHERE batch_id = $1 AND stage = $2",
        batch_id,
        stage.as_str()
    )
    .execute(&mut *tx)
    .await?;
    for (chunk_at, chunk) in records.chunks(5_000).enumerate() {
        let first = (chunk_at * 5_000) as i32;
        sqlx::query!(
            "INSERT INTO batch_records (batch_id, stage, seq, record) \
             SELECT $1, $2, $3 + ord::int - 1, r::jsonb FROM unnest($4::text[]) WITH ORDINALITY AS t(r, ord)",
            batch_id,
            stage.as_str(),
            first,
            chunk,
        )
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// A stage's output records, in order, as JSON text (decoded by `records::decode_all`).
pub async fn records(
    pool: &PgPool,
    batch_id: Uuid,
    stage: Stage,
) -> Result<Vec<String>, PipelineError> {
    Ok(sqlx::query_scalar!(
        "SELECT record::text AS \"record!\" FROM batch_records \
         WHERE batch_id = $1 AND stage = $2 ORDER BY seq",
        batch_id,
        stage.as_str()
    )
    .fetch_all(pool)
    .await?)
}

/// Ends the stage as succeeded with its figures and report, and names the run that will carry
/// the next stage (so a redelivered stage queues that same run, never a second one).
pub async fn mark_succeeded(
    tx: &mut PgConnection,
    batch_id: Uuid,
    stage: Stage,
    counts: &StageCounts,
    report: &serde_json::Value,
    next_run_id: Option<&str>,
) -> Result<(), PipelineError> {
    sqlx::query!(
        "UPDATE batch_runs SET status = 'success', jobs_collected = $3, jobs_validated = $4, \
                jobs_enriched = $5, jobs_vectorized = $6, jobs_inserted = $7, jobs_updated = $8, \
                jobs_unchanged = $9, jobs_failed = $10, report = $11, error_message = NULL, \
                error_kind = NULL, finished_at = now(), updated_at = now(), \
                execution_time_seconds = EXTRACT(EPOCH FROM clock_timestamp() - started_at)::float8 \
         WHERE batch_id = $1 AND stage = $2",
        batch_id,
        stage.as_str(),
        counts.collected,
        counts.validated,
        counts.enriched,
        counts.vectorized,
        counts.inserted,
        counts.updated,
        counts.unchanged,
        counts.failed,
        report,
    )
    .execute(&mut *tx)
    .await?;
    if let Some(next) = stage.next() {
        sqlx::query!(
            "UPDATE batch_runs SET run_id = $3, updated_at = now() \
             WHERE batch_id = $1 AND stage = $2 AND run_id IS NULL",
            batch_id,
            next.as_str(),
            next_run_id,
        )
        .execute(&mut *tx)
        .await?;
    } else {
        sqlx::query!(
            "UPDATE batches SET status = 'success', finished_at = now() WHERE batch_id = $1",
            batch_id
        )
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Notes a failed attempt that will be retried.
pub async fn note_retry(
    pool: &PgPool,
    batch_id: Uuid,
    stage: Stage,
    attempt: i32,
    message: &str,
) -> Result<(), PipelineError> {
    sqlx::query!(
        "UPDATE batch_runs SET error_message = $4, error_kind = 'transient', updated_at = now() \
         WHERE batch_id = $1 AND stage = $2 AND attempt = $3 AND status = 'running'",
        batch_id,
        stage.as_str(),
        attempt,
        message,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Ends a batch at `stage` with `status` (failed, or stopped by its SLA): the stage gets the
/// error, every later stage `upstream_failed`, the batch the same status. Returns false when
/// the stage had already ended (someone else ended it first).
pub async fn end_batch_at(
    pool: &PgPool,
    batch_id: Uuid,
    stage: Stage,
    status: &str,
    error_kind: &str,
    message: &str,
) -> Result<bool, PipelineError> {
    let mut tx = pool.begin().await?;
    let ended = sqlx::query!(
        "UPDATE batch_runs SET status = $3, error_kind = $4, error_message = $5, \
                finished_at = now(), updated_at = now(), \
                execution_time_seconds = EXTRACT(EPOCH FROM clock_timestamp() - COALESCE(started_at, now()))::float8 \
         WHERE batch_id = $1 AND stage = $2 AND status IN ('queued', 'running')",
        batch_id,
        stage.as_str(),
        status,
        error_kind,
        message,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if ended {
        let later = stages_from(stage, false);
        sqlx::query!(
            "UPDATE batch_runs SET status = 'upstream_failed', updated_at = now() \
             WHERE batch_id = $1 AND stage = ANY($2) AND status IN ('queued', 'running')",
            batch_id,
            &later,
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "UPDATE batches SET status = $2, finished_at = now() WHERE batch_id = $1 AND status = 'running'",
            batch_id,
            status,
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(ended)
}

/// Puts a failed or stopped batch back to running from `stage` on (Airflow's "clear task"):
/// that stage and the later ones queued again with no run. Returns false when the batch is not
/// failed/stopped or `stage` comes after the stage that failed.
pub async fn clear_from(
    pool: &PgPool,
    batch_id: Uuid,
    stage: Stage,
) -> Result<bool, PipelineError> {
    let mut tx = pool.begin().await?;
    let from = stages_from(stage, true);
    let earlier_ok = sqlx::query_scalar!(
        "SELECT coalesce(bool_and(status = 'success'), true) AS \"ok!\" FROM batch_runs \
         WHERE batch_id = $1 AND stage <> ALL($2) AND stage <> 'rollback'",
        batch_id,
        &from,
    )
    .fetch_one(&mut *tx)
    .await?;
    let reopened = sqlx::query!(
        "UPDATE batches SET status = 'running', finished_at = NULL, sla_alerted = false, \
                started_at = now() \
         WHERE batch_id = $1 AND status IN ('failed', 'stopped')",
        batch_id
    )
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !(reopened && earlier_ok) {
        return Ok(false);
    }
    sqlx::query!(
        "UPDATE batch_runs SET status = 'queued', run_id = NULL, attempt = 0, error_kind = NULL, \
                error_message = NULL, started_at = NULL, finished_at = NULL, report = NULL, \
                execution_time_seconds = NULL, slow_alerted = false, updated_at = now() \
         WHERE batch_id = $1 AND stage = ANY($2)",
        batch_id,
        &from,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Marks the stage's slow alert raised; false when it was already.
pub async fn claim_stage_alert(
    pool: &PgPool,
    batch_id: Uuid,
    stage: Stage,
) -> Result<bool, PipelineError> {
    Ok(sqlx::query!(
        "UPDATE batch_runs SET slow_alerted = true WHERE batch_id = $1 AND stage = $2 AND NOT slow_alerted",
        batch_id,
        stage.as_str()
    )
    .execute(pool)
    .await?
    .rows_affected()
        == 1)
}

/// Marks the batch's slow alert raised; false when it was already.
pub async fn claim_batch_alert(pool: &PgPool, batch_id: Uuid) -> Result<bool, PipelineError> {
    Ok(sqlx::query!(
        "UPDATE batches SET sla_alerted = true WHERE batch_id = $1 AND NOT sla_alerted",
        batch_id
    )
    .execute(pool)
    .await?
    .rows_affected()
        == 1)
}
