//! Seed 002's monitoring queries: the latest batch's stages, the success rate per day over
//! the last 7 days, time per stage over 30 days, and the recent errors.
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::PipelineError;
use crate::store::{self, Batch, BatchRun};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LatestBatch {
    pub batch: Batch,
    pub stages: Vec<BatchRun>,
}

/// The latest batch of `pipeline` (of any, when None) with its stages.
pub async fn latest_batch(
    pool: &PgPool,
    pipeline: Option<&str>,
) -> Result<Option<LatestBatch>, PipelineError> {
    let Some(batch) = store::list_batches(pool, pipeline, 1)
        .await?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    let stages = store::batch_runs(pool, batch.batch_id).await?;
    Ok(Some(LatestBatch { batch, stages }))
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DailySuccess {
    pub batch_date: NaiveDate,
    pub total_runs: i64,
    pub successful: i64,
    pub success_rate: f64,
}

/// Stage runs per day and how many succeeded, last 7 days (seed 002's query).
pub async fn success_rate(pool: &PgPool) -> Result<Vec<DailySuccess>, PipelineError> {
    Ok(sqlx::query_as!(
        DailySuccess,
        "SELECT batch_date, count(*) AS \"total_runs!\", \
                count(*) FILTER (WHERE status = 'success') AS \"successful!\", \
                round(100.0 * count(*) FILTER (WHERE status = 'success') / count(*), 1)::float8 AS \"success_rate!\" \
         FROM batch_runs WHERE batch_date >= CURRENT_DATE - 7 AND stage <> 'rollback' \
         GROUP BY batch_date ORDER BY batch_date DESC"
    )
    .fetch_all(pool)
    .await?)
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StageTimes {
    pub stage: String,
    pub runs: i64,
    pub avg_sec: f64,
    pub max_sec: f64,
}

/// Average and longest successful time per stage, last 30 days.
pub async fn stage_times(pool: &PgPool) -> Result<Vec<StageTimes>, PipelineError> {
    Ok(sqlx::query_as!(
        StageTimes,
        "SELECT stage, count(*) AS \"runs!\", \
                round(avg(execution_time_seconds)::numeric, 2)::float8 AS \"avg_sec!\", \
                max(execution_time_seconds) AS \"max_sec!\" \
         FROM batch_runs WHERE status = 'success' AND batch_date >= CURRENT_DATE - 30 \
             AND stage <> 'rollback' AND execution_time_seconds IS NOT NULL \
         GROUP BY stage ORDER BY 3 DESC"
    )
    .fetch_all(pool)
    .await?)
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StageError {
    pub batch_id: Uuid,
    pub batch_date: NaiveDate,
    pub stage: String,
    pub status: String,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The last 10 failed or stopped stages.
pub async fn recent_errors(pool: &PgPool) -> Result<Vec<StageError>, PipelineError> {
    Ok(sqlx::query_as!(
        StageError,
        "SELECT batch_id, batch_date, stage, status, error_kind, error_message, created_at \
         FROM batch_runs WHERE status IN ('failed', 'stopped') ORDER BY updated_at DESC LIMIT 10"
    )
    .fetch_all(pool)
    .await?)
}
