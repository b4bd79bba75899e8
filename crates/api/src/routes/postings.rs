//! Postings for people: `GET /jobs/postings` (filters, full text, keyset pages) and
//! `GET /jobs/postings/{job_id}`. Every malformed parameter is a 400 naming it.
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

use trawl_pipeline::similarity::{ActiveModel, Scored};
use trawl_scrape_runs::search::{
    self, MAX_PAGE, Position, PostingPage, PostingQuery, PublicPosting, ScoredPosting,
};

use super::{check_field, query};
use crate::openapi::{ErrorEnvelope, ReadErrors, Success};
use crate::{ApiError, AppState, success};

/// Postings on a page unless `limit` says otherwise.
const DEFAULT_PAGE: i64 = 20;

/// The query string, every value as text so that a bad one gets a message naming it.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PostingsParams {
    /// Full text, web-search syntax: `rust -java "data engineer" or python`.
    #[param(pattern = r"^[^\x00]*$", max_length = 1000)]
    pub(crate) q: Option<String>,
    /// The site's name, exactly.
    #[param(pattern = r"^[^\x00]*$", max_length = 1000)]
    pub(crate) site: Option<String>,
    /// Company name containing this, any case.
    #[param(pattern = r"^[^\x00]*$", max_length = 1000)]
    pub(crate) company: Option<String>,
    /// Location containing this, any case.
    #[param(pattern = r"^[^\x00]*$", max_length = 1000)]
    pub(crate) location: Option<String>,
    /// Skills containing this, any case.
    #[param(pattern = r"^[^\x00]*$", max_length = 1000)]
    pub(crate) skill: Option<String>,
    /// Posted on or after this day.
    #[param(value_type = Option<chrono::NaiveDate>)]
    pub(crate) posted_since: Option<String>,
    #[param(value_type = Option<bool>)]
    pub(crate) has_salary: Option<String>,
    /// The top of the salary range (or its only figure) is at least this.
    #[param(value_type = Option<f64>, minimum = 0)]
    pub(crate) salary_at_least: Option<String>,
    /// The `next` of the previous page.
    #[param(pattern = r"^[0-9]{1,18}\.[0-9a-f]{32}$")]
    pub(crate) cursor: Option<String>,
    /// Postings per page (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub(crate) limit: Option<String>,
    /// `tfidf`: ranked by the active TF-IDF model's cosine with `q` (needs `q`; one page, no
    /// cursor); default: newest first.
    #[param(pattern = r"^(tfidf|newest)$")]
    pub(crate) rank: Option<String>,
}

/// How a search is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rank {
    Newest,
    Tfidf,
}

impl PostingsParams {
    /// The search and its order.
    pub(crate) fn parse_ranked(mut self) -> Result<(PostingQuery, Rank), ApiError> {
        let rank = match self.rank.take().as_deref() {
            None | Some("newest") => Rank::Newest,
            Some("tfidf") => Rank::Tfidf,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "rank: expected tfidf or newest, got {other:?}"
                )));
            }
        };
        let query = self.parse()?;
        if rank == Rank::Tfidf && (query.q.is_none() || query.after.is_some()) {
            return Err(ApiError::bad_request(
                "rank=tfidf needs q, and has one page (no cursor)",
            ));
        }
        Ok((query, rank))
    }

    pub(crate) fn parse(self) -> Result<PostingQuery, ApiError> {
        // A filter given empty filters nothing; a typed value given empty is malformed.
        let raw = |name: &str, value: Option<String>| -> Result<Option<String>, ApiError> {
            if let Some(value) = &value {
                check_field(name, value)?;
            }
            Ok(value)
        };
        let text = |name: &str, value: Option<String>| -> Result<Option<String>, ApiError> {
            Ok(raw(name, value)?
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty()))
        };
        let bad = |name: &str, expected: &str, got: &str| {
            ApiError::bad_request(format!("{name}: expected {expected}, got {got:?}"))
        };
        let posted_since = match raw("posted_since", self.posted_since)? {
            Some(day) => Some(
                NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                    .map_err(|_| bad("posted_since", "a date YYYY-MM-DD", &day))?,
            ),
            None => None,
        };
        let has_salary = match raw("has_salary", self.has_salary)?.as_deref() {
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(other) => return Err(bad("has_salary", "true or false", other)),
            None => None,
        };
        let salary_at_least = match raw("salary_at_least", self.salary_at_least)? {
            Some(amount) => match amount.parse::<f64>() {
                Ok(amount) if amount.is_finite() && amount >= 0.0 => Some(amount),
                _ => return Err(bad("salary_at_least", "a number ≥ 0", &amount)),
            },
            None => None,
        };
        let after = match raw("cursor", self.cursor)? {
            Some(cursor) => Some(
                Position::from_cursor(&cursor)
                    .ok_or_else(|| bad("cursor", "the `next` of a previous page", &cursor))?,
            ),
            None => None,
        };
        let limit = match raw("limit", self.limit)? {
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

/// A page of postings: newest first with the next page's cursor, or (`rank=tfidf`) best first
/// under the active TF-IDF model with their scores.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum Postings {
    Newest(PostingPage),
    Ranked(RankedPage),
}

