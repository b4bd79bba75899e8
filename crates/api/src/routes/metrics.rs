//! `GET /metrics` (Prometheus text format) and the per-request counting every route gets.
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{counter, gauge, histogram};
use telemetry::metric;

use crate::openapi::ReadErrors;
use crate::{ApiError, AppState};

/// Everything this process recorded, with the queues' depths and the fleet's browser slots read
/// from Redis as of this request (they belong to no one process, so the API reports them).
#[utoipa::path(
    get, path = "/metrics", tag = "metrics",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        ReadErrors,
    )
)]
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let services = &state.services;
    for depth in services.all_queue_metrics().await? {
        let name = depth.queue;
        gauge!(metric::QUEUE_PENDING, "queue" => name.clone()).set(depth.pending as f64);
        gauge!(metric::QUEUE_IN_FLIGHT, "queue" => name.clone()).set(depth.in_flight as f64);
        gauge!(metric::QUEUE_DELAYED, "queue" => name.clone()).set(depth.delayed as f64);
        gauge!(metric::QUEUE_DEAD, "queue" => name.clone()).set(depth.dead as f64);
        gauge!(metric::QUEUE_PAUSED, "queue" => name.clone())
            .set(f64::from(u8::from(depth.paused)));
        gauge!(metric::WORKERS_ALIVE, "queue" => name).set(depth.workers_alive as f64);
    }
    gauge!(metric::BROWSER_SLOTS_IN_USE).set(services.browser_slots_held().await? as f64);
    // Coverage from the ledger, so alerts see what `GET /embeddings/coverage` shows (at most
    // `FRESH_FOR` old: it reads every active posting).
    let db = &services.db;
    let coverage = state
        .coverage
        .get(|| async {
            trawl_embeddings::coverage(db)
                .await
                .map(std::sync::Arc::new)
        })
        .await?;
    gauge!(metric::EMBEDDINGS_ACTIVE_POSTINGS).set(coverage.active_postings as f64);
    for model in coverage.models.iter().filter(|m| !m.retired) {
        for (state, count) in [
            ("embedded", model.embedded),
            ("pending", model.pending),
            ("processing", model.processing),
            ("failed", model.failed),
        ] {
            gauge!(metric::EMBEDDINGS_POSTINGS, "model" => model.model.clone(), "state" => state)
                .set(count as f64);
        }
    }
    // A mail stuck `prepared` is a digest nobody got: alerted on (TrawlMailStuck).
    let stuck = trawl_digests::mails::oldest_prepared_seconds(&services.db).await?;
    gauge!(metric::MAILS_PREPARED_OLDEST).set(stuck);
    Ok(metric::exposition(metric::render(&state.metrics)).into_response())
}

/// Counts every answer by method, matched route (never the raw path: ids would make a series
/// each) and status, and times it.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    histogram!(metric::API_REQUEST_DURATION, "method" => method.clone(), "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    counter!(metric::API_REQUESTS, "method" => method, "route" => route, "status" => status)
        .increment(1);
    response
}
