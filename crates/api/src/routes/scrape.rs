//! Scrapes through the API: `POST /jobs/scrape` (queued, or run inline in sync mode), a run's
//! status and results, and cancelling a run.
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use queue_core::store::{self, Run, RunAttempt, RunStatus, StartOutcome};
use queue_core::{SubmitError, Task, Trigger};
use serde::{Deserialize, Serialize};
use trawl_scrape_runs::postings::RunPosting;
use trawl_scrape_runs::task::MAX_RESULTS_WANTED;
use trawl_scrape_runs::{ScrapeRun, ScrapeTask, get_scrape_run};
use trawl_tasks::Lifecycle;
use utoipa::ToSchema;

use super::{ApiJson, check_field, query};
use crate::auth::Authorized;
use crate::openapi::{BodyErrors, ErrorEnvelope, NeedsKey, ReadErrors, Success};
use crate::{ApiError, AppState, success};

/// Sync mode is for small diagnostic runs (seed 003): at most this many results.
pub const SYNC_MAX_RESULTS: u32 = 25;
/// Postings listed with a run unless `?limit=` says otherwise.
const DEFAULT_POSTINGS_LIMIT: i64 = 100;
/// Default time limit of sync-mode scrapes.
pub const DEFAULT_SYNC_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScrapeBody {
    /// A registered site (GET /jobs/sites).
    #[schema(pattern = r"^[^\x00]{1,1000}$")]
    site_name: String,
    #[schema(pattern = r"^[^\x00]*$", max_length = 1000)]
    search_term: Option<String>,
    /// Not with `is_remote`.
    #[schema(pattern = r"^[^\x00]*$", max_length = 1000)]
    location: Option<String>,
    /// Restricts the search to remote postings (the location "Remote").
    is_remote: Option<bool>,
    /// At most 1000; a sync-mode run (`?mode=sync`) takes at most 25 (its run's
    /// `results_wanted` shows what it took).
    #[schema(minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "queue_core::integral::option")]
    results_wanted: Option<u32>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ScrapeQuery {
    /// `async` (default): queue the run; `sync`: run it inline (≤ 25 results) and answer with
    /// its postings.
    #[serde(default)]
    #[param(inline)]
    mode: ExecutionMode,
}

#[derive(Debug, Default, Deserialize, Serialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionMode {
    #[default]
    Async,
    Sync,
}

/// A scrape queued (async mode).
#[derive(Serialize, ToSchema)]
pub struct Queued {
    task_id: String,
    run_id: String,
    status: RunStatus,
    execution_mode: ExecutionMode,
}

/// A scrape run inline (sync mode): its run and the postings it saw.
#[derive(Serialize, ToSchema)]
pub struct Scraped {
    task_id: String,
    run_id: String,
    execution_mode: ExecutionMode,
    status: Option<RunStatus>,
    run: Option<ScrapeRun>,
    postings: Vec<RunPosting>,
}

