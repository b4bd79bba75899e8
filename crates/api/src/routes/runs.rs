//! The ledger, for every kind: `GET /runs` (newest first, filtered, keyset pages) and
//! `GET /runs/{run_id}` (the same answer as `GET /jobs/scrape/{run_id}`, under the name a run
//! of any kind is looked up by).
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use queue_core::store::RunStatus;
use trawl_scrape_runs::recent::{MAX_RUNS_PAGE, RunFilter, RunPage, RunPosition, runs_page};

use super::scrape::{RunDetails, RunQuery};
use super::{check_field, query};
use crate::openapi::{ErrorEnvelope, ReadErrors, Success};
use crate::{ApiError, AppState, success};

/// Runs on a page unless `limit` says otherwise.
const DEFAULT_PAGE: i64 = 50;

/// The query string, every value as text so that a bad one gets a message naming it.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunsParams {
    /// The kind's name (`scrape`, `pipeline_batch`, `embed_batch`, ...).
    #[param(pattern = r"^[^\x00]*$", max_length = 1000)]
    kind: Option<String>,
    #[param(pattern = r"^(queued|running|succeeded|partial|failed)$")]
    status: Option<String>,
    /// A scrape's site, exactly.
    #[param(pattern = r"^[^\x00]*$", max_length = 1000)]
    site: Option<String>,
    /// The `next` of the previous page.
    #[param(pattern = r"^[0-9]{1,18}\.[^\x00]{1,1000}$")]
    cursor: Option<String>,
    /// Runs per page (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500)]
    limit: Option<String>,
}

impl RunsParams {
    fn parse(self) -> Result<(RunFilter, i64), ApiError> {
        let given = |value: Option<String>| value.filter(|v| !v.is_empty());
        for (name, value) in [("kind", &self.kind), ("site", &self.site)] {
            if let Some(value) = value {
                check_field(name, value)?;
            }
        }
        let status = match self.status {
            Some(text) => Some(RunStatus::parse(&text).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "status: expected one of queued, running, succeeded, partial, failed; \
                     got {text:?}"
                ))
            })?),
            None => None,
        };
        let after = match self.cursor {
            Some(cursor) => Some(RunPosition::from_cursor(&cursor).ok_or_else(|| {
                ApiError::bad_request(format!("cursor {cursor:?} is not a page's `next`"))
            })?),
            None => None,
        };
        let limit = match self.limit {
            None => DEFAULT_PAGE,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|limit| (1..=MAX_RUNS_PAGE).contains(limit))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "limit: expected a whole number from 1 to {MAX_RUNS_PAGE}, got {text:?}"
                    ))
                })?,
        };
        let filter = RunFilter {
            site: given(self.site),
            kind: given(self.kind),
            status,
            after,
        };
        Ok((filter, limit))
    }
}

/// Runs of every kind, newest first: what the scheduler, the API, schedules and operators
/// queued, and how each went.
#[utoipa::path(
    get, path = "/runs", tag = "runs", params(RunsParams),
    responses(
        (status = 200, description = "A page of runs, newest first, and the next page's cursor", body = Success<RunPage>),
        ReadErrors,
    )
)]
pub async fn runs(
    State(state): State<AppState>,
    params: Result<Query<RunsParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (filter, limit) = query(params)?.parse()?;
    let page = runs_page(&state.services.db, &filter, limit).await?;
    Ok(success(StatusCode::OK, page))
}

/// One run of any kind with its attempts (a scrape's with seed 003's columns and its
/// postings): the same answer as `GET /jobs/scrape/{run_id}`.
#[utoipa::path(
    get, path = "/runs/{run_id}", tag = "runs",
    params(("run_id" = String, Path, description = "The run's id", pattern = r"^[^\x00]{1,1000}$"), RunQuery),
    responses(
        (status = 200, description = "The run, its attempts and (a scrape) its postings", body = Success<RunDetails>),
        (status = 404, description = "No such run", body = ErrorEnvelope),
        ReadErrors,
    )
)]
pub async fn run(
    state: State<AppState>,
    run_id: Path<String>,
    limit: Result<Query<RunQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    super::scrape::run_status(state, run_id, limit).await
}
