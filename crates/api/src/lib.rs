//! trawl's HTTP API: queue depth, run status and results, manual scrape requests.
mod auth;
mod config;
mod error;
mod routes;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::{Router, middleware};
use queue_core::Services;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use trawl_tasks::DynHandler;

pub use auth::ApiKeys;
pub use config::ApiConfig;
pub use error::{ApiError, success};
pub use routes::{DEFAULT_SYNC_TIMEOUT, SYNC_MAX_RESULTS};

/// Largest request body accepted; scrape requests are a few hundred bytes.
pub const BODY_LIMIT: usize = 16 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    /// Runs sync-mode scrapes: the scrape kind's handler, through the lifecycle a worker uses.
    pub sync_scrape: std::sync::Arc<dyn DynHandler>,
    pub keys: ApiKeys,
    pub sync_timeout: Duration,
    /// Most sites one `POST /scheduler/run` pass schedules.
    pub scheduler_batch: i64,
    /// The process's Prometheus recorder, rendered by `GET /metrics`.
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(routes::health))
        .route("/metrics", get(routes::metrics))
        .route("/jobs/health", get(routes::jobs_health))
        .route("/jobs/sites", get(routes::sites))
        .route("/jobs/postings", get(routes::postings))
        .route("/jobs/postings/{job_id}", get(routes::posting))
        .route("/jobs/scrape", post(routes::scrape))
        .route("/jobs/scrape/{run_id}", get(routes::run_status))
        .route("/jobs/scrape/{run_id}/cancel", post(routes::cancel_run))
        .route("/jobs/queue/status", get(routes::queue_status))
        .route("/queues", get(routes::queues))
        .route("/jobs/queue/dead", get(routes::dead_letters))
        .route(
            "/jobs/queue/dead/{id}/retry",
            post(routes::retry_dead_letter),
        )
        .route("/jobs/queue/dead/{id}", delete(routes::delete_dead_letter))
        .route("/jobs/queue/pause", post(routes::pause_queue))
        .route("/jobs/queue/resume", post(routes::resume_queue))
        .route("/scheduler/run", post(routes::scheduler_run))
        .route("/scheduler/status", get(routes::scheduler_status))
        .route(
            "/schedules",
            get(routes::schedules).post(routes::upsert_schedule),
        )
        .route("/schedules/{name}", delete(routes::delete_schedule))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        // Last word on every answer: whatever axum or a layer produced on its own (a rejected
        // path parameter, a body over the limit) leaves in the JSON error envelope too.
        .layer(middleware::map_response(error::envelope))
        // Outermost, so it counts the status the client gets.
        .layer(middleware::from_fn(routes::track))
        .with_state(state)
}

/// Serves until `shutdown`, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