#[derive(Serialize, ToSchema)]
pub struct RankedPage {
    model_version: String,
    postings: Vec<ScoredPosting>,
    /// Always null: one page, no cursor.
    next: Option<String>,
}

#[utoipa::path(
    get, path = "/jobs/postings", tag = "postings", params(PostingsParams),
    responses((status = 200, description = "A page of postings, newest first, and `next`", body = Success<Postings>), ReadErrors)
)]
pub async fn postings(
    State(state): State<AppState>,
    params: Result<Query<PostingsParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (search, rank) = query(params)?.parse_ranked()?;
    if rank == Rank::Tfidf {
        return ranked(&state, &search).await;
    }
    let page = search::search_postings(&state.services.db, &search).await?;
    Ok(success(StatusCode::OK, Postings::Newest(page)))
}

/// The postings closest to `q` under the active TF-IDF model, the other filters applied.
async fn ranked(state: &AppState, search: &PostingQuery) -> Result<Response, ApiError> {
    let active = active_model(state).await?;
    let vector = active
        .model
        .transform(search.q.as_deref().unwrap_or_default());
    // Filters may drop candidates: take ten times the page before filtering.
    let nearest = active.nearest(&vector, None, search.limit as usize * 10);
    let scored = with_scores(&state.services.db, search, &nearest).await?;
    Ok(success(
        StatusCode::OK,
        Postings::Ranked(RankedPage {
            model_version: active.version.clone(),
            postings: scored,
            next: None,
        }),
    ))
}

/// The active TF-IDF model, or the 409 that says there is none yet.
pub(crate) async fn active_model(state: &AppState) -> Result<Arc<ActiveModel>, ApiError> {
    state
        .similarity
        .active(&state.services.db)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "no_model",
                "no active TF-IDF model yet: run the pipeline",
            )
        })
}

/// A similar-postings request's posting id and how many (1 to 100, default 10): 400s name
/// what is wrong.
pub(crate) fn similar_request(
    job_id: &str,
    limit: Option<usize>,
) -> Result<(uuid::Uuid, usize), ApiError> {
    let id = job_id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("job_id: expected a UUID, got {job_id:?}")))?;
    let limit = limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit: expected 1 to 100, got {limit}"
        )));
    }
    Ok((id, limit))
}

/// The postings of `nearest` (no filter), in its order, each as `{"score", "posting"}`.
pub(crate) async fn all_with_scores(
    db: &sqlx::PgPool,
    nearest: &[Scored],
) -> Result<Vec<ScoredPosting>, ApiError> {
    let everything = PostingQuery {
        limit: nearest.len().max(1) as i64,
        ..Default::default()
    };
    with_scores(db, &everything, nearest).await
}

/// The postings of `nearest` that pass `filters` (all of them for no filter), in its order,
/// each as `{"score", "posting"}`.
pub(crate) async fn with_scores(
    db: &sqlx::PgPool,
    filters: &PostingQuery,
    nearest: &[Scored],
) -> Result<Vec<ScoredPosting>, ApiError> {
    let ids: Vec<uuid::Uuid> = nearest.iter().map(|s| s.job_id).collect();
    let scores: std::collections::HashMap<uuid::Uuid, f64> =
        nearest.iter().map(|s| (s.job_id, s.score)).collect();
    let postings = search::filter_ranked(db, filters, &ids).await?;
    Ok(postings
        .into_iter()
        .map(|posting| ScoredPosting {
            score: scores[&posting.job_id],
            posting,
        })
        .collect())
}

#[utoipa::path(
    get, path = "/jobs/postings/{job_id}", tag = "postings",
    params(("job_id" = uuid::Uuid, Path, description = "The posting's id")),
    responses(
        (status = 200, description = "The posting, description included", body = Success<PublicPosting>),
        (status = 404, description = "No such posting", body = ErrorEnvelope),
        ReadErrors,
    )
)]
pub async fn posting(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Result<Response, ApiError> {
    check_field("job_id", &job_id)?;
    let id = uuid::Uuid::try_parse(&job_id)
        .map_err(|_| ApiError::bad_request(format!("job_id: expected a UUID, got {job_id:?}")))?;
    match search::get_posting(&state.services.db, id).await? {
        Some(posting) => Ok(success(StatusCode::OK, posting)),
        None => Err(ApiError::not_found(
            "posting_not_found",
            format!("no posting {job_id}"),
        )),
    }
}
