//! The pipeline's tables: `pipelines`, `batches`, `batch_runs` (the audit) and `batch_records`
//! (each stage's output, keyed by batch).
use chrono::{DateTime, NaiveDate, Utc};
use queue_core::Trigger;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::PipelineError;
use crate::definition::PipelineDefinition;
use crate::stage::Stage;

mod stages;

pub use stages::*;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Pipeline {
    pub name: String,
    pub definition: PipelineDefinition,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Batch {
    pub batch_id: Uuid,
    pub pipeline: String,
    pub batch_date: NaiveDate,
    #[serde(skip)]
    pub definition: PipelineDefinition,
    pub trigger: String,
    /// running | success | failed | stopped | rolled_back
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A row of `batch_runs`: seed 002's columns, the attempt, the error's kind and the run.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct BatchRun {
    pub batch_id: Uuid,
    pub batch_date: NaiveDate,
    pub stage: String,
    pub status: String,
    pub run_id: Option<String>,
    pub attempt: i32,
    pub error_kind: Option<String>,
    pub jobs_collected: Option<i32>,
    pub jobs_validated: Option<i32>,
    pub jobs_enriched: Option<i32>,
    pub jobs_vectorized: Option<i32>,
    pub jobs_inserted: Option<i32>,
    pub jobs_updated: Option<i32>,
    pub jobs_unchanged: Option<i32>,
    pub jobs_failed: Option<i32>,
    pub execution_time_seconds: Option<f64>,
    pub error_message: Option<String>,
    pub report: Option<serde_json::Value>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A stage's figures, each in its seed-002 column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageCounts {
    pub collected: Option<i32>,
    pub validated: Option<i32>,
    pub enriched: Option<i32>,
    pub vectorized: Option<i32>,
    pub inserted: Option<i32>,
    pub updated: Option<i32>,
    pub unchanged: Option<i32>,
    pub failed: Option<i32>,
}

fn definition_of(value: serde_json::Value) -> Result<PipelineDefinition, PipelineError> {
    PipelineDefinition::from_json(value).map_err(PipelineError::Definition)
}

/// A `pipelines` row as read, its definition still JSON.
struct PipelineRow {
    name: String,
    definition: serde_json::Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<PipelineRow> for Pipeline {
    type Error = PipelineError;

    fn try_from(row: PipelineRow) -> Result<Self, PipelineError> {
        Ok(Pipeline {
            name: row.name,
            definition: definition_of(row.definition)?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// A `batches` row as read, its definition still JSON.
struct BatchRow {
    batch_id: Uuid,
    pipeline: String,
    batch_date: NaiveDate,
    definition: serde_json::Value,
    trigger: String,
    status: String,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<BatchRow> for Batch {
    type Error = PipelineError;

    fn try_from(row: BatchRow) -> Result<Self, PipelineError> {
        Ok(Batch {
            batch_id: row.batch_id,
            pipeline: row.pipeline,
            batch_date: row.batch_date,
            definition: definition_of(row.definition)?,
            trigger: row.trigger,
            status: row.status,
            started_at: row.started_at,
            finished_at: row.finished_at,
        })
    }
}

/// Inserts or replaces a pipeline's definition (checked by the caller).
pub async fn upsert_pipeline(
    pool: &PgPool,
    name: &str,
    definition: &PipelineDefinition,
) -> Result<Pipeline, PipelineError> {
    let value = serde_json::to_value(definition).expect("a definition serializes");
    let row = sqlx::query!(
        "INSERT INTO pipelines (name, definition) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET definition = EXCLUDED.definition, updated_at = now() \
         RETURNING created_at, updated_at",
        name,
        value,
    )
    .fetch_one(pool)
    .await?;
    Ok(Pipeline {
        name: name.to_owned(),
        definition: definition.clone(),
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

pub async fn get_pipeline(pool: &PgPool, name: &str) -> Result<Option<Pipeline>, PipelineError> {
    sqlx::query_as!(
        PipelineRow,
        "SELECT name, definition, created_at, updated_at FROM pipelines WHERE name = $1",
        name
    )
    .fetch_optional(pool)
    .await?
    .map(Pipeline::try_from)
    .transpose()
}

pub async fn list_pipelines(pool: &PgPool) -> Result<Vec<Pipeline>, PipelineError> {
    sqlx::query_as!(
        PipelineRow,
        "SELECT name, definition, created_at, updated_at FROM pipelines ORDER BY name"
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(Pipeline::try_from)
    .collect()
}

/// Records a batch and its five stages (`queued`) unless it exists: the batch task that does
/// this may be redelivered. Returns whether it was created.
pub async fn create_batch(
    pool: &PgPool,
    batch_id: Uuid,
    pipeline: &Pipeline,
    trigger: Trigger,
) -> Result<bool, PipelineError> {
    let mut tx = pool.begin().await?;
    let definition = serde_json::to_value(&pipeline.definition).expect("a definition serializes");
    let created = sqlx::query!(
        "INSERT INTO batches (batch_id, pipeline, batch_date, definition, trigger) \
         VALUES ($1, $2, (now() AT TIME ZONE 'UTC')::date, $3, $4) ON CONFLICT DO NOTHING",
        batch_id,
        pipeline.name,
        definition,
        trigger.as_str(),
    )
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    let stages: Vec<String> = Stage::ALL.iter().map(|s| s.as_str().to_owned()).collect();
    sqlx::query!(
        "INSERT INTO batch_runs (batch_id, batch_date, stage) \
         SELECT $1, b.batch_date, s FROM batches b, unnest($2::text[]) s WHERE b.batch_id = $1 \
         ON CONFLICT DO NOTHING",
        batch_id,
        &stages,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(created)
}

pub async fn get_batch(pool: &PgPool, batch_id: Uuid) -> Result<Option<Batch>, PipelineError> {
    sqlx::query_as!(
        BatchRow,
        "SELECT batch_id, pipeline, batch_date, definition, trigger, status, started_at, finished_at \
         FROM batches WHERE batch_id = $1",
        batch_id
    )
    .fetch_optional(pool)
    .await?
    .map(Batch::try_from)
    .transpose()
}

/// Batches, newest first; of one pipeline when named.
pub async fn list_batches(
    pool: &PgPool,
    pipeline: Option<&str>,
    limit: i64,
) -> Result<Vec<Batch>, PipelineError> {
    sqlx::query_as!(
        BatchRow,
        "SELECT batch_id, pipeline, batch_date, definition, trigger, status, started_at, finished_at \
         FROM batches WHERE ($1::text IS NULL OR pipeline = $1) ORDER BY started_at DESC LIMIT $2",
        pipeline,
        limit,
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(Batch::try_from)
    .collect()
}

/// A batch's audit rows in stage order (rollback last).
pub async fn batch_runs(pool: &PgPool, batch_id: Uuid) -> Result<Vec<BatchRun>, PipelineError> {
    Ok(sqlx::query_as!(
        BatchRun,
        "SELECT batch_id, batch_date, stage, status, run_id, attempt, error_kind, jobs_collected, \
                jobs_validated, jobs_enriched, jobs_vectorized, jobs_inserted, jobs_updated, \
                jobs_unchanged, jobs_failed, execution_time_seconds, error_message, report, \
                started_at, finished_at, created_at, updated_at \
         FROM batch_runs WHERE batch_id = $1 \
         ORDER BY array_position(ARRAY['collect','validate','enrich','vectorize','export','rollback'], stage)",
        batch_id
    )
    .fetch_all(pool)
    .await?)
}
