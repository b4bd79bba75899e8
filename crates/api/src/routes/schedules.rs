//! Schedules and the scheduler: recurring work of every kind, a pass now, and when everything
//! runs next.
use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use queue_core::store::{self, RecurringTask};
use serde::Serialize;
use trawl_schedule::PassStats;
use utoipa::ToSchema;

use super::check_field;
use crate::auth::Authorized;
use crate::openapi::{BodyErrors, ErrorEnvelope, NeedsKey, ReadErrors, Success};
use crate::{ApiError, AppState, success};

#[utoipa::path(
    post, path = "/scheduler/run", tag = "schedules",
    security(("api_key" = [])),
    responses((status = 200, description = "A pass now; its stats", body = Success<PassStats>), ReadErrors, NeedsKey)
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
    Ok(success(StatusCode::OK, stats))
}

#[derive(Serialize, ToSchema)]
pub struct Schedules {
    schedules: Vec<RecurringTask>,
}

/// Recurring work of every kind, with each one's next fire.
#[utoipa::path(
    get, path = "/schedules", tag = "schedules",
    responses((status = 200, description = "Recurring work of any kind", body = Success<Schedules>), ReadErrors)
)]
pub async fn schedules(State(state): State<AppState>) -> Result<Response, ApiError> {
    let all = store::list_recurring(&state.services.db).await?;
    Ok(success(StatusCode::OK, Schedules { schedules: all }))
}

/// Inserts or replaces a recurring task (on its kind's queue when it names none); a bad cron,
/// zone, name or retry count, a kind trawl does not run, a payload its kind refuses or a queue
/// other than its kind's is a 400 naming the field.
#[utoipa::path(
    post, path = "/schedules", tag = "schedules",
    request_body = store::NewRecurringTask,
    security(("api_key" = [])),
    responses((status = 200, description = "Inserted or replaced", body = Success<Schedule>), ReadErrors, NeedsKey, BodyErrors)
)]
pub async fn upsert_schedule(
    _: Authorized,
    State(state): State<AppState>,
    super::ApiJson(mut body): super::ApiJson<store::NewRecurringTask>,
) -> Result<Response, ApiError> {
    trawl_kinds::resolve_recurring(&mut body)?;
    let row = store::upsert_recurring(&state.services.db, &body).await?;
    Ok(success(StatusCode::OK, Schedule { schedule: row }))
}

#[derive(Serialize, ToSchema)]
pub struct Schedule {
    schedule: RecurringTask,
}

#[derive(Serialize, ToSchema)]
pub struct DeletedSchedule {
    name: String,
    deleted: bool,
}

#[utoipa::path(
    delete, path = "/schedules/{name}", tag = "schedules",
    params(("name" = String, Path, description = "The recurring task's name", pattern = r"^[^\x00]{1,1000}$")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Forgotten (its runs stay)", body = Success<DeletedSchedule>),
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
            DeletedSchedule {
                name,
                deleted: true,
            },
        ))
    } else {
        Err(ApiError::not_found(
            "unknown_schedule",
            format!("no schedule named {name}"),
        ))
    }
}

/// The latest pass, the totals over every pass, and when each site and recurring task runs.
#[derive(Serialize, ToSchema)]
pub struct SchedulerStatus {
    last_pass: Option<PassStats>,
    /// Sums over every pass: `passes`, `enqueued`, `skipped_locked`, `skipped_claimed`,
    /// `errors`, and what recovery and the reconciler repaired: `recovered_workers`,
    /// `requeued`, `poisoned`, `reconciled`, `lost`, `reconcile_held`.
    totals: BTreeMap<String, u64>,
    sites: Vec<SiteNextRun>,
    schedules: Vec<RecurringTask>,
}

#[derive(Serialize, ToSchema)]
pub struct SiteNextRun {
    site_name: String,
    enabled: bool,
    interval_minutes: i32,
    cron: Option<String>,
    time_zone: Option<String>,
    last_run_at: Option<DateTime<Utc>>,
    next_run_at: Option<DateTime<Utc>>,
}

#[utoipa::path(
    get, path = "/scheduler/status", tag = "schedules",
    responses((status = 200, description = "The latest pass, totals, every next run", body = Success<SchedulerStatus>), ReadErrors)
)]
pub async fn scheduler_status(State(state): State<AppState>) -> Result<Response, ApiError> {
    let status = trawl_schedule::status(&state.services).await?;
    let sites = trawl_scrape_runs::sites::list_sites(&state.services.db)
        .await?
        .into_iter()
        .map(|s| SiteNextRun {
            site_name: s.site_name,
            enabled: s.enabled,
            interval_minutes: s.interval_minutes,
            cron: s.cron,
            time_zone: s.time_zone,
            last_run_at: s.last_run_at,
            next_run_at: s.next_run_at,
        })
        .collect();
    Ok(success(
        StatusCode::OK,
        SchedulerStatus {
            last_pass: status.last_pass,
            totals: status.totals,
            sites,
            schedules: store::list_recurring(&state.services.db).await?,
        },
    ))
}
