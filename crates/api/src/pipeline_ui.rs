//! The dashboard's pipeline page: each batch with a Gantt-style bar per stage (where it started
//! and how long it took, on the batch's own time line), the active model, and one batch's
//! audit rows with its validation report and errors. Live through htmx polling.
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use trawl_pipeline::{models, store};

use crate::dashboard::page;
use crate::{ApiError, AppState};

/// The pipeline's pages and panels.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui/pipeline", get(pipeline_page))
        .route("/ui/pipeline/batches", get(batches_panel))
        .route("/ui/pipeline/batches/{batch_id}", get(batch_page))
}

pub async fn pipeline_page() -> Markup {
    page(
        "pipeline",
        html! {
            h2 { "Batches" }
            p { "Each bar is a stage on its batch's time line: " span.succeeded { "success" } ", " span.running { "running" } ", " span.failed { "failed" } "." }
            div id="batches" hx-get="/ui/pipeline/batches" hx-trigger="load, every 3s" { "loading…" }
        },
    )
}

/// Width of the Gantt bars' track, in pixels.
const TRACK: f64 = 420.0;

fn offset(from: DateTime<Utc>, to: Option<DateTime<Utc>>) -> f64 {
    to.map_or(0.0, |to| (to - from).as_seconds_f64().max(0.0))
}

pub async fn batches_panel(State(state): State<AppState>) -> Result<Markup, ApiError> {
    let db = &state.services.db;
    let batches = store::list_batches(db, None, 20).await?;
    let active = models::active_version(db).await?;
    let mut rows = Vec::with_capacity(batches.len());
    for batch in batches {
        let stages = store::batch_runs(db, batch.batch_id).await?;
        rows.push((batch, stages));
    }
    let now = Utc::now();
    Ok(html! {
        p { "Active TF-IDF model: " (active.as_deref().unwrap_or("none yet")) }
        @if rows.is_empty() {
            p { "No batch yet: " code { "trawl pipeline run NAME" } " or " code { "POST /pipeline/{name}/runs" } "." }
        }
        table {
            tr { th { "batch" } th { "pipeline" } th { "status" } th { "started" } th { "seconds" } th { "stages" } }
            @for (batch, stages) in &rows {
                @let end = batch.finished_at.unwrap_or(now);
                @let span = offset(batch.started_at, Some(end)).max(0.001);
                tr {
                    td { a href=(format!("/ui/pipeline/batches/{}", batch.batch_id)) { (batch.batch_id.to_string()[..8]) } }
                    td { (batch.pipeline) }
                    td class=(css(&batch.status)) { (batch.status) }
                    td { (batch.started_at.format("%Y-%m-%d %H:%M:%S")) }
                    td { (format!("{:.1}", offset(batch.started_at, Some(end)))) }
                    td {
                        div style=(format!("position:relative;width:{TRACK}px;height:{}px;background:#f7f7f7", 14 * stages.len().max(1))) {
                            @for (i, stage) in stages.iter().enumerate() {
                                @if let Some(started) = stage.started_at {
                                    @let left = offset(batch.started_at, Some(started)) / span * TRACK;
                                    @let width = (offset(started, Some(stage.finished_at.unwrap_or(now))) / span * TRACK).max(2.0);
                                    div class=(format!("bar {}", css(&stage.status)))
                                        title=(format!("{}: {} ({:.2}s)", stage.stage, stage.status, stage.execution_time_seconds.unwrap_or_default()))
                                        style=(format!("position:absolute;top:{}px;left:{left:.0}px;width:{width:.0}px;height:12px", 14 * i)) {}
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

fn css(status: &str) -> &'static str {
    match status {
        "success" => "succeeded",
        "running" | "queued" => "running",
        "failed" | "stopped" | "upstream_failed" => "failed",
        _ => "",
    }
}

pub async fn batch_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Markup, ApiError> {
    let id: uuid::Uuid = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("batch_id: expected a UUID, got {id:?}")))?;
    let db = &state.services.db;
    let batch = store::get_batch(db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("no_such_batch", format!("no batch {id}")))?;
    let stages = store::batch_runs(db, id).await?;
    Ok(page(
        "batch",
        html! {
            h2 { "Batch " (batch.batch_id) " of " (batch.pipeline) }
            p { "Status: " span class=(css(&batch.status)) { (batch.status) } " · date " (batch.batch_date) " · trigger " (batch.trigger) }
            table {
                tr { th { "stage" } th { "status" } th { "attempt" } th { "collected" } th { "validated" } th { "enriched" } th { "vectorized" } th { "inserted" } th { "updated" } th { "unchanged" } th { "failed" } th { "seconds" } th { "error" } }
                @for s in &stages {
                    tr {
                        td { (s.stage) }
                        td class=(css(&s.status)) { (s.status) }
                        td { (s.attempt) }
                        @for count in [s.jobs_collected, s.jobs_validated, s.jobs_enriched, s.jobs_vectorized, s.jobs_inserted, s.jobs_updated, s.jobs_unchanged, s.jobs_failed] {
                            td { (count.map(|c| c.to_string()).unwrap_or_default()) }
                        }
                        td { (s.execution_time_seconds.map(|t| format!("{t:.2}")).unwrap_or_default()) }
                        td.failed { (s.error_kind.as_deref().unwrap_or("")) " " (s.error_message.as_deref().unwrap_or("")) }
                    }
                }
            }
            @if let Some(report) = stages.iter().find(|s| s.stage == "validate").and_then(|s| s.report.as_ref()).and_then(|r| r["text"].as_str()) {
                h3 { "Validation report" }
                pre { (report) }
            }
        },
    ))
}
