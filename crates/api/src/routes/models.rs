//! The pipeline's TF-IDF models: their versions, activating one, and the postings closest to a
//! posting under the active one.
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use trawl_pipeline::models::{self, ModelVersion};
use trawl_scrape_runs::search::ScoredPosting;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{check_field, query};
use crate::auth::Authorized;
use crate::openapi::{ErrorEnvelope, NeedsKey, ReadErrors, Success};
use crate::{ApiError, AppState, success};

#[derive(Serialize, ToSchema)]
pub struct Models {
    models: Vec<ModelVersion>,
}

#[derive(Serialize, ToSchema)]
pub struct ActivatedVersion {
    model: ModelVersion,
}

#[derive(Serialize, ToSchema)]
pub struct TfidfNeighbours {
    job_id: Uuid,
    model_version: String,
    similar: Vec<ScoredPosting>,
}

#[utoipa::path(
    get, path = "/models", tag = "pipeline",
    responses((status = 200, description = "TF-IDF model versions, newest first", body = Success<Models>), ReadErrors)
)]
pub async fn list_models(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(success(
        StatusCode::OK,
        Models {
            models: models::list_models(&state.services.db).await?,
        },
    ))
}

/// Makes a model version the active one (a rollback to an earlier model, or forward again).
#[utoipa::path(
    post, path = "/models/{version}/activate", tag = "pipeline",
    params(("version" = String, Path, description = "tfidf_vYYYYMMDD_HHMMSS", pattern = r"^[^\x00]{1,1000}$")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Active now", body = Success<ActivatedVersion>),
        (status = 409, description = "No such version, or one its batch never exported", body = ErrorEnvelope),
        ReadErrors, NeedsKey,
    )
)]
pub async fn activate_model(
    _: Authorized,
    State(state): State<AppState>,
    Path(version): Path<String>,
) -> Result<Response, ApiError> {
    check_field("version", &version)?;
    let model = models::activate(&state.services.db, &version).await?;
    Ok(success(StatusCode::OK, ActivatedVersion { model }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SimilarQuery {
    /// How many (default 10).
    #[param(minimum = 1, maximum = 100)]
    pub(crate) limit: Option<usize>,
}

/// Postings closest to this one under the active TF-IDF model (cosine of their vectors).
#[utoipa::path(
    get, path = "/jobs/postings/{job_id}/similar", tag = "postings",
    params(("job_id" = uuid::Uuid, Path, description = "The posting's id"), SimilarQuery),
    responses(
        (status = 200, description = "Postings with their score, closest first", body = Success<TfidfNeighbours>),
        (status = 404, description = "No such posting, or none vectorized by the active model", body = ErrorEnvelope),
        (status = 409, description = "No active model yet: run the pipeline", body = ErrorEnvelope),
        ReadErrors,
    )
)]
pub async fn similar(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    params: Result<Query<SimilarQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (job_id, limit) = super::postings::similar_request(&job_id, query(params)?.limit)?;
    let active = super::postings::active_model(&state).await?;
    let vector = active.vector_of(job_id).ok_or_else(|| {
        ApiError::not_found(
            "not_vectorized",
            format!("posting {job_id} is not in model {}", active.version),
        )
    })?;
    let nearest = active.nearest(vector, Some(job_id), limit);
    let similar = super::postings::all_with_scores(&state.services.db, &nearest).await?;
    let version = &active.version;
    Ok(success(
        StatusCode::OK,
        TfidfNeighbours {
            job_id,
            model_version: version.clone(),
            similar,
        },
    ))
}
