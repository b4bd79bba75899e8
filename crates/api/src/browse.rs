//! More of the dashboard: the postings page (search and browse, the API's `GET /jobs/postings`
//! in a form) and the workers panel (each live worker and the tasks it holds, and what recovery
//! and the reconciler have repaired).
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use maud::{Markup, html};
use queue_core::Task;
use trawl_scrape_runs::search::search_postings;

use crate::dashboard::page;
use crate::routes::postings::PostingsParams;
use crate::{ApiError, AppState};

/// What the search form holds; a plain (script-less) submit brings it back filled in.
#[derive(Debug, Default, serde::Deserialize)]
pub struct SearchForm {
    #[serde(default)]
    q: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    company: String,
    #[serde(default)]
    has_salary: String,
}

pub async fn postings_page(form: Result<Query<SearchForm>, QueryRejection>) -> Markup {
    // Anything unreadable in it: an empty form.
    let form = form.map(|Query(form)| form).unwrap_or_default();
    page(
        "postings",
        html! {
            h2 { "Postings" }
            form id="search" hx-get="/ui/postings/results" hx-target="#postings" hx-trigger="submit, change" {
                input name="q" value=(form.q) placeholder="search: rust -java \"data engineer\"" size="40";
                input name="location" value=(form.location) placeholder="location";
                input name="company" value=(form.company) placeholder="company";
                select name="has_salary" {
                    option value="" { "salary or not" }
                    option value="true" selected[form.has_salary == "true"] { "with a salary" }
                }
                button type="submit" { "search" }
            }
            div id="postings" hx-get="/ui/postings/results" hx-include="#search" hx-trigger="load" { "loading…" }
        },
    )
}

/// A page of results; `more` fetches the next one into the same place.
pub async fn postings_results(
    State(state): State<AppState>,
    params: Result<Query<std::collections::HashMap<String, String>>, QueryRejection>,
) -> Result<Markup, ApiError> {
    let Query(mut params) =
        params.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    // The form sends its empty fields too: an empty field filters nothing here.
    params.retain(|_, value| !value.trim().is_empty());
    let params: PostingsParams = serde_json::from_value(serde_json::json!(params))
        .map_err(|err| ApiError::bad_request(err.to_string()))?;
    let query = params.parse()?;
    let found = search_postings(&state.services.db, &query).await?;
    let salary = |min: Option<f64>, max: Option<f64>, currency: Option<&str>| match (min, max) {
        (None, None) => String::new(),
        (min, max) => format!(
            "{}–{} {}",
            min.map(|v| format!("{v:.0}")).unwrap_or_default(),
            max.map(|v| format!("{v:.0}")).unwrap_or_default(),
            currency.unwrap_or("")
        ),
    };
    Ok(html! {
        @if found.postings.is_empty() { p { "no posting matches" } } @else {
            table {
                tr { th { "title" } th { "company" } th { "location" } th { "salary" } th { "posted" } th { "site" } }
                @for posting in &found.postings {
                    tr.posting {
                        td { a href=(posting.url) { (posting.job_title) } }
                        td { (posting.company_name.as_deref().unwrap_or("")) }
                        td { (posting.location) }
                        td { (salary(posting.salary_min, posting.salary_max, posting.salary_currency.as_deref())) }
                        td {
                            (posting.posted_date.map(|d| d.to_string()).unwrap_or_default())
                            @if let Some(days) = posting.days_since_posted { " (" (days) " d)" }
                        }
                        td { (posting.site) }
                    }
                }
            }
            @if let Some(next) = &found.next {
                button hx-get=(format!("/ui/postings/results?cursor={next}")) hx-include="#search"
                    hx-target="#postings" { "more" }
            }
        }
    })
}

/// Every live worker of every queue and what it holds right now.
pub async fn workers(State(state): State<AppState>) -> Result<Markup, ApiError> {
    let mut rows = Vec::new();
    for queue in state.services.known_queues().await? {
        let name = queue.keys().queue_name().to_owned();
        for worker in queue.live_workers().await? {
            let held: Vec<String> = queue
                .inflight(&worker)
                .await?
                .iter()
                .map(|raw| match Task::parse_bytes(raw) {
                    Ok(task) => {
                        let what = task
                            .payload
                            .get("site_name")
                            .and_then(|v| v.as_str())
                            .map(str::to_owned)
                            .or(task.run_id)
                            .unwrap_or_default();
                        format!("{} {what}", task.kind.as_deref().unwrap_or("scrape"))
                    }
                    Err(_) => "an unreadable task".to_owned(),
                })
                .collect();
            rows.push((name.clone(), worker, held));
        }
    }
    let repairs = repairs(&state).await?;
    Ok(html! {
        @if rows.is_empty() { p { "no live worker" } } @else {
            table {
                tr { th { "worker" } th { "queue" } th { "running" } }
                @for (queue, worker, held) in &rows {
                    tr { td { (worker) } td { (queue) } td { (held.join(", ")) } }
                }
            }
        }
        @if let Some(repairs) = repairs { p.repairs { (repairs) } }
    })
}

/// What recovery and the reconciler have repaired over all scheduler passes (the totals of
/// `GET /scheduler/status`), or None while they have repaired nothing.
async fn repairs(state: &AppState) -> Result<Option<String>, ApiError> {
    let totals = trawl_schedule::status(&state.services).await?.totals;
    let total = |field: &str| totals.get(field).copied().unwrap_or(0);
    let (dead, requeued, poisoned) = (
        total("recovered_workers"),
        total("requeued"),
        total("poisoned"),
    );
    let (reconciled, lost) = (total("reconciled"), total("lost"));
    let held = total("reconcile_held");
    if dead + reconciled + lost + held == 0 {
        return Ok(None);
    }
    let mut repairs = format!(
        "Repaired so far: {dead} worker(s) presumed dead, {requeued} of their tasks requeued and \
         {poisoned} dead-lettered as poison; {reconciled} run(s) requeued from the ledger after \
         Redis lost their task, {lost} failed as lost."
    );
    if held > 0 {
        repairs.push_str(&format!(
            " {held} time(s) a lost run was left for the next pass: another session held its row."
        ));
    }
    Ok(Some(repairs))
}
