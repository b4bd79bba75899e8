//! The dashboard at `GET /`: server-rendered pages (maud) kept live by htmx polling (vendored in
//! `assets/`, no CDN): depth of every queue, workers, recent runs filterable by site, kind and
//! status, one run's attempts and error, dead letters, sites and schedules with their next run.
//! Reading follows the API's policy (open); the buttons need a login (`session.rs`).
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};
use queue_core::store::{self, RunStatus};
use serde::Deserialize;
use trawl_scrape_runs::recent::{RunFilter, recent_runs};

use crate::session::{self, MaybeSession, Session};
use crate::{ApiError, AppState};

const HTMX: &str = include_str!("../assets/htmx.min.js");
/// Runs listed on the dashboard.
const RECENT_RUNS: i64 = 50;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/ui/queues", get(queues))
        .route("/ui/runs", get(runs))
        .route("/ui/runs/{run_id}", get(run))
        .route("/ui/schedules", get(schedules))
        .route("/assets/htmx.min.js", get(htmx))
        .route("/ui/workers", get(crate::browse::workers))
        .route("/ui/postings", get(crate::browse::postings_page))
        .route("/ui/postings/results", get(crate::browse::postings_results))
        .route("/ui/login", get(session::login_page).post(session::login))
        .route("/ui/logout", post(session::logout))
        .route("/ui/queues/{queue}/{action}", post(session::queue_action))
        .merge(crate::pipeline_ui::routes())
        .merge(crate::embeddings_ui::routes())
        .merge(crate::careers_ui::routes())
        .merge(crate::dead_ui::routes())
}

async fn htmx() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        HTMX,
    )
        .into_response()
}

pub(crate) fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                // No favicon: without this the browser asks for /favicon.ico, a 404 on its console.
                link rel="icon" href="data:,";
                title { (title) " · trawl" }
                script src="/assets/htmx.min.js" {}
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                header { a href="/" { "trawl" } " · " a href="/ui/postings" { "postings" } " · " a href="/ui/pipeline" { "pipeline" } " · " a href="/ui/embeddings" { "embeddings" } " · " a href="/ui/careers" { "careers" } " · " a href="/openapi.json" { "API" } " · " a href="/metrics" { "metrics" } }
                main { (body) }
            }
        }
    }
}

/// The pages' style sheet, inlined in each page (one request fewer, nothing to cache-bust).
const STYLE: &str = include_str!("../assets/dashboard.css");

/// A live panel: its content is fetched at once and every `every`.
fn panel(id: &str, title: &str, url: &str, every: &str) -> Markup {
    html! {
        section {
            h2 { (title) }
            div id=(id) hx-get=(url) hx-trigger=(format!("load, every {every}")) { "loading…" }
        }
    }
}

#[derive(Debug, Deserialize)]
struct RunsFilter {
    site: Option<String>,
    kind: Option<String>,
    status: Option<String>,
}

impl RunsFilter {
    fn parse(self) -> Result<RunFilter, ApiError> {
        let given = |value: Option<String>| value.filter(|v| !v.is_empty());
        let status = match given(self.status) {
            Some(text) => Some(
                RunStatus::parse(&text)
                    .ok_or_else(|| ApiError::bad_request(format!("status: no status {text:?}")))?,
            ),
            None => None,
        };
        for (name, value) in [("site", &self.site), ("kind", &self.kind)] {
            if let Some(value) = value {
                queue_core::check_text(name, value).map_err(ApiError::bad_request)?;
            }
        }
        Ok(RunFilter {
            site: given(self.site),
            kind: given(self.kind),
            status,
            after: None,
        })
    }
}

async fn index(MaybeSession(session): MaybeSession) -> Markup {
    let statuses = RunStatus::ALL.map(RunStatus::as_str);
    page(
        "dashboard",
        html! {
            @match &session {
                Some(session) => form method="post" action="/ui/logout" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    "Logged in: the buttons work. " button type="submit" { "log out" }
                },
                None => p { a href="/ui/login" { "Log in" } " to retry dead letters and pause queues." },
            }
            (panel("queues", "Queues", "/ui/queues", "2s"))
            (panel("workers", "Workers", "/ui/workers", "2s"))
            section {
                h2 { "Recent runs" }
                form id="run-filter" hx-get="/ui/runs" hx-target="#runs" hx-trigger="change, submit" {
                    input name="site" placeholder="site";
                    input name="kind" placeholder="kind";
                    select name="status" {
                        option value="" { "any status" }
                        @for status in statuses { option value=(status) { (status) } }
                    }
                }
                div id="runs" hx-get="/ui/runs" hx-include="#run-filter" hx-trigger="load, every 5s" { "loading…" }
            }
            (panel("dead", "Dead letters", "/ui/dead", "5s"))
            (panel("schedules", "Sites and schedules", "/ui/schedules", "10s"))
        },
    )
}

