//! Embeddings (seed 001): coverage read from the ledger, the backfill, model activation,
//! semantic / full-text / hybrid search and similar postings by vector.
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use trawl_embeddings::search::{self, CANDIDATES};
use trawl_embeddings::{Backfill, Coverage, CoverageSample, EmbeddingsError, Mode, store};
use trawl_pipeline::similarity::Scored;
use trawl_scrape_runs::search::{PostingQuery, ScoredPosting};
use utoipa::ToSchema;
use uuid::Uuid;

use super::models::SimilarQuery;
use super::postings::{PostingsParams, all_with_scores, similar_request, with_scores};
use super::{check_field, query};
use crate::auth::Authorized;
use crate::openapi::{ErrorEnvelope, NeedsKey, ReadErrors, Success};
use crate::{ApiError, AppState, success};

impl From<EmbeddingsError> for ApiError {
    fn from(err: EmbeddingsError) -> Self {
        match err {
            EmbeddingsError::UnknownModel(_) => {
                ApiError::not_found("model_not_found", err.to_string())
            }
            EmbeddingsError::NoActiveModel | EmbeddingsError::Refused(_) => {
                ApiError::new(StatusCode::CONFLICT, "refused", err.to_string())
            }
            EmbeddingsError::Embed(error) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "embedder_unavailable",
                format!("the query could not be embedded: {error}"),
            ),
            EmbeddingsError::Submit(err) => err.into(),
            EmbeddingsError::Queue(err) => err.into(),
            EmbeddingsError::Db(err) => queue_core::StoreError::from(err).into(),
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Hours of coverage samples to include (default 24, at most 168).
    #[param(minimum = 1, maximum = 168)]
    hours: Option<i32>,
}

/// Coverage now and its line over the last hours.
#[derive(Serialize, ToSchema)]
pub struct CoverageNow {
    #[serde(flatten)]
    coverage: Coverage,
    history: Vec<CoverageSample>,
}

#[derive(Serialize, ToSchema)]
pub struct ActivatedModel {
    active_model: String,
}

/// A search's postings, best first.
#[derive(Serialize, ToSchema)]
pub struct SearchPage {
    mode: Mode,
    /// The embedding model of a semantic or hybrid search.
    model: Option<String>,
    postings: Vec<ScoredPosting>,
    /// Always null: one page, no cursor.
    next: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SemanticNeighbours {
    job_id: Uuid,
    model: String,
    similar: Vec<ScoredPosting>,
}

/// How many active postings have a current vector, per model, with the failures' top reasons
/// and the coverage line of the last hours — all read from the ledger.
#[utoipa::path(
    get, path = "/embeddings/coverage", tag = "embeddings", params(HistoryQuery),
    responses((status = 200, description = "Coverage per model and its history", body = Success<CoverageNow>), ReadErrors)
)]
pub async fn coverage(
    State(state): State<AppState>,
    params: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let hours = query(params)?.hours.unwrap_or(24);
    if !(1..=168).contains(&hours) {
        return Err(ApiError::bad_request(format!(
            "hours: expected 1 to 168, got {hours}"
        )));
    }
    let db = &state.services.db;
    let coverage = trawl_embeddings::coverage(db).await?;
    let history = trawl_embeddings::history(db, hours).await?;
    Ok(success(StatusCode::OK, CoverageNow { coverage, history }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BackfillQuery {
    /// The model to fill in (default: the active one).
    #[param(pattern = r"^[^\x00]{1,1000}$")]
    model: Option<String>,
}

/// Queues every active posting without a current vector of the model (failed ones again,
/// their attempts reset) and queues `embed_batch` runs for them. Running it again continues:
/// what is embedded stays embedded.
#[utoipa::path(
    post, path = "/embeddings/backfill", tag = "embeddings", params(BackfillQuery),
    security(("api_key" = [])),
    responses(
        (status = 202, description = "Postings queued and the runs that will embed them", body = Success<Backfill>),
        (status = 404, description = "No such model", body = ErrorEnvelope),
        (status = 409, description = "No active model yet, or the model is retired", body = ErrorEnvelope),
        ReadErrors, NeedsKey,
    )
)]
pub async fn backfill(
    _: Authorized,
    State(state): State<AppState>,
    params: Result<Query<BackfillQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let model = query(params)?.model;
    if let Some(model) = &model {
        check_field("model", model)?;
    }
    let outcome = trawl_embeddings::backfill(&state.services, model.as_deref()).await?;
    Ok(success(StatusCode::ACCEPTED, outcome))
}

/// Makes a model the one searches use; the others are retired (no longer embedded).
#[utoipa::path(
    post, path = "/embeddings/models/{model}/activate", tag = "embeddings",
    params(("model" = String, Path, description = "A registered model's name", pattern = r"^[^\x00]{1,1000}$")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Active now", body = Success<ActivatedModel>),
        (status = 404, description = "No such model", body = ErrorEnvelope),
        ReadErrors, NeedsKey,
    )
)]
pub async fn activate(
    _: Authorized,
    State(state): State<AppState>,
    Path(model): Path<String>,
) -> Result<Response, ApiError> {
    check_field("model", &model)?;
    store::activate(&state.services.db, &model).await?;
    Ok(success(
        StatusCode::OK,
        ActivatedModel {
            active_model: model,
        },
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// What to look for (required).
    #[param(
        required = true,
        pattern = r"^[^\x00]*\S[^\x00]*$",
        min_length = 1,
        max_length = 1000
    )]
    q: Option<String>,
    /// `hybrid` (default): full text and semantic fused by reciprocal rank; `semantic`:
    /// nearest vectors of the active model; `fulltext`: words only.
    #[param(value_type = Option<Mode>)]
    mode: Option<String>,
    /// The site's name, exactly.
    #[param(pattern = r"^[^\x00]*$", max_length = 1000)]
    site: Option<String>,
    /// Company name containing this, any case.
    #[param(pattern = r"^[^\x00]*$", max_length = 1000)]
    company: Option<String>,
    /// Location containing this, any case.
    #[param(pattern = r"^[^\x00]*$", max_length = 1000)]
    location: Option<String>,
    /// Skills containing this, any case.
    #[param(pattern = r"^[^\x00]*$", max_length = 1000)]
    skill: Option<String>,
    /// Posted on or after this day.
    #[param(value_type = Option<chrono::NaiveDate>)]
    posted_since: Option<String>,
    #[param(value_type = Option<bool>)]
    has_salary: Option<String>,
    /// The top of the salary range (or its only figure) is at least this.
    #[param(value_type = Option<f64>, minimum = 0)]
    salary_at_least: Option<String>,
    /// Postings to return (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    limit: Option<String>,
}