#[utoipa::path(
    post, path = "/jobs/scrape", tag = "scrapes", params(ScrapeQuery), request_body = ScrapeBody,
    security(("api_key" = [])),
    responses(
        (status = 202, description = "Queued: `task_id`, `run_id`", body = Success<Queued>),
        (status = 200, description = "`?mode=sync`: the run and its postings", body = Success<Scraped>),
        (status = 404, description = "No such site", body = ErrorEnvelope),
        (status = 409, description = "The site is busy", body = ErrorEnvelope),
        ReadErrors, NeedsKey, BodyErrors,
    )
)]
pub async fn scrape(
    _: Authorized,
    State(state): State<AppState>,
    mode: Result<Query<ScrapeQuery>, QueryRejection>,
    ApiJson(body): ApiJson<ScrapeBody>,
) -> Result<Response, ApiError> {
    let mode = query(mode)?.mode;
    if let Some(wanted) = body.results_wanted
        && !(1..=MAX_RESULTS_WANTED).contains(&wanted)
    {
        return Err(ApiError::bad_request(format!(
            "results_wanted must be between 1 and {MAX_RESULTS_WANTED}, got {wanted}"
        )));
    }
    let location = match (body.location, body.is_remote) {
        (Some(_), Some(true)) => {
            return Err(ApiError::bad_request(
                "give either location or is_remote, not both",
            ));
        }
        (None, Some(true)) => Some("Remote".to_owned()),
        (location, _) => location,
    };
    let mut scrape = ScrapeTask {
        search_term: body.search_term,
        location,
        results_wanted: body.results_wanted,
        ..ScrapeTask::new(&body.site_name)
    };
    // The checks every scrape gets (NUL, lengths), before anything reaches PostgreSQL.
    scrape.check().map_err(ApiError::bad_request)?;
    let Some(site) =
        trawl_scrape_runs::sites::get_site(&state.services.db, &scrape.site_name).await?
    else {
        return Err(ApiError::not_found(
            "unknown_site",
            format!("unknown site: {}; see GET /jobs/sites", scrape.site_name),
        ));
    };
    let spec = site.spec()?;
    // What the request leaves out comes from the site, then trawl: the rule every door follows.
    scrape.apply_defaults(&spec);
    if mode == ExecutionMode::Sync {
        scrape.results_wanted = scrape.results_wanted.map(|n| n.min(SYNC_MAX_RESULTS));
    }
    let run_id = queue_core::new_run_id(Trigger::Manual);
    let task = scrape.into_task(run_id.clone(), Trigger::Manual);
    let task_id = task.task_id.clone().unwrap_or_default();
    let plan = trawl_scrape_runs::plan_for(&site);
    if mode == ExecutionMode::Sync {
        queue_core::reserve_run(&state.services, &task, &plan)
            .await
            .map_err(site_busy)?;
        return scrape_inline(&state, task, plan.lock_key).await;
    }
    queue_core::submit_run(&state.services, &task, &plan)
        .await
        .map_err(site_busy)?;
    Ok(success(
        StatusCode::ACCEPTED,
        Queued {
            task_id,
            run_id,
            status: RunStatus::Queued,
            execution_mode: ExecutionMode::Async,
        },
    ))
}

/// A scrape refused because its site is busy says so in the scrape's words.
fn site_busy(err: SubmitError) -> ApiError {
    match trawl_scrape_runs::task::site_busy(&err) {
        Some(message) => ApiError::new(StatusCode::CONFLICT, "site_busy", message),
        None => err.into(),
    }
}

