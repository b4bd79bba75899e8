//! The batch pipeline (seed 002): definitions, batches and their audit, re-runs from a stage,
//! rollbacks and seed 002's monitoring queries. Its TF-IDF models: `models.rs`.
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use trawl_pipeline::monitor::{DailySuccess, LatestBatch, StageError, StageTimes};
use trawl_pipeline::store::{Batch, BatchRun, Pipeline};
use trawl_pipeline::{PipelineError, RolledBack, Stage, monitor, store};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{check_field, query};
use crate::auth::Authorized;
use crate::openapi::{BodyErrors, ErrorEnvelope, NeedsKey, ReadErrors, Success};
use crate::{ApiError, AppState, success};

#[derive(Serialize, ToSchema)]
pub struct Pipelines {
    pipelines: Vec<Pipeline>,
}

#[derive(Serialize, ToSchema)]
pub struct Stored {
    pipeline: Pipeline,
}

#[derive(Serialize, ToSchema)]
pub struct BatchQueued {
    batch_id: Uuid,
    pipeline: String,
}

#[derive(Serialize, ToSchema)]
pub struct Batches {
    batches: Vec<Batch>,
}

#[derive(Serialize, ToSchema)]
pub struct BatchStages {
    batch: Batch,
    stages: Vec<BatchRun>,
}

#[derive(Serialize, ToSchema)]
pub struct Rerun {
    batch_id: Uuid,
    from: Stage,
}

/// Seed 002's monitoring in one answer.
#[derive(Serialize, ToSchema)]
pub struct PipelineStatus {
    latest: Option<LatestBatch>,
    success_rate: Vec<DailySuccess>,
    stage_times: Vec<StageTimes>,
    recent_errors: Vec<StageError>,
}

impl From<PipelineError> for ApiError {
    fn from(err: PipelineError) -> Self {
        match err {
            PipelineError::Definition(err) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_definition",
                err.to_string(),
            ),
            PipelineError::Refused(message) => {
                ApiError::new(StatusCode::CONFLICT, "refused", message)
            }
            PipelineError::Store(err) => err.into(),
            PipelineError::Submit(err) => err.into(),
            PipelineError::Db(err) => queue_core::StoreError::from(err).into(),
        }
    }
}

fn batch_id(text: &str) -> Result<Uuid, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad_request(format!("batch_id: expected a UUID, got {text:?}")))
}

fn pipeline_name(name: &str) -> Result<(), ApiError> {
    check_field("name", name)
}

#[utoipa::path(
    get, path = "/pipelines", tag = "pipeline",
    responses((status = 200, description = "Every pipeline and its definition", body = Success<Pipelines>), ReadErrors)
)]
pub async fn pipelines(State(state): State<AppState>) -> Result<Response, ApiError> {
    let all = store::list_pipelines(&state.services.db).await?;
    Ok(success(StatusCode::OK, Pipelines { pipelines: all }))
}

/// Inserts or replaces a pipeline; a bad source, cron, SLA or retry policy is a 400 naming the
/// field. Its schedule (`pipeline-<name>`) follows its cron.
#[utoipa::path(
    put, path = "/pipelines/{name}", tag = "pipeline",
    params(("name" = String, Path, description = "The pipeline's name", pattern = r"^[a-z0-9][a-z0-9_-]{0,54}$")),
    request_body = trawl_pipeline::PipelineDefinition,
    security(("api_key" = [])),
    responses((status = 200, description = "Stored", body = Success<Stored>), ReadErrors, NeedsKey, BodyErrors)
)]
pub async fn upsert_pipeline(
    _: Authorized,
    State(state): State<AppState>,
    Path(name): Path<String>,
    super::ApiJson(definition): super::ApiJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    pipeline_name(&name)?;
    let stored = trawl_pipeline::upsert_pipeline(&state.services, &name, definition).await?;
    Ok(success(StatusCode::OK, Stored { pipeline: stored }))
}