impl SearchParams {
    /// The filters, read (and refused, naming the field) as the postings API reads them.
    fn filters(&self) -> Result<PostingQuery, ApiError> {
        PostingsParams {
            site: self.site.clone(),
            company: self.company.clone(),
            location: self.location.clone(),
            skill: self.skill.clone(),
            posted_since: self.posted_since.clone(),
            has_salary: self.has_salary.clone(),
            salary_at_least: self.salary_at_least.clone(),
            limit: self.limit.clone(),
            ..Default::default()
        }
        .parse()
    }
}

/// Postings for a query by meaning, by words, or both, with the postings API's filters.
#[utoipa::path(
    get, path = "/jobs/postings/search", tag = "postings", params(SearchParams),
    responses(
        (status = 200, description = "Postings best first with their rank score (one page, no cursor)", body = Success<SearchPage>),
        (status = 409, description = "Semantic search with no active embedding model, or one this API does not run", body = ErrorEnvelope),
        (status = 503, description = "The query could not be embedded", body = ErrorEnvelope),
        ReadErrors,
    )
)]
pub async fn search(
    State(state): State<AppState>,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = query(params)?;
    let q = params
        .q
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .ok_or_else(|| ApiError::bad_request("q: required"))?
        .to_owned();
    check_field("q", &q)?;
    let mode = match params.mode.as_deref() {
        None | Some("hybrid") => Mode::Hybrid,
        Some("semantic") => Mode::Semantic,
        Some("fulltext") => Mode::Fulltext,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "mode: expected semantic, fulltext or hybrid, got {other:?}"
            )));
        }
    };
    let filters = params.filters()?;
    let db = &state.services.db;
    let mut model = None;
    let ranked: Vec<Scored> = match mode {
        Mode::Fulltext => scored(search::fulltext_ranked(db, &q, CANDIDATES).await?),
        Mode::Semantic => {
            let (name, nearest) = semantic(&state, &q).await?;
            model = Some(name);
            with_similarity(nearest)
        }
        Mode::Hybrid => {
            let words = search::fulltext_all_ranked(db, &q, CANDIDATES).await?;
            let (name, nearest) = semantic(&state, &q).await?;
            model = Some(name);
            let meaning: Vec<Uuid> = nearest.into_iter().map(|(id, _)| id).collect();
            scored(search::fuse(&[&words, &meaning]))
        }
    };
    let postings = with_scores(db, &filters, &ranked).await?;
    Ok(success(
        StatusCode::OK,
        SearchPage {
            mode,
            model,
            postings,
            next: None,
        },
    ))
}