/// Sync mode: the scrape kind's handler through the same lifecycle a worker uses, inline, with
/// a short time limit and no retries. The run goes on in a task of its own, so a client that
/// hangs up mid-run leaves it to finish and release its site, never stuck `running`.
async fn scrape_inline(
    state: &AppState,
    task: Task,
    lock_key: Option<String>,
) -> Result<Response, ApiError> {
    let run_id = task.run_id.clone().unwrap_or_default();
    let task_id = task.task_id.clone().unwrap_or_default();
    let state_owned = state.clone();
    let (run, id) = (run_id.clone(), task_id.clone());
    let running = tokio::spawn(async move {
        let state = &state_owned;
        let lifecycle = Lifecycle {
            services: state.services.clone(),
            // Sync mode answers in one request: there is no queue for a retry to wait in.
            retry_base: None,
            ledger: None,
        };
        let result = async {
            let attempt = match store::start_run(&state.services.db, &run, &id, "api-sync").await? {
                StartOutcome::Started { attempt } => attempt,
                other => {
                    return Err(ApiError::new(
                        StatusCode::CONFLICT,
                        "run_not_startable",
                        format!("{other:?}"),
                    ));
                }
            };
            let mut ctx = lifecycle.context(&run, &id, attempt);
            ctx.time_limit = state.sync_timeout;
            lifecycle
                .run_attempt(&state.sync_scrape, ctx, task.payload)
                .await?;
            Ok(())
        }
        .await;
        if let Some(key) = &lock_key {
            state.services.locks.release(key, &run).await?;
        }
        result
    });
    running.await.map_err(|join| ApiError::internal(&join))??;
    let run = get_scrape_run(&state.services.db, &run_id).await?;
    let postings = trawl_scrape_runs::postings::run_postings(
        &state.services.db,
        &run_id,
        i64::from(SYNC_MAX_RESULTS),
    )
    .await?;
    Ok(success(
        StatusCode::OK,
        Scraped {
            task_id,
            run_id,
            execution_mode: ExecutionMode::Sync,
            status: run.as_ref().map(|r| r.status),
            run,
            postings,
        },
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunQuery {
    /// Postings listed with a scrape run (default 100).
    #[param(minimum = 0, maximum = 1000)]
    limit: Option<i64>,
}

/// A run with its attempts; a scrape's with seed 003's columns and its postings.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum RunDetails {
    Scrape {
        run: ScrapeRun,
        status: RunStatus,
        attempts: Vec<RunAttempt>,
        postings: Vec<RunPosting>,
    },
    Other {
        run: Run,
        status: RunStatus,
        attempts: Vec<RunAttempt>,
    },
}

#[utoipa::path(
    get, path = "/jobs/scrape/{run_id}", tag = "scrapes",
    params(("run_id" = String, Path, description = "The run's id", pattern = r"^[^\x00]{1,1000}$"), RunQuery),
    responses(
        (status = 200, description = "The run, its attempts and (a scrape) its postings", body = Success<RunDetails>),
        (status = 404, description = "No such run", body = ErrorEnvelope),
        ReadErrors,
    )
)]
pub async fn run_status(
    State(state): State<AppState>,
    Path(run_id): Path<String>,
    limit: Result<Query<RunQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    check_field("run_id", &run_id)?;
    let limit = query(limit)?.limit.unwrap_or(DEFAULT_POSTINGS_LIMIT);
    if !(0..=1000).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 0 and 1000, got {limit}"
        )));
    }
    let db = &state.services.db;
    let attempts = store::run_attempts(db, &run_id).await?;
    // A scrape shows seed 003's columns and its postings; a run of another kind, the ledger's.
    if let Some(run) = get_scrape_run(db, &run_id).await? {
        let postings = trawl_scrape_runs::postings::run_postings(db, &run_id, limit).await?;
        let status = run.status;
        return Ok(success(
            StatusCode::OK,
            RunDetails::Scrape {
                run,
                status,
                attempts,
                postings,
            },
        ));
    }
    let Some(run) = store::get_run(db, &run_id).await? else {
        return Err(ApiError::not_found(
            "unknown_run",
            format!("no run with run_id {run_id}"),
        ));
    };
    let status = run.status;
    Ok(success(
        StatusCode::OK,
        RunDetails::Other {
            run,
            status,
            attempts,
        },
    ))
}

#[derive(Serialize, ToSchema)]
pub struct Cancelled {
    run_id: String,
    /// `failed` at once (it had not started), or still `running` until its worker stops it.
    status: RunStatus,
    cancelled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'static str>,
}

#[utoipa::path(
    post, path = "/jobs/scrape/{run_id}/cancel", tag = "scrapes",
    params(("run_id" = String, Path, description = "The run's id", pattern = r"^[^\x00]{1,1000}$")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "A queued run, failed at once", body = Success<Cancelled>),
        (status = 202, description = "A running run, or a queued one whose row another session holds: its worker stops it", body = Success<Cancelled>),
        (status = 404, description = "No such run", body = ErrorEnvelope),
        (status = 409, description = "The run already ended", body = ErrorEnvelope),
        ReadErrors, NeedsKey,
    )
)]
pub async fn cancel_run(
    _: Authorized,
    State(state): State<AppState>,
    Path(run_id): Path<String>,
) -> Result<Response, ApiError> {
    check_field("run_id", &run_id)?;
    match queue_core::cancel_run(&state.services, &run_id).await? {
        queue_core::Cancelled::BeforeStart => Ok(success(
            StatusCode::OK,
            Cancelled {
                run_id,
                status: RunStatus::Failed,
                cancelled: true,
                message: None,
            },
        )),
        queue_core::Cancelled::Requested => Ok(success(
            StatusCode::ACCEPTED,
            Cancelled {
                run_id,
                status: RunStatus::Running,
                cancelled: true,
                message: Some("the worker stops at its next page and marks the run failed"),
            },
        )),
        queue_core::Cancelled::AlreadyFinished(status) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "run_finished",
            format!("run {run_id} already ended: {status}"),
        )),
        queue_core::Cancelled::NoSuchRun => Err(ApiError::not_found(
            "unknown_run",
            format!("no run with run_id {run_id}"),
        )),
    }
}
