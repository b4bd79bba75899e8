//! Fixture endpoints in the real formats of the ATS and job-search APIs trawl reads, built from
//! the same deterministic catalog (see ../shared/reference/sources.md for the formats):
//!
//! - Greenhouse `GET /greenhouse/v1/boards/{token}/jobs?content=true`: the first 30 postings.
//! - Lever `GET /lever/v0/postings/{site}?mode=json&skip=&limit=`: all 240, paged.
//! - Ashby `GET /ashby/posting-api/job-board/{name}?includeCompensation=true`: the first 25, one unlisted.
//! - Adzuna `GET /adzuna/v1/api/jobs/{country}/search/{page}?app_id=&app_key=&results_per_page=&what=`:
//!   1,500 synthetic results per query (to exercise the 1,000 cap); 401 without credentials.
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::DemoBoard;
use crate::catalog::{self, DemoPosting};

pub const GREENHOUSE_JOBS: u32 = 30;
pub const ASHBY_JOBS: u32 = 25;
/// The one Ashby posting with `isListed: false` (it must be skipped).
pub const ASHBY_UNLISTED: u32 = 7;
pub const ADZUNA_COUNT: u32 = 1500;

fn postings(count: u32) -> impl Iterator<Item = DemoPosting> {
    (1..=count).filter_map(catalog::posting)
}

fn epoch_ms(posting: &DemoPosting) -> i64 {
    posting
        .posted
        .and_hms_opt(9, 0, 0)
        .expect("valid time")
        .and_utc()
        .timestamp_millis()
}

pub async fn greenhouse(State(board): State<DemoBoard>, Path(token): Path<String>) -> Response {
    board.count_api();
    let jobs: Vec<Value> = postings(GREENHOUSE_JOBS)
        .map(|p| {
            let pay = p.salary.map(|(min, max)| {
                json!([{"min_cents": min * 100, "max_cents": max * 100, "currency_type": "EUR", "title": "Base"}])
            });
            json!({
                "id": 4_000_000 + p.id,
                "internal_job_id": p.id,
                "title": p.title,
                "updated_at": format!("{}T09:00:00-05:00", p.posted),
                "first_published": format!("{}T09:00:00-05:00", p.posted),
                "location": {"name": p.location},
                "absolute_url": format!("https://boards.greenhouse.io/{token}/jobs/{}", 4_000_000 + p.id),
                // Greenhouse entity-escapes its HTML content.
                "content": p.description.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;"),
                "departments": [{"id": 1, "name": "Engineering", "parent_id": null, "child_ids": []}],
                "offices": [{"id": 1, "name": p.location, "location": p.location}],
                "pay_input_ranges": pay.unwrap_or(json!([])),
            })
        })
        .collect();
    Json(json!({"jobs": jobs, "meta": {"total": GREENHOUSE_JOBS}})).into_response()
}

#[derive(Deserialize)]
pub struct LeverQuery {
    skip: Option<usize>,
    limit: Option<usize>,
}

pub async fn lever(
    State(board): State<DemoBoard>,
    Path(site): Path<String>,
    Query(q): Query<LeverQuery>,
) -> Response {
    board.count_api();
    let jobs: Vec<Value> = postings(catalog::POSTING_COUNT)
        .skip(q.skip.unwrap_or(0))
        .take(q.limit.unwrap_or(100))
        .map(|p| {
            json!({
                "id": format!("00000000-0000-4000-8000-{:012}", p.id),
                "text": p.title,
                "categories": {"location": p.location, "team": "Platform", "department": "Engineering",
                               "commitment": "Full-time", "allLocations": [p.location]},
                "country": p.country,
                "workplaceType": if p.is_remote() { "remote" } else { "on-site" },
                "description": p.description,
                "descriptionPlain": crate::html::text_of(&p.description),
                "hostedUrl": format!("https://jobs.lever.co/{site}/{:012}", p.id),
                "applyUrl": format!("https://jobs.lever.co/{site}/{:012}/apply", p.id),
                "createdAt": epoch_ms(&p),
                "salaryRange": p.salary.map(|(min, max)| json!({"currency": "EUR", "interval": "per-year-salary", "min": min, "max": max})),
            })
        })
        .collect();
    Json(Value::Array(jobs)).into_response()
}

