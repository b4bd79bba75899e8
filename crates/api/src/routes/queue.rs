//! The operator's endpoints: queue depth, pause and resume (dead letters: `dead.rs`).
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use std::collections::BTreeMap;

use queue_core::QueueMetrics;
use queue_core::store;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{check_field, query};
use crate::auth::Authorized;
use crate::openapi::{NeedsKey, ReadErrors, Success};
use crate::{ApiError, AppState, success};

/// `?queue=<name>`: which queue an operator endpoint acts on (default: the home queue,
/// `scraping`, whose status keeps seed 003's shape).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    /// The queue (default: scraping).
    #[param(pattern = r"^[a-z][a-z0-9_-]{0,31}$")]
    pub(crate) queue: Option<String>,
}

pub(crate) fn chosen(
    state: &AppState,
    which: Result<Query<QueueQuery>, QueryRejection>,
) -> Result<queue_core::Queue, ApiError> {
    match query(which)?.queue {
        None => Ok(state.services.queue.clone()),
        Some(name) => {
            check_field("queue", &name)?;
            if !queue_core::is_queue_name(&name) {
                return Err(ApiError::bad_request(format!(
                    "queue {name:?} is not a queue name"
                )));
            }
            Ok(state.services.queue_named(&name))
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Queues {
    queues: Vec<QueueMetrics>,
}

/// Every queue in use, each with its depth, in-flight tasks, dead letters and workers.
#[utoipa::path(
    get, path = "/queues", tag = "queues",
    responses((status = 200, description = "Every queue in use with its figures", body = Success<Queues>), ReadErrors)
)]
pub async fn queues(State(state): State<AppState>) -> Result<Response, ApiError> {
    let all = state.services.all_queue_metrics().await?;
    Ok(success(StatusCode::OK, Queues { queues: all }))
}

/// One queue's figures (seed 003's shape) and the ledger's runs per status.
#[derive(Serialize, ToSchema)]
pub struct QueueStatus {
    #[serde(flatten)]
    metrics: QueueMetrics,
    /// Runs of every kind per status, counted at most once a second.
    runs_by_status: BTreeMap<String, i64>,
    /// The Redis list tasks wait in (for `redis-cli LPUSH`).
    pending_key: String,
}

#[utoipa::path(
    get, path = "/jobs/queue/status", tag = "queues", params(QueueQuery),
    responses((status = 200, description = "One queue's figures (seed 003's shape)", body = Success<QueueStatus>), ReadErrors)
)]
pub async fn queue_status(
    State(state): State<AppState>,
    which: Result<Query<QueueQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let queue = chosen(&state, which)?;
    let metrics = state.queue_readings.metrics(&queue).await?;
    let db = &state.services.db;
    let runs_by_status = state
        .run_counts
        .get(|| async {
            store::count_runs_by_status(db)
                .await
                .map(std::sync::Arc::new)
        })
        .await?
        .iter()
        .cloned()
        .collect();
    Ok(success(
        StatusCode::OK,
        QueueStatus {
            metrics,
            runs_by_status,
            pending_key: queue.keys().pending(),
        },
    ))
}

#[derive(Serialize, ToSchema)]
pub struct Paused {
    queue: String,
    paused: bool,
}

#[utoipa::path(
    post, path = "/jobs/queue/pause", tag = "queues", params(QueueQuery),
    security(("api_key" = [])),
    responses((status = 200, description = "Paused", body = Success<Paused>), ReadErrors, NeedsKey)
)]
pub async fn pause_queue(
    _: Authorized,
    State(state): State<AppState>,
    which: Result<Query<QueueQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let queue = chosen(&state, which)?;
    queue.set_paused(true).await?;
    Ok(success(
        StatusCode::OK,
        Paused {
            queue: queue.keys().queue_name().to_owned(),
            paused: true,
        },
    ))
}

#[utoipa::path(
    post, path = "/jobs/queue/resume", tag = "queues", params(QueueQuery),
    security(("api_key" = [])),
    responses((status = 200, description = "Resumed", body = Success<Paused>), ReadErrors, NeedsKey)
)]
pub async fn resume_queue(
    _: Authorized,
    State(state): State<AppState>,
    which: Result<Query<QueueQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let queue = chosen(&state, which)?;
    queue.set_paused(false).await?;
    Ok(success(
        StatusCode::OK,
        Paused {
            queue: queue.keys().queue_name().to_owned(),
            paused: false,
        },
    ))
}
