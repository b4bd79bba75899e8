//! Postings for people: `GET /jobs/postings` (filters, full text, keyset pages) and
//! `GET /jobs/postings/{job_id}`. Every malformed parameter is a 400 naming it.
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::NaiveDate;
use serde::Deserialize;
use trawl_scrape_runs::search::{self, MAX_PAGE, Position, PostingQuery};

use super::{check_field, query};
use crate::{ApiError, AppState, success};

/// Postings on a page unless `limit` says otherwise.
const DEFAULT_PAGE: i64 = 20;

/// The query string, every value as text so that a bad one gets a message naming it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostingsParams {
    q: Option<String>,
    site: Option<String>,
    company: Option<String>,
    location: Option<String>,
    skill: Option<String>,
    posted_since: Option<String>,
    has_salary: Option<String>,
    salary_at_least: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

impl PostingsParams {
    fn parse(self) -> Result<PostingQuery, ApiError> {
        let text = |name: &str, value: Option<String>| -> Result<Option<String>, ApiError> {
            match value {
                Some(value) => {
                    check_field(name, &value)?;
                    Ok(Some(value.trim().to_owned()).filter(|v| !v.is_empty()))
                }
                None => Ok(None),
            }
        };
        let bad = |name: &str, expected: &str, got: &str| {
            ApiError::bad_request(format!("{name}: expected {expected}, got {got:?}"))
        };
        let posted_since = match text("posted_since", self.posted_since)? {
            Some(day) => Some(
                NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                    .map_err(|_| bad("posted_since", "a date YYYY-MM-DD", &day))?,
            ),
            None => None,
        };
        let has_salary = match text("has_salary", self.has_salary)?.as_deref() {
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(other) => return Err(bad("has_salary", "true or false", other)),
            None => None,
        };
        let salary_at_least = match text("salary_at_least", self.salary_at_least)? {
            Some(amount) => match amount.parse::<f64>() {
                Ok(amount) if amount.is_finite() && amount >= 0.0 => Some(amount),
                _ => return Err(bad("salary_at_least", "a number ≥ 0", &amount)),
            },
            None => None,
        };
        let after = match text("cursor", self.cursor)? {
            Some(cursor) => Some(
                Position::from_cursor(&cursor)
                    .ok_or_else(|| bad("cursor", "the `next` of a previous page", &cursor))?,
            ),
            None => None,
        };
        let limit = match text("limit", self.limit)? {
            Some(limit) => match limit.parse::<i64>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
                _ => {
                    return Err(bad(
                        "limit",
                        &format!("a whole number from 1 to {MAX_PAGE}"),
                        &limit,
                    ));
                }
            },
            None => DEFAULT_PAGE,
        };
        Ok(PostingQuery {
            q: text("q", self.q)?,
            site: text("site", self.site)?,
            company: text("company", self.company)?,
            location: text("location", self.location)?,
            skill: text("skill", self.skill)?,
            posted_since,
            has_salary,
            salary_at_least,
            after,
            limit,
        })
    }
}

pub async fn postings(
    State(state): State<AppState>,
    params: Result<Query<PostingsParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let search = query(params)?.parse()?;
    let page = search::search_postings(&state.services.db, &search).await?;
    Ok(success(StatusCode::OK, serde_json::json!(page)))
}

pub async fn posting(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Result<Response, ApiError> {
    check_field("job_id", &job_id)?;
    let id = uuid::Uuid::try_parse(&job_id)
        .map_err(|_| ApiError::bad_request(format!("job_id: expected a UUID, got {job_id:?}")))?;
    match search::get_posting(&state.services.db, id).await? {
        Some(posting) => Ok(success(StatusCode::OK, serde_json::json!(posting))),
        None => Err(ApiError::not_found(
            "posting_not_found",
            format!("no posting {job_id}"),
        )),
    }
}