pub async fn ashby(State(board): State<DemoBoard>, Path(name): Path<String>) -> Response {
    board.count_api();
    let jobs: Vec<Value> = postings(ASHBY_JOBS)
        .map(|p| {
            let compensation = p.salary.map(|(min, max)| json!({
                "compensationTierSummary": format!("€{min} – €{max}"),
                "summaryComponents": [{"compensationType": "Salary", "interval": "1 YEAR", "currencyCode": "EUR",
                                       "minValue": min, "maxValue": max}],
            }));
            json!({
                "id": format!("ashby-{}", p.id),
                "title": p.title,
                "location": p.location,
                "department": "Engineering",
                "team": "Platform",
                "isRemote": p.is_remote(),
                "workplaceType": if p.is_remote() { "Remote" } else { "OnSite" },
                "employmentType": "FullTime",
                "descriptionHtml": p.description,
                "descriptionPlain": crate::html::text_of(&p.description),
                "jobUrl": format!("https://jobs.ashbyhq.com/{name}/ashby-{}", p.id),
                "applyUrl": format!("https://jobs.ashbyhq.com/{name}/ashby-{}/application", p.id),
                "publishedAt": format!("{}T09:00:00.000+00:00", p.posted),
                "isListed": p.id != ASHBY_UNLISTED,
                "compensation": compensation,
            })
        })
        .collect();
    Json(json!({"apiVersion": "1", "jobs": jobs})).into_response()
}

#[derive(Deserialize)]
pub struct AdzunaQuery {
    app_id: Option<String>,
    app_key: Option<String>,
    results_per_page: Option<u32>,
    what: Option<String>,
}

pub async fn adzuna(
    State(board): State<DemoBoard>,
    Path((country, page)): Path<(String, u32)>,
    Query(q): Query<AdzunaQuery>,
) -> Response {
    board.count_api();
    if q.app_id.as_deref().unwrap_or("").is_empty() || q.app_key.as_deref().unwrap_or("").is_empty()
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"exception": "AUTH_FAIL", "display": "Authorisation failed"})),
        )
            .into_response();
    }
    let per_page = q.results_per_page.unwrap_or(10).clamp(1, 50);
    let start = (page.max(1) - 1) * per_page;
    let what = q.what.unwrap_or_default();
    let results: Vec<Value> = (start + 1..=(start + per_page).min(ADZUNA_COUNT))
        .map(|n| {
            let p = catalog::posting((n - 1) % catalog::POSTING_COUNT + 1).expect("in range");
            json!({
                "__CLASS__": "Adzuna::API::Response::Job",
                "id": format!("{}", 9_000_000 + n),
                "adref": format!("adref-{n}"),
                "title": format!("{} ({what} #{n})", p.title),
                "description": format!("{}…", &crate::html::text_of(&p.description)[..60.min(crate::html::text_of(&p.description).len())]),
                "created": format!("{}T09:00:00Z", p.posted),
                "redirect_url": format!("https://www.adzuna.{country}/land/ad/{}", 9_000_000 + n),
                "company": {"display_name": p.company},
                "location": {"display_name": p.location, "area": [p.country, p.location]},
                "category": {"label": "IT Jobs", "tag": "it-jobs"},
                "salary_min": p.salary.map(|(min, _)| min),
                "salary_max": p.salary.map(|(_, max)| max),
                "salary_is_predicted": "0",
                "contract_time": "full_time",
            })
        })
        .collect();
    Json(json!({"__CLASS__": "Adzuna::API::Response::JobSearchResults", "count": ADZUNA_COUNT, "mean": 55000.0, "results": results}))
        .into_response()
}