/// Postings scored by their cosine similarity.
fn with_similarity(nearest: Vec<(Uuid, f64)>) -> Vec<Scored> {
    nearest
        .into_iter()
        .map(|(job_id, score)| Scored { job_id, score })
        .collect()
}

/// Ranks become scores that fall with the rank (1, 1/2, 1/3...), for ids that have no score
/// of their own (full text, fused).
fn scored(ids: Vec<Uuid>) -> Vec<Scored> {
    ids.into_iter()
        .enumerate()
        .map(|(rank, job_id)| Scored {
            job_id,
            score: 1.0 / (rank as f64 + 1.0),
        })
        .collect()
}

/// The query's nearest postings under the active model, which must be the model this API
/// embeds queries with: vectors of two models are not comparable.
async fn semantic(state: &AppState, q: &str) -> Result<(String, Vec<(Uuid, f64)>), ApiError> {
    let db = &state.services.db;
    let active = store::require_active_model(db).await?;
    let embedder = &state.embedder;
    if embedder.model() != active {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "model_mismatch",
            format!(
                "the active embedding model is {active} but this API embeds queries with {}; \
                 set the API's EMBEDDER to the workers' model",
                embedder.model()
            ),
        ));
    }
    let raw = embedder
        .embed(&[q.to_owned()])
        .await
        .map_err(EmbeddingsError::from)?;
    let vector = trawl_embedder::checked(raw, 1)
        .map_err(EmbeddingsError::from)?
        .pop()
        .and_then(Result::ok)
        .ok_or_else(|| ApiError::bad_request("q: nothing in it can be embedded"))?;
    let nearest = search::semantic_ranked(db, &active, &vector, CANDIDATES).await?;
    Ok((active, nearest))
}

/// Postings nearest this one by the active embedding model's vectors.
#[utoipa::path(
    get, path = "/jobs/postings/{job_id}/similar/semantic", tag = "postings",
    params(("job_id" = uuid::Uuid, Path, description = "The posting's id"), SimilarQuery),
    responses(
        (status = 200, description = "Postings with their cosine similarity, closest first", body = Success<SemanticNeighbours>),
        (status = 404, description = "No such posting, or it has no vector of the active model yet", body = ErrorEnvelope),
        (status = 409, description = "No active embedding model yet", body = ErrorEnvelope),
        ReadErrors,
    )
)]
pub async fn similar(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    params: Result<Query<SimilarQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (job_id, limit) = similar_request(&job_id, query(params)?.limit)?;
    let db = &state.services.db;
    let model = store::require_active_model(db).await?;
    let nearest = search::similar(db, &model, job_id, limit as i64)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "not_embedded",
                format!("posting {job_id} has no vector of {model} yet"),
            )
        })?;
    let similar = all_with_scores(db, &with_similarity(nearest)).await?;
    Ok(success(
        StatusCode::OK,
        SemanticNeighbours {
            job_id,
            model,
            similar,
        },
    ))
}