async fn queues(
    State(state): State<AppState>,
    MaybeSession(session): MaybeSession,
) -> Result<Markup, ApiError> {
    queues_panel(&state, session.as_ref()).await
}

/// The `hx-vals` of a button: the session's CSRF token.
pub(crate) fn csrf_vals(session: &Session) -> String {
    serde_json::json!({"csrf": session.csrf}).to_string()
}

/// Every queue's figures, with pause/resume buttons for a logged-in visitor.
pub(crate) async fn queues_panel(
    state: &AppState,
    session: Option<&Session>,
) -> Result<Markup, ApiError> {
    let mut all = Vec::new();
    for queue in state.services.known_queues().await? {
        let history = queue.depth_history().await?;
        all.push((queue.metrics().await?, history));
    }
    Ok(html! {
        table {
            tr { th { "queue" } th title="Redis Cluster slot" { "slot" } th { "pending" } th { "last hour" } th { "in flight" } th { "delayed" } th { "dead" } th { "paused" } th { "workers" } th {} }
            @for (queue, history) in &all {
                tr data-queue=(queue.queue) {
                    td { (queue.queue) }
                    td.slot { (queue.slot) }
                    td.pending { (queue.pending) }
                    td.history { (sparkline(history)) }
                    td { (queue.in_flight) }
                    td { (queue.delayed) }
                    td { (queue.dead) }
                    td.paused { (if queue.paused { "paused" } else { "" }) }
                    td title=(queue.workers.join(", ")) { (queue.workers_alive) }
                    td {
                        @if let Some(session) = session {
                            @let action = if queue.paused { "resume" } else { "pause" };
                            button hx-post=(format!("/ui/queues/{}/{action}", queue.queue))
                                hx-vals=(csrf_vals(session)) hx-target="#queues" { (action) }
                        }
                    }
                }
            }
        }
    })
}

