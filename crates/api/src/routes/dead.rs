//! The dead-letter endpoints: list, retry or delete one entry, retry or delete them all, on
//! any queue (`?queue=`, default: scraping).
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use queue_core::{DeadLetter, Swept};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::queue::{QueueQuery, chosen};
use super::{check_field, query};
use crate::auth::Authorized;
use crate::openapi::{ErrorEnvelope, NeedsKey, ReadErrors, Success};
use crate::{ApiError, AppState, success};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeadQuery {
    /// Most entries listed (default 100).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<usize>,
    /// The queue (default: scraping).
    #[param(pattern = r"^[a-z][a-z0-9_-]{0,31}$")]
    queue: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DeadLetters {
    /// Entries in the list.
    total: u64,
    /// The most the list keeps (the oldest go first).
    cap: usize,
    dead: Vec<DeadLetter>,
}

/// Newest dead letters first, with the reason each was set aside.
#[utoipa::path(
    get, path = "/jobs/queue/dead", tag = "queues", params(DeadQuery),
    responses((status = 200, description = "Dead letters, newest first", body = Success<DeadLetters>), ReadErrors)
)]
pub async fn dead_letters(
    State(state): State<AppState>,
    limit: Result<Query<DeadQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let asked = query(limit)?;
    let queue = chosen(&state, Ok(Query(QueueQuery { queue: asked.queue })))?;
    let limit = asked.limit.unwrap_or(100);
    if !(1..=queue_core::DEFAULT_DEAD_LETTER_CAP).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {}, got {limit}",
            queue_core::DEFAULT_DEAD_LETTER_CAP
        )));
    }
    let total = queue.metrics().await?.dead;
    let entries = queue.dead_letters(limit).await?;
    Ok(success(
        StatusCode::OK,
        DeadLetters {
            total,
            cap: queue_core::DEFAULT_DEAD_LETTER_CAP,
            dead: entries,
        },
    ))
}

/// The 404 naming the queue looked in: an id listed on another queue's dead letters is not
/// found on the home queue's.
fn no_dead_letter(queue: &queue_core::Queue, id: &str) -> ApiError {
    ApiError::not_found(
        "unknown_dead_letter",
        format!(
            "no dead letter with id {id} on queue {} (?queue= names another)",
            queue.keys().queue_name()
        ),
    )
}

#[derive(Serialize, ToSchema)]
pub struct Requeued {
    id: String,
    requeued: bool,
    /// The message as it went back into the queue.
    task: String,
}

#[utoipa::path(
    post, path = "/jobs/queue/dead/{id}/retry", tag = "queues",
    params(("id" = String, Path, description = "The dead letter's id", pattern = r"^[^\x00]{1,1000}$"), QueueQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Queued again", body = Success<Requeued>),
        (status = 404, description = "No such dead letter", body = ErrorEnvelope),
        ReadErrors, NeedsKey,
    )
)]
pub async fn retry_dead_letter(
    _: Authorized,
    State(state): State<AppState>,
    Path(id): Path<String>,
    which: Result<Query<QueueQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    check_field("id", &id)?;
    let queue = chosen(&state, which)?;
    match queue.retry_dead_letter(&id).await? {
        Some(task) => Ok(success(
            StatusCode::OK,
            Requeued {
                id,
                requeued: true,
                task,
            },
        )),
        None => Err(no_dead_letter(&queue, &id)),
    }
}

#[derive(Serialize, ToSchema)]
pub struct DeletedDeadLetter {
    id: String,
    deleted: bool,
}

#[utoipa::path(
    delete, path = "/jobs/queue/dead/{id}", tag = "queues",
    params(("id" = String, Path, description = "The dead letter's id", pattern = r"^[^\x00]{1,1000}$"), QueueQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Dropped", body = Success<DeletedDeadLetter>),
        (status = 404, description = "No such dead letter", body = ErrorEnvelope),
        ReadErrors, NeedsKey,
    )
)]
pub async fn delete_dead_letter(
    _: Authorized,
    State(state): State<AppState>,
    Path(id): Path<String>,
    which: Result<Query<QueueQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    check_field("id", &id)?;
    let queue = chosen(&state, which)?;
    if queue.delete_dead_letter(&id).await? {
        Ok(success(
            StatusCode::OK,
            DeletedDeadLetter { id, deleted: true },
        ))
    } else {
        Err(no_dead_letter(&queue, &id))
    }
}

#[derive(Serialize, ToSchema)]
pub struct SweptDeadLetters {
    queue: String,
    /// Entries taken off the list: queued again (retry) or dropped (delete).
    taken: u64,
    /// Entries a retry left on the list: not a dead letter trawl wrote, so no task to queue.
    skipped: u64,
}

impl SweptDeadLetters {
    fn of(queue: &queue_core::Queue, swept: Swept) -> Self {
        Self {
            queue: queue.keys().queue_name().to_owned(),
            taken: swept.taken,
            skipped: swept.skipped,
        }
    }
}

/// Queues again every task on the queue's dead-letter list, oldest first, each as a fresh
/// manual run (Sidekiq's "Retry All"). Letters that die again meanwhile wait for the next call.
#[utoipa::path(
    post, path = "/jobs/queue/dead/retry", tag = "queues", params(QueueQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Queued again", body = Success<SweptDeadLetters>),
        ReadErrors, NeedsKey,
    )
)]
pub async fn retry_all_dead_letters(
    _: Authorized,
    State(state): State<AppState>,
    which: Result<Query<QueueQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let queue = chosen(&state, which)?;
    let swept = queue.retry_all_dead_letters().await?;
    Ok(success(StatusCode::OK, SweptDeadLetters::of(&queue, swept)))
}

/// Drops every entry on the queue's dead-letter list.
#[utoipa::path(
    delete, path = "/jobs/queue/dead", tag = "queues", params(QueueQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Dropped", body = Success<SweptDeadLetters>),
        ReadErrors, NeedsKey,
    )
)]
pub async fn delete_all_dead_letters(
    _: Authorized,
    State(state): State<AppState>,
    which: Result<Query<QueueQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let queue = chosen(&state, which)?;
    let swept = queue.delete_all_dead_letters().await?;
    Ok(success(StatusCode::OK, SweptDeadLetters::of(&queue, swept)))
}