/// Starts a batch now (the schedule does the same at its cron).
#[utoipa::path(
    post, path = "/pipeline/{name}/runs", tag = "pipeline",
    params(("name" = String, Path, description = "The pipeline's name", pattern = r"^[^\x00]{1,1000}$")),
    security(("api_key" = [])),
    responses(
        (status = 202, description = "Queued: its batch_id", body = Success<BatchQueued>),
        (status = 404, description = "No such pipeline", body = ErrorEnvelope),
        ReadErrors, NeedsKey,
    )
)]
pub async fn run_pipeline(
    _: Authorized,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    pipeline_name(&name)?;
    if store::get_pipeline(&state.services.db, &name)
        .await?
        .is_none()
    {
        return Err(ApiError::not_found(
            "no_such_pipeline",
            format!("no pipeline {name:?}"),
        ));
    }
    let batch_id =
        trawl_pipeline::submit_batch(&state.services, &name, queue_core::Trigger::Manual).await?;
    Ok(success(
        StatusCode::ACCEPTED,
        BatchQueued {
            batch_id,
            pipeline: name,
        },
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BatchesQuery {
    /// Only this pipeline's batches.
    #[param(pattern = r"^[^\x00]{0,1000}$")]
    pipeline: Option<String>,
    /// How many, newest first (default 20).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

#[utoipa::path(
    get, path = "/pipeline/batches", tag = "pipeline", params(BatchesQuery),
    responses((status = 200, description = "Batches, newest first", body = Success<Batches>), ReadErrors)
)]
pub async fn batches(
    State(state): State<AppState>,
    params: Result<Query<BatchesQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = query(params)?;
    if let Some(name) = &params.pipeline {
        pipeline_name(name)?;
    }
    let limit = params.limit.unwrap_or(20);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit: expected 1 to 200, got {limit}"
        )));
    }
    let batches =
        store::list_batches(&state.services.db, params.pipeline.as_deref(), limit).await?;
    Ok(success(StatusCode::OK, Batches { batches }))
}

/// One batch with its `batch_runs` rows (seed 002's columns, the attempt, the error's kind).
#[utoipa::path(
    get, path = "/pipeline/batches/{batch_id}", tag = "pipeline",
    params(("batch_id" = uuid::Uuid, Path, description = "The batch's id")),
    responses(
        (status = 200, description = "The batch and its stages", body = Success<BatchStages>),
        (status = 404, description = "No such batch", body = ErrorEnvelope),
        ReadErrors,
    )
)]
pub async fn batch(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = batch_id(&id)?;
    let batch = store::get_batch(&state.services.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("no_such_batch", format!("no batch {id}")))?;
    let stages = store::batch_runs(&state.services.db, id).await?;
    Ok(success(StatusCode::OK, BatchStages { batch, stages }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RerunQuery {
    /// The stage to run again from (collect, validate, enrich, vectorize, export).
    from: Stage,
}

/// Re-runs a failed or stopped batch from a stage on (Airflow's "clear task").
#[utoipa::path(
    post, path = "/pipeline/batches/{batch_id}/rerun", tag = "pipeline",
    params(("batch_id" = uuid::Uuid, Path, description = "The batch's id"), RerunQuery),
    security(("api_key" = [])),
    responses(
        (status = 202, description = "Queued again from that stage", body = Success<Rerun>),
        (status = 404, description = "No such batch", body = ErrorEnvelope),
        (status = 409, description = "Not failed or stopped, or an earlier stage did not succeed", body = ErrorEnvelope),
        ReadErrors, NeedsKey,
    )
)]
pub async fn rerun(
    _: Authorized,
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Result<Query<RerunQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let id = batch_id(&id)?;
    let from = query(params)?.from;
    if store::get_batch(&state.services.db, id).await?.is_none() {
        return Err(ApiError::not_found(
            "no_such_batch",
            format!("no batch {id}"),
        ));
    }
    trawl_pipeline::rerun_from(&state.services, id, from).await?;
    Ok(success(StatusCode::ACCEPTED, Rerun { batch_id: id, from }))
}

/// Undoes what a batch's export changed in `jobs` (audited as its `rollback` row).
#[utoipa::path(
    post, path = "/pipeline/batches/{batch_id}/rollback", tag = "pipeline",
    params(("batch_id" = uuid::Uuid, Path, description = "The batch's id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Rows deleted and restored", body = Success<RolledBack>),
        (status = 409, description = "The batch did not export, or was rolled back already", body = ErrorEnvelope),
        ReadErrors, NeedsKey,
    )
)]
pub async fn rollback(
    _: Authorized,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let undone = trawl_pipeline::rollback(&state.services.db, batch_id(&id)?).await?;
    Ok(success(StatusCode::OK, undone))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    /// Only this pipeline.
    #[param(pattern = r"^[^\x00]{0,1000}$")]
    pipeline: Option<String>,
}

/// Seed 002's monitoring: the latest batch's stages, success per day (7 days), time per stage
/// (30 days) and the recent errors, in one answer.
#[utoipa::path(
    get, path = "/pipeline/status", tag = "pipeline", params(StatusQuery),
    responses((status = 200, description = "latest, success_rate, stage_times, recent_errors", body = Success<PipelineStatus>), ReadErrors)
)]
pub async fn status(
    State(state): State<AppState>,
    params: Result<Query<StatusQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let pipeline = query(params)?.pipeline;
    if let Some(name) = &pipeline {
        pipeline_name(name)?;
    }
    let db = &state.services.db;
    Ok(success(
        StatusCode::OK,
        PipelineStatus {
            latest: monitor::latest_batch(db, pipeline.as_deref()).await?,
            success_rate: monitor::success_rate(db).await?,
            stage_times: monitor::stage_times(db).await?,
            recent_errors: monitor::recent_errors(db).await?,
        },
    ))
}
