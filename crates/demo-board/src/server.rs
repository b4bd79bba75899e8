//! The demo board's HTTP server.
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::catalog::{self, DemoPosting};
use crate::faults::{FaultAction, FaultRule, Faults};
use crate::html;

pub const PAGE_SIZE: usize = 20;

/// Shared state: injected faults and request counters (tests read them).
#[derive(Clone, Default)]
pub struct DemoBoard {
    pub faults: Faults,
    counters: Arc<Counters>,
    /// What `/robots.txt` says; empty answers 404 (no rules: everything allowed).
    robots_txt: Arc<std::sync::Mutex<String>>,
    /// Companies' career pages (seed 004), changed through `/_admin/careers`.
    pub careers: crate::careers::Careers,
}

#[derive(Default)]
struct Counters {
    listing: AtomicU64,
    detail: AtomicU64,
    api: AtomicU64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct RequestCounts {
    pub listing: u64,
    pub detail: u64,
    /// Requests to the ATS / Adzuna fixture endpoints.
    pub api: u64,
}

#[derive(Debug, Deserialize)]
struct ListingQuery {
    q: Option<String>,
    l: Option<String>,
    page: Option<u32>,
}

impl DemoBoard {
    pub fn requests(&self) -> RequestCounts {
        RequestCounts {
            listing: self.counters.listing.load(Ordering::Relaxed),
            detail: self.counters.detail.load(Ordering::Relaxed),
            api: self.counters.api.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn count_api(&self) {
        self.counters.api.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_robots_txt(&self, text: &str) {
        *self.robots_txt.lock().expect("robots lock") = text.to_owned();
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(index))
            .route("/robots.txt", get(robots_txt))
            .route("/jobs", get(listing))
            .route("/jobs/{id}", get(detail))
            .route("/js/jobs", get(js_listing))
            .route("/api/jobs", get(api_listing))
            .route(
                "/greenhouse/v1/boards/{token}/jobs",
                get(crate::ats::greenhouse),
            )
            .route("/lever/v0/postings/{site}", get(crate::ats::lever))
            .route(
                "/ashby/posting-api/job-board/{name}",
                get(crate::ats::ashby),
            )
            .route(
                "/adzuna/v1/api/jobs/{country}/search/{page}",
                get(crate::ats::adzuna),
            )
            .route("/_admin/faults", get(get_faults).put(put_faults))
            .route("/_admin/requests", get(get_requests))
            .merge(crate::careers::routes())
            .with_state(self.clone())
    }

    /// Serves until `shutdown` is cancelled.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
    }

    /// Starts the board on a free loopback port in the background (for tests); it stops when
    /// `shutdown` is cancelled.
    pub async fn spawn_local(&self, shutdown: CancellationToken) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let board = self.clone();
        tokio::spawn(async move { board.serve(listener, shutdown).await });
        Ok(addr)
    }
}

async fn robots_txt(State(board): State<DemoBoard>) -> Response {
    if let Some(response) = apply_fault(board.faults.take_robots()).await {
        return response;
    }
    let text = board.robots_txt.lock().expect("robots lock").clone();
    if text.is_empty() {
        return StatusCode::NOT_FOUND.into_response();
    }
    text.into_response()
}

async fn index() -> Html<String> {
    Html(html::index())
}

/// One page of a search: (total matches, the page's postings, whether a next page exists).
fn search_page(query: &ListingQuery) -> (usize, Vec<DemoPosting>, bool) {
    let found = catalog::search(query.q.as_deref(), query.l.as_deref());
    let start = (query.page() as usize - 1) * PAGE_SIZE;
    let items = found.iter().skip(start).take(PAGE_SIZE).cloned().collect();
    (found.len(), items, start + PAGE_SIZE < found.len())
}

impl ListingQuery {
    fn page(&self) -> u32 {
        self.page.unwrap_or(1).max(1)
    }
}

async fn listing(State(board): State<DemoBoard>, Query(query): Query<ListingQuery>) -> Response {
    board.counters.listing.fetch_add(1, Ordering::Relaxed);
    if let Some(response) = apply_fault(board.faults.take(Some(query.page()), None)).await {
        return response;
    }
    let (total, items, has_next) = search_page(&query);
    Html(html::listing(
        query.q.as_deref(),
        query.l.as_deref(),
        query.page(),
        total,
        &items,
        has_next,
    ))
    .into_response()
}

/// The JavaScript-rendered listing: an empty shell whose script fetches `/api/jobs` and
/// injects the cards, so a plain HTTP client sees no postings at all.
async fn js_listing() -> Html<String> {
    Html(html::js_listing())
}

/// The data behind the JavaScript listing; counted and faulted as a listing page.
async fn api_listing(
    State(board): State<DemoBoard>,
    Query(query): Query<ListingQuery>,
) -> Response {
    board.counters.listing.fetch_add(1, Ordering::Relaxed);
    if let Some(response) = apply_fault(board.faults.take(Some(query.page()), None)).await {
        return response;
    }
    let (total, items, has_next) = search_page(&query);
    let items: Vec<serde_json::Value> = items
        .iter()
        .map(|p| {
            serde_json::json!({"id": p.id, "title": p.title, "company": p.company,
                "location": p.location, "posted": p.posted.to_string()})
        })
        .collect();
    Json(serde_json::json!({"total": total, "page": query.page(), "has_next": has_next, "items": items}))
        .into_response()
}

async fn detail(State(board): State<DemoBoard>, Path(id): Path<u32>) -> Response {
    board.counters.detail.fetch_add(1, Ordering::Relaxed);
    if let Some(response) = apply_fault(board.faults.take(None, Some(id))).await {
        return response;
    }
    match catalog::posting(id) {
        Some(posting) => Html(html::detail(&posting)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Html("<h1>No such posting</h1>".to_owned()),
        )
            .into_response(),
    }
}

/// Turns a fault into a response, or returns None (after any delay) to answer normally.
pub(crate) async fn apply_fault(action: Option<FaultAction>) -> Option<Response> {
    match action? {
        FaultAction::Status {
            status,
            retry_after,
        } => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = (code, Html(format!("<h1>injected {status}</h1>"))).into_response();
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            Some(response)
        }
        FaultAction::Delay { millis } => {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            None
        }
        FaultAction::Malformed => {
            Some(Html("<html><body><div class=\"job-ca".to_owned()).into_response())
        }
    }
}

async fn get_faults(State(board): State<DemoBoard>) -> Json<Vec<FaultRule>> {
    Json(board.faults.rules())
}

async fn put_faults(
    State(board): State<DemoBoard>,
    Json(rules): Json<Vec<FaultRule>>,
) -> StatusCode {
    board.faults.set(rules);
    StatusCode::NO_CONTENT
}

async fn get_requests(State(board): State<DemoBoard>) -> Json<RequestCounts> {
    Json(board.requests())
}