/// The last hour's pending counts as a small line (the scheduler samples them each minute).
fn sparkline(samples: &[(DateTime<Utc>, u64)]) -> Markup {
    const WIDTH: f64 = 120.0;
    const HEIGHT: f64 = 24.0;
    let start = Utc::now() - chrono::Duration::hours(1);
    let top = samples.iter().map(|s| s.1).max().unwrap_or(0).max(1) as f64;
    let points: Vec<String> = samples
        .iter()
        .map(|(minute, pending)| {
            let x =
                3.0 + ((*minute - start).as_seconds_f64() / 3600.0).clamp(0.0, 1.0) * (WIDTH - 6.0);
            let y = HEIGHT - 3.0 - (*pending as f64 / top) * (HEIGHT - 6.0);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
    // SVG inside HTML has no void elements: each shape is closed explicitly (`{}`), or the
    // next would nest inside it and not be drawn.
    html! {
        svg width=(WIDTH) height=(HEIGHT) role="img" {
            title { "pending over the last hour; peak " (peak) }
            rect width=(WIDTH) height=(HEIGHT) fill="#eef3f7" {}
            @if let Some(last) = points.last() {
                polyline points=(points.join(" ")) fill="none" stroke="#06b" stroke-width="1.5" {}
                @let (x, y) = last.split_once(',').unwrap_or(("0", "0"));
                circle cx=(x) cy=(y) r="2.5" fill="#06b" {}
            }
        }
    }
}

pub(crate) fn when(time: Option<DateTime<Utc>>) -> String {
    time.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

fn seconds(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> String {
    match (start, end) {
        (Some(start), Some(end)) => format!("{:.1} s", (end - start).as_seconds_f64()),
        _ => String::new(),
    }
}

async fn runs(
    State(state): State<AppState>,
    filter: Result<Query<RunsFilter>, QueryRejection>,
) -> Result<Markup, ApiError> {
    let Query(filter) = filter.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let filter = filter.parse()?;
    let runs = recent_runs(&state.services.db, &filter, RECENT_RUNS).await?;
    Ok(html! {
        table {
            tr { th { "run" } th { "kind" } th { "site" } th { "status" } th { "found" } th { "new" } th { "updated" } th { "created" } th { "took" } th { "message" } }
            @for run in &runs {
                tr {
                    td { a href=(format!("/ui/runs/{}", run.run_id)) { (run.run_id) } }
                    td { (run.kind) }
                    td { (run.site_name.as_deref().unwrap_or("")) }
                    td class=(run.status.as_str()) { (run.status.as_str()) }
                    td { (run.jobs_found) } td { (run.jobs_inserted) } td { (run.jobs_updated) }
                    td { (when(Some(run.created_at))) }
                    td { (seconds(run.started_at, run.finished_at)) }
                    td { (run.message.as_deref().unwrap_or("")) }
                }
            }
        }
    })
}

async fn run(
    State(state): State<AppState>,
    Path(run_id): Path<String>,
) -> Result<Markup, ApiError> {
    queue_core::check_text("run_id", &run_id).map_err(ApiError::bad_request)?;
    let db = &state.services.db;
    let Some(run) = store::get_run(db, &run_id).await? else {
        return Err(ApiError::not_found(
            "unknown_run",
            format!("no run with run_id {run_id}"),
        ));
    };
    let attempts = store::run_attempts(db, &run_id).await?;
    let detail = serde_json::to_string_pretty(&run.error_detail).unwrap_or_default();
    let result = serde_json::to_string_pretty(&run.result).unwrap_or_default();
    Ok(page(
        &run_id,
        html! {
            h2 { "Run " (run_id) }
            table {
                tr { th { "kind" } td { (run.kind) } }
                tr { th { "queue" } td { (run.queue) } }
                tr { th { "status" } td class=(run.status.as_str()) { (run.status.as_str()) } }
                tr { th { "attempt" } td { (run.attempt) " (" (run.retries) " retries)" } }
                tr { th { "created" } td { (when(Some(run.created_at))) } }
                tr { th { "took" } td { (seconds(run.started_at, run.finished_at)) } }
                tr { th { "message" } td { (run.message.as_deref().unwrap_or("")) } }
            }
            h3 { "Attempts" }
            table {
                tr { th { "#" } th { "worker" } th { "status" } th { "started" } th { "finished" } th { "retried" } th { "message" } }
                @for attempt in &attempts {
                    tr {
                        td { (attempt.attempt) }
                        td { (attempt.worker_id.as_deref().unwrap_or("")) }
                        td { (format!("{:?}", attempt.status).to_lowercase()) }
                        td { (when(Some(attempt.started_at))) }
                        td { (when(attempt.finished_at)) }
                        td { (if attempt.retried { "yes" } else { "" }) }
                        td { (attempt.message.as_deref().unwrap_or("")) }
                    }
                }
            }
            h3 { "Error detail" } pre { (detail) }
            h3 { "Result" } pre { (result) }
        },
    ))
}

async fn schedules(State(state): State<AppState>) -> Result<Markup, ApiError> {
    let db = &state.services.db;
    let sites = trawl_scrape_runs::sites::list_sites(db).await?;
    let recurring = store::list_recurring(db).await?;
    Ok(html! {
        table {
            tr { th { "site or task" } th { "kind" } th { "schedule" } th { "enabled" } th { "last run" } th { "next run" } }
            @for site in &sites {
                tr {
                    td { (site.site_name) } td { "scrape" }
                    td { (match &site.cron { Some(cron) => format!("{cron} {}", site.time_zone.as_deref().unwrap_or("UTC")), None => format!("every {} min", site.interval_minutes) }) }
                    td { (site.enabled) } td { (when(site.last_run_at)) } td { (when(site.next_run_at)) }
                }
            }
            @for task in &recurring {
                tr {
                    td { (task.name) } td { (task.kind) }
                    td { (match &task.cron { Some(cron) => format!("{cron} {}", task.time_zone.as_deref().unwrap_or("UTC")), None => format!("every {} min", task.interval_minutes.unwrap_or_default()) }) }
                    td { (task.enabled) } td { (when(task.last_run_at)) } td { (when(task.next_run_at)) }
                }
            }
        }
    })
}
