//! The operator's endpoints: queue depth, dead letters, pause and resume, scheduler passes.
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use queue_core::store;
use serde::Deserialize;
use serde_json::json;

use super::{check_field, query};
use crate::auth::Authorized;
use crate::openapi::{BodyErrors, ErrorEnvelope, NeedsKey, ReadErrors, Success};
use crate::{ApiError, AppState, success};

/// `?queue=<name>`: which queue an operator endpoint acts on (default: the home queue,
/// `scraping`, whose status keeps seed 003's shape).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    /// The queue (default: scraping).
    #[param(pattern = r"^[a-z][a-z0-9_-]{0,31}$")]
    queue: Option<String>,
}

fn chosen(
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

/// Every queue in use, each with its depth, in-flight tasks, dead letters and workers.
#[utoipa::path(
    get, path = "/queues", tag = "queues",
    responses((status = 200, description = "Every queue in use with its figures", body = Success), ReadErrors)
)]
pub async fn queues(State(state): State<AppState>) -> Result<Response, ApiError> {
    let all = state.services.all_queue_metrics().await?;
    Ok(success(StatusCode::OK, json!({"queues": all})))
}

#[utoipa::path(
    get, path = "/jobs/queue/status", tag = "queues", params(QueueQuery),
    responses((status = 200, description = "One queue's figures (seed 003's shape)", body = Success), ReadErrors)
)]
pub async fn queue_status(
    State(state): State<AppState>,
    which: Result<Query<QueueQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let queue = chosen(&state, which)?;
    let metrics = queue.metrics().await?;
    let runs: serde_json::Map<String, serde_json::Value> =
        store::count_runs_by_status(&state.services.db)
            .await?
            .into_iter()
            .map(|(status, count)| (status, json!(count)))
            .collect();
    let keys = queue.keys();
    Ok(success(
        StatusCode::OK,
        json!({"queue": metrics.queue, "pending": metrics.pending, "in_flight": metrics.in_flight,
               "delayed": metrics.delayed, "dead": metrics.dead, "paused": metrics.paused, "workers_alive": metrics.workers_alive, "workers": metrics.workers,
               "runs_by_status": runs, "pending_key": keys.pending()}),
    ))
}

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

/// Newest dead letters first, with the reason each was set aside.
#[utoipa::path(
    get, path = "/jobs/queue/dead", tag = "queues", params(DeadQuery),
    responses((status = 200, description = "Dead letters, newest first", body = Success), ReadErrors)
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
        json!({"total": total, "cap": queue_core::DEFAULT_DEAD_LETTER_CAP, "dead": entries}),
    ))
}

#[utoipa::path(
    post, path = "/jobs/queue/dead/{id}/retry", tag = "queues",
    params(("id" = String, Path, description = "The dead letter's id", pattern = r"^[^\x00]{1,1000}$")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Queued again", body = Success),
        (status = 404, description = "No such dead letter", body = ErrorEnvelope),
        ReadErrors, NeedsKey,
    )
)]
pub async fn retry_dead_letter(
    _: Authorized,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    check_field("id", &id)?;
    match state.services.queue.retry_dead_letter(&id).await? {
        Some(task) => Ok(success(
            StatusCode::OK,
            json!({"id": id, "requeued": true, "task": task}),
        )),
        None => Err(ApiError::not_found(
            "unknown_dead_letter",
            format!("no dead letter with id {id}"),
        )),
    }
}

#[utoipa::path(
    delete, path = "/jobs/queue/dead/{id}", tag = "queues",
    params(("id" = String, Path, description = "The dead letter's id", pattern = r"^[^\x00]{1,1000}$")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Dropped", body = Success),
        (status = 404, description = "No such dead letter", body = ErrorEnvelope),
        ReadErrors, NeedsKey,
    )
)]
pub async fn delete_dead_letter(
    _: Authorized,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    check_field("id", &id)?;
    if state.services.queue.delete_dead_letter(&id).await? {
        Ok(success(StatusCode::OK, json!({"id": id, "deleted": true})))
    } else {
        Err(ApiError::not_found(
            "unknown_dead_letter",
            format!("no dead letter with id {id}"),
        ))
    }
}

#[utoipa::path(
    post, path = "/jobs/queue/pause", tag = "queues", params(QueueQuery),
    security(("api_key" = [])),
    responses((status = 200, description = "Paused", body = Success), ReadErrors, NeedsKey)
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
        json!({"queue": queue.keys().queue_name(), "paused": true}),
    ))
}

