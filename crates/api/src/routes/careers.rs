//! Career pages (seed 004): companies (add, import a CSV, list, enable/disable), a check now,
//! and the checks' snapshots with their diffs.
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use trawl_careers::snapshots::Snapshot;
use trawl_careers::{CareersError, Company, NewCompany, companies};
use utoipa::ToSchema;

use super::{ApiJson, query};
use crate::auth::Authorized;
use crate::openapi::{BodyErrors, ErrorEnvelope, NeedsKey, ReadErrors, Success};
use crate::{ApiError, AppState, success};

impl From<CareersError> for ApiError {
    fn from(err: CareersError) -> Self {
        match err {
            CareersError::UnknownCompany(_) => {
                ApiError::not_found("company_not_found", err.to_string())
            }
            CareersError::Invalid(_) | CareersError::Csv(_) => {
                ApiError::bad_request(err.to_string())
            }
            CareersError::Submit(err) => err.into(),
            CareersError::Store(err) => err.into(),
            CareersError::Db(err) => queue_core::StoreError::from(err).into(),
            other => ApiError::internal(&other),
        }
    }
}

fn slug(text: &str) -> Result<(), ApiError> {
    trawl_careers::check_slug(text).map_err(ApiError::bad_request)
}

/// Every watched company: its page, schedule and last check.
#[derive(Serialize, ToSchema)]
pub struct Companies {
    companies: Vec<Company>,
}

#[derive(Serialize, ToSchema)]
pub struct Added {
    company: Company,
}

#[derive(Serialize, ToSchema)]
pub struct Imported {
    /// The slugs of the companies added.
    imported: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CompanyEnabled {
    /// The company's slug.
    company: String,
    enabled: bool,
}

#[derive(Serialize, ToSchema)]
pub struct CheckQueued {
    run_id: String,
    /// The company's slug.
    company: String,
}

#[derive(Serialize, ToSchema)]
pub struct Snapshots {
    snapshots: Vec<Snapshot>,
}

#[utoipa::path(
    get, path = "/careers/companies", tag = "careers",
    responses((status = 200, description = "Every company", body = Success<Companies>), ReadErrors)
)]
pub async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let all = companies::list(&state.services.db).await?;
    Ok(success(StatusCode::OK, Companies { companies: all }))
}

/// Adds a company (or replaces the one with the same slug) and its check schedule. A URL that
/// is not http(s), or points at a private address, is a 400.
#[utoipa::path(
    post, path = "/careers/companies", tag = "careers", request_body = NewCompany,
    security(("api_key" = [])),
    responses((status = 201, description = "Added", body = Success<Added>), ReadErrors, NeedsKey, BodyErrors)
)]
pub async fn add(
    _: Authorized,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewCompany>,
) -> Result<Response, ApiError> {
    let added = companies::add(&state.services.db, body, state.careers_allow_private).await?;
    Ok(success(StatusCode::CREATED, Added { company: added }))
}

/// A CSV file's text, `company,url` with a header line (seed 004's `inputs/companies.csv`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CsvImport {
    pub csv: String,
}

/// Imports a CSV: every row checked first; one bad row refuses the file (a 400 naming each bad
/// line) and nothing is written.
#[utoipa::path(
    post, path = "/careers/companies/import", tag = "careers", request_body = CsvImport,
    security(("api_key" = [])),
    responses((status = 201, description = "Imported: the companies' slugs", body = Success<Imported>), ReadErrors, NeedsKey, BodyErrors)
)]
pub async fn import(
    _: Authorized,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CsvImport>,
) -> Result<Response, ApiError> {
    let imported =
        companies::import_csv(&state.services.db, &body.csv, state.careers_allow_private).await?;
    Ok(success(StatusCode::CREATED, Imported { imported }))
}

/// Enables or disables a company and its schedule (`action`: enable | disable).
#[utoipa::path(
    post, path = "/careers/companies/{company}/{action}", tag = "careers",
    params(
        ("company" = String, Path, description = "The company's slug", pattern = r"^[a-z0-9][a-z0-9-]{0,47}$"),
        ("action" = String, Path, description = "enable or disable", pattern = r"^(enable|disable)$"),
    ),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Changed", body = Success<CompanyEnabled>),
        (status = 404, description = "No such company", body = ErrorEnvelope),
        ReadErrors, NeedsKey,
    )
)]
pub async fn set_enabled(
    _: Authorized,
    State(state): State<AppState>,
    Path((company, action)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    slug(&company)?;
    let enabled = match action.as_str() {
        "enable" => true,
        "disable" => false,
        other => {
            return Err(ApiError::not_found(
                "not_found",
                format!("no action {other:?}: enable or disable"),
            ));
        }
    };
    if !companies::set_enabled(&state.services.db, &company, enabled).await? {
        return Err(CareersError::UnknownCompany(company).into());
    }
    Ok(success(StatusCode::OK, CompanyEnabled { company, enabled }))
}

/// Checks a company's career page now: a `career_snapshot` run (202 with its run_id; 409 while
/// another check of the company runs).
#[utoipa::path(
    post, path = "/careers/companies/{company}/snapshot", tag = "careers",
    params(("company" = String, Path, description = "The company's slug", pattern = r"^[a-z0-9][a-z0-9-]{0,47}$")),
    security(("api_key" = [])),
    responses(
        (status = 202, description = "Queued: its run_id", body = Success<CheckQueued>),
        (status = 404, description = "No such company", body = ErrorEnvelope),
        (status = 409, description = "A check of this company is running", body = ErrorEnvelope),
        ReadErrors, NeedsKey,
    )
)]
pub async fn snapshot(
    _: Authorized,
    State(state): State<AppState>,
    Path(company): Path<String>,
) -> Result<Response, ApiError> {
    slug(&company)?;
    if companies::get(&state.services.db, &company)
        .await?
        .is_none()
    {
        return Err(CareersError::UnknownCompany(company).into());
    }
    let run_id = trawl_careers::submit(&state.services, &company).await?;
    Ok(success(
        StatusCode::ACCEPTED,
        CheckQueued { run_id, company },
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SnapshotsQuery {
    /// One company's checks only.
    #[param(pattern = r"^[a-z0-9][a-z0-9-]{0,47}$")]
    company: Option<String>,
    /// How many (default 20, at most 200).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// The latest checks: links found, added and removed (with the diff's links), warnings and
/// whether each created its diff (`diff_enqueued`).
#[utoipa::path(
    get, path = "/careers/snapshots", tag = "careers", params(SnapshotsQuery),
    responses((status = 200, description = "The latest checks, newest first", body = Success<Snapshots>), ReadErrors)
)]
pub async fn snapshots(
    State(state): State<AppState>,
    params: Result<Query<SnapshotsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = query(params)?;
    if let Some(company) = &params.company {
        slug(company)?;
    }
    let limit = params.limit.unwrap_or(20);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit: expected 1 to 200, got {limit}"
        )));
    }
    let recent =
        trawl_careers::snapshots::recent(&state.services.db, params.company.as_deref(), limit)
            .await?;
    Ok(success(StatusCode::OK, Snapshots { snapshots: recent }))
}
