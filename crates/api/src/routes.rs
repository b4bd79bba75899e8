//! The endpoints (seed 003's API).
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use trawl_scrape::SourceKind;
use utoipa::ToSchema;

use crate::openapi::{ErrorEnvelope, ReadErrors, Success};
use crate::{ApiError, AppState, success};

pub(crate) mod careers;
pub(crate) mod dead;
pub(crate) mod embeddings;
pub(crate) mod metrics;
pub(crate) mod models;
pub(crate) mod pipeline;
pub(crate) mod postings;
pub(crate) mod queue;
pub(crate) mod runs;
pub(crate) mod schedules;
pub(crate) mod scrape;
pub(crate) mod subscribers;

pub use metrics::track;
pub use scrape::{DEFAULT_SYNC_TIMEOUT, SYNC_MAX_RESULTS};

/// `axum::Json` with rejections in the API's error envelope.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<T>::from_request(request, state).await?;
        Ok(Self(value))
    }
}

/// Checks a text from the request before it goes near PostgreSQL (which refuses NUL): a 400
/// naming the field, never a database error.
fn check_field(field: &str, value: &str) -> Result<(), ApiError> {
    queue_core::check_text(field, value).map_err(ApiError::bad_request)
}

fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|rejection| ApiError::bad_request(rejection.body_text()))
}

/// Whether each backing service answered.
#[derive(Serialize, ToSchema)]
pub struct HealthChecks {
    redis: Check,
    postgres: Check,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    Ok,
    Unreachable,
}

impl Check {
    fn of<T, E>(outcome: &Result<T, E>) -> Self {
        if outcome.is_ok() {
            Check::Ok
        } else {
            Check::Unreachable
        }
    }
}

#[utoipa::path(
    get, path = "/health", tag = "health",
    responses(
        (status = 200, description = "Redis and PostgreSQL answer", body = Success<HealthChecks>),
        (status = 503, description = "Redis or PostgreSQL is down (named)", body = ErrorEnvelope),
    )
)]
pub async fn health(State(state): State<AppState>) -> Response {
    let redis = state.services.queue.ping().await;
    let postgres = sqlx::query!("SELECT 1 AS alive")
        .fetch_one(&state.services.db)
        .await;
    let checks = HealthChecks {
        redis: Check::of(&redis),
        postgres: Check::of(&postgres),
    };
    if redis.is_ok() && postgres.is_ok() {
        return success(StatusCode::OK, checks);
    }
    let down: Vec<&str> = [("redis", redis.is_err()), ("postgres", postgres.is_err())]
        .into_iter()
        .filter_map(|(name, failed)| failed.then_some(name))
        .collect();
    let body = json!({"status": "error", "error": {"code": "unhealthy",
        "message": format!("unreachable: {}", down.join(", "))}, "data": checks});
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}

/// The queue system's health (seed 003's shape).
#[derive(Serialize, ToSchema)]
pub struct JobsHealth {
    queue: QueueHealth,
    workers_alive: u64,
    pending: u64,
    /// The kinds of source trawl reads.
    sources: Vec<&'static str>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueueHealth {
    /// Some worker is alive.
    Ok,
    /// No live worker: tasks wait.
    Degraded,
}

/// The queue system's health: Redis reachable and some worker alive.
#[utoipa::path(
    get, path = "/jobs/health", tag = "health",
    responses((status = 200, description = "`ok`, or `degraded` with no live worker", body = Success<JobsHealth>), ReadErrors)
)]
pub async fn jobs_health(State(state): State<AppState>) -> Result<Response, ApiError> {
    let metrics = state.queue_readings.metrics(&state.services.queue).await?;
    let queue = if metrics.workers_alive > 0 {
        QueueHealth::Ok
    } else {
        QueueHealth::Degraded
    };
    Ok(success(
        StatusCode::OK,
        JobsHealth {
            queue,
            workers_alive: metrics.workers_alive,
            pending: metrics.pending,
            sources: SourceKind::ALL.iter().map(|k| k.as_str()).collect(),
        },
    ))
}

/// Registered sites and the kinds of source trawl reads.
#[derive(Serialize, ToSchema)]
pub struct Sites {
    sites: Vec<trawl_scrape_runs::sites::SiteSchedule>,
    sources: Vec<Source>,
}

#[derive(Serialize, ToSchema)]
pub struct Source {
    source: &'static str,
    description: &'static str,
}

#[utoipa::path(
    get, path = "/jobs/sites", tag = "scrapes",
    responses((status = 200, description = "Registered sites and the sources trawl reads", body = Success<Sites>), ReadErrors)
)]
pub async fn sites(State(state): State<AppState>) -> Result<Response, ApiError> {
    let sites = trawl_scrape_runs::sites::list_sites(&state.services.db).await?;
    let sources = SourceKind::ALL
        .iter()
        .map(|kind| Source {
            source: kind.as_str(),
            description: kind.description(),
        })
        .collect();
    Ok(success(StatusCode::OK, Sites { sites, sources }))
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such endpoint")
}

pub async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
}