#[utoipa::path(
    post, path = "/jobs/queue/resume", tag = "queues", params(QueueQuery),
    security(("api_key" = [])),
    responses((status = 200, description = "Resumed", body = Success), ReadErrors, NeedsKey)
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
        json!({"queue": queue.keys().queue_name(), "paused": false}),
    ))
}

#[utoipa::path(
    post, path = "/scheduler/run", tag = "schedules",
    security(("api_key" = [])),
    responses((status = 200, description = "A pass now; its stats", body = Success), ReadErrors, NeedsKey)
)]
pub async fn scheduler_run(
    _: Authorized,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    let stats = trawl_schedule::run_pass_alerting(
        &state.services,
        "api",
        state.scheduler_batch,
        &state.alerts,
    )
    .await
    .map_err(|err| match err {
        trawl_schedule::PassError::Store(err) => err.into(),
        trawl_schedule::PassError::Queue(err) => err.into(),
        trawl_schedule::PassError::Submit(err) => err.into(),
        trawl_schedule::PassError::Pipeline(err) => err.into(),
        other => ApiError::internal(&other),
    })?;
    Ok(success(
        StatusCode::OK,
        serde_json::to_value(stats).expect("stats serialize"),
    ))
}

/// Recurring work of every kind, with each one's next fire.
#[utoipa::path(
    get, path = "/schedules", tag = "schedules",
    responses((status = 200, description = "Recurring work of any kind", body = Success), ReadErrors)
)]
pub async fn schedules(State(state): State<AppState>) -> Result<Response, ApiError> {
    let all = store::list_recurring(&state.services.db).await?;
    Ok(success(StatusCode::OK, json!({"schedules": all})))
}

/// Inserts or replaces a recurring task; a bad cron, zone, name or retry count is a 400 naming
/// the field.
#[utoipa::path(
    post, path = "/schedules", tag = "schedules",
    request_body = crate::openapi::ScheduleBody,
    security(("api_key" = [])),
    responses((status = 200, description = "Inserted or replaced", body = Success), ReadErrors, NeedsKey, BodyErrors)
)]
pub async fn upsert_schedule(
    _: Authorized,
    State(state): State<AppState>,
    super::ApiJson(body): super::ApiJson<store::NewRecurringTask>,
) -> Result<Response, ApiError> {
    let row = store::upsert_recurring(&state.services.db, &body).await?;
    Ok(success(StatusCode::OK, json!({"schedule": row})))
}

#[utoipa::path(
    delete, path = "/schedules/{name}", tag = "schedules",
    params(("name" = String, Path, description = "The recurring task's name", pattern = r"^[^\x00]{1,1000}$")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Forgotten (its runs stay)", body = Success),
        (status = 404, description = "No such recurring task", body = ErrorEnvelope),
        ReadErrors, NeedsKey,
    )
)]
pub async fn delete_schedule(
    _: Authorized,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    check_field("name", &name)?;
    if store::delete_recurring(&state.services.db, &name).await? {
        Ok(success(
            StatusCode::OK,
            json!({"name": name, "deleted": true}),
        ))
    } else {
        Err(ApiError::not_found(
            "unknown_schedule",
            format!("no schedule named {name}"),
        ))
    }
}

#[utoipa::path(
    get, path = "/scheduler/status", tag = "schedules",
    responses((status = 200, description = "The latest pass, totals, every next run", body = Success), ReadErrors)
)]
pub async fn scheduler_status(State(state): State<AppState>) -> Result<Response, ApiError> {
    let status = trawl_schedule::status(&state.services).await?;
    let sites: Vec<_> = trawl_scrape_runs::sites::list_sites(&state.services.db)
        .await?
        .into_iter()
        .map(|s| json!({"site_name": s.site_name, "enabled": s.enabled, "interval_minutes": s.interval_minutes,
                        "cron": s.cron, "time_zone": s.time_zone,
                        "last_run_at": s.last_run_at, "next_run_at": s.next_run_at}))
        .collect();
    Ok(success(
        StatusCode::OK,
        json!({"last_pass": status.last_pass, "totals": status.totals, "sites": sites,
               "schedules": store::list_recurring(&state.services.db).await?}),
    ))
}
