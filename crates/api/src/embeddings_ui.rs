//! The dashboard's embeddings page: coverage per model (embedded of the active postings,
//! waiting, failed, the rate), the failures' top reasons, and each model's coverage over the
//! last 24 hours (the scheduler samples it once a minute). Live through htmx polling.
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use chrono::Utc;
use maud::{Markup, html};
use trawl_embeddings::CoverageSample;

use crate::dashboard::page;
use crate::{ApiError, AppState};

/// The embeddings page and its panel.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui/embeddings", get(embeddings_page))
        .route("/ui/embeddings/coverage", get(coverage_panel))
}

pub async fn embeddings_page() -> Markup {
    page(
        "embeddings",
        html! {
            h2 { "Embedding coverage" }
            p { "Active postings with a vector for their current text, per model; searches use the active model's. "
                code { "trawl embed backfill" } " queues what is missing and follows it." }
            div id="coverage" hx-get="/ui/embeddings/coverage" hx-trigger="load, every 5s" { "loading…" }
        },
    )
}

pub async fn coverage_panel(State(state): State<AppState>) -> Result<Markup, ApiError> {
    let db = &state.services.db;
    let coverage = trawl_embeddings::coverage(db).await?;
    let history = trawl_embeddings::history(db, 24).await?;
    Ok(html! {
        p { "Active postings: " (coverage.active_postings) " · active model: " (coverage.active_model.as_deref().unwrap_or("none yet (no worker has registered one)")) }
        table {
            tr { th { "model" } th { "state" } th { "embedded" } th { "coverage" } th { "waiting" } th { "retrying" } th { "failed" } th { "per second (5 min)" } th { "last 24 h" } }
            @for model in &coverage.models {
                @let samples: Vec<&CoverageSample> = history.iter().filter(|s| s.model == model.model).collect();
                tr {
                    td { (model.model) }
                    td { @if model.active { "active" } @else if model.retired { "retired" } @else { "filling in" } }
                    td { (model.embedded) " / " (coverage.active_postings) }
                    td class=(if model.percent >= 100.0 { "succeeded" } else { "running" }) { (format!("{:.1}%", model.percent)) }
                    td { (model.pending + model.processing) }
                    td { (model.retrying) }
                    td class=(if model.failed > 0 { "failed" } else { "" }) { (model.failed) }
                    td { (format!("{:.1}", model.rate_per_second)) }
                    td { (coverage_line(&samples)) }
                }
            }
        }
        @for model in coverage.models.iter().filter(|m| !m.top_failures.is_empty()) {
            h3 { "Why postings fail (" (model.model) ")" }
            table {
                tr { th { "postings" } th { "reason" } }
                @for failure in &model.top_failures {
                    tr { td { (failure.postings) } td { code { (failure.reason) } } }
                }
            }
        }
    })
}

/// Coverage (0–100 %) over the last 24 hours as a small line.
fn coverage_line(samples: &[&CoverageSample]) -> Markup {
    const WIDTH: f64 = 160.0;
    const HEIGHT: f64 = 28.0;
    let start = Utc::now() - chrono::Duration::hours(24);
    let points: Vec<String> = samples
        .iter()
        .map(|s| {
            let share = s.embedded as f64 / s.active_postings.max(1) as f64;
            let x = 3.0
                + ((s.sampled_at - start).as_seconds_f64() / 86_400.0).clamp(0.0, 1.0)
                    * (WIDTH - 6.0);
            let y = HEIGHT - 3.0 - share.clamp(0.0, 1.0) * (HEIGHT - 6.0);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    html! {
        svg width=(WIDTH) height=(HEIGHT) role="img" {
            title { "coverage over the last 24 hours, " (samples.len()) " samples" }
            rect width=(WIDTH) height=(HEIGHT) fill="#eef3f7" {}
            @if !points.is_empty() {
                polyline points=(points.join(" ")) fill="none" stroke="#393" stroke-width="1.5" {}
            }
        }
    }
}
