//! trawl's HTTP API: queue depth, run status and results, manual scrape requests.
mod auth;
mod browse;
mod careers_ui;
mod coalesce;
mod config;
mod dashboard;
mod dead_ui;
mod embeddings_ui;
mod error;
mod fresh;
mod openapi;
mod pipeline_ui;
mod routes;
mod session;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::{Router, middleware};
use queue_core::Services;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use trawl_tasks::DynHandler;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::ApiKeys;
pub use coalesce::{Coalesced, QueueReadings};
pub use config::ApiConfig;
pub use error::{ApiError, success};
pub use fresh::{FRESH_FOR, Fresh};

/// Runs per status, as `GET /jobs/queue/status` shows them.
pub type RunCounts = std::sync::Arc<Vec<(String, i64)>>;
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
    /// Where the pipelines' alerts from `POST /scheduler/run` passes go.
    pub alerts: trawl_pipeline::Alerts,
    /// The active TF-IDF model's vectors, for similar postings and `rank=tfidf`.
    pub similarity: trawl_pipeline::similarity::SimilarityCache,
    /// Embeds the queries of semantic and hybrid searches (the workers' model).
    pub embedder: std::sync::Arc<dyn trawl_embedder::Embedder>,
    /// The process's Prometheus recorder, rendered by `GET /metrics`.
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Company career pages may point at private addresses (CAREERS_ALLOW_PRIVATE).
    pub careers_allow_private: bool,
    /// The queue status's runs per status, taken at most once per `FRESH_FOR`.
    pub run_counts: std::sync::Arc<Fresh<RunCounts>>,
    /// Queue status readings, shared by the requests waiting for the same one.
    pub queue_readings: std::sync::Arc<QueueReadings>,
    /// The embeddings coverage `/metrics` reports, taken at most once per `FRESH_FOR`.
    pub coverage: std::sync::Arc<Fresh<std::sync::Arc<trawl_embeddings::Coverage>>>,
}

pub fn router(state: AppState) -> Router {
    let (router, generated) = documented_routes().split_for_parts();
    let spec = std::sync::Arc::new(openapi::described(generated));
    router
        .route(
            "/openapi.json",
            get(move || {
                let spec = spec.clone();
                async move { axum::Json(spec.as_ref().clone()) }
            }),
        )
        .merge(dashboard::routes())
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

/// Every route with its OpenAPI description (each handler's `#[utoipa::path]`).
fn documented_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(routes::health))
        .routes(routes!(routes::metrics::metrics))
        .routes(routes!(routes::jobs_health))
        .routes(routes!(routes::sites))
        .routes(routes!(routes::postings::postings))
        .routes(routes!(routes::postings::posting))
        .routes(routes!(routes::scrape::scrape))
        .routes(routes!(routes::scrape::run_status))
        .routes(routes!(routes::scrape::cancel_run))
        .routes(routes!(routes::runs::runs))
        .routes(routes!(routes::runs::run))
        .routes(routes!(routes::queue::queue_status))
        .routes(routes!(routes::queue::queues))
        .routes(routes!(
            routes::dead::dead_letters,
            routes::dead::delete_all_dead_letters
        ))
        .routes(routes!(routes::dead::retry_dead_letter))
        .routes(routes!(routes::dead::retry_all_dead_letters))
        .routes(routes!(routes::dead::delete_dead_letter))
        .routes(routes!(routes::queue::pause_queue))
        .routes(routes!(routes::queue::resume_queue))
        .routes(routes!(routes::schedules::scheduler_run))
        .routes(routes!(routes::schedules::scheduler_status))
        .routes(routes!(
            routes::schedules::schedules,
            routes::schedules::upsert_schedule
        ))
        .routes(routes!(routes::schedules::delete_schedule))
        .routes(routes!(routes::pipeline::pipelines))
        .routes(routes!(routes::pipeline::upsert_pipeline))
        .routes(routes!(routes::pipeline::run_pipeline))
        .routes(routes!(routes::pipeline::batches))
        .routes(routes!(routes::pipeline::batch))
        .routes(routes!(routes::pipeline::rerun))
        .routes(routes!(routes::pipeline::rollback))
        .routes(routes!(routes::pipeline::status))
        .routes(routes!(routes::models::list_models))
        .routes(routes!(routes::models::activate_model))
        .routes(routes!(routes::models::similar))
        .routes(routes!(routes::embeddings::coverage))
        .routes(routes!(routes::embeddings::backfill))
        .routes(routes!(routes::embeddings::activate))
        .routes(routes!(routes::embeddings::search))
        .routes(routes!(routes::embeddings::similar))
        .routes(routes!(routes::careers::list, routes::careers::add))
        .routes(routes!(routes::careers::import))
        .routes(routes!(routes::careers::set_enabled))
        .routes(routes!(routes::careers::snapshot))
        .routes(routes!(routes::careers::snapshots))
        .routes(routes!(
            routes::subscribers::subscribe,
            routes::subscribers::list
        ))
        .routes(routes!(routes::subscribers::confirm))
        .routes(routes!(
            routes::subscribers::unsubscribe,
            routes::subscribers::unsubscribe_one_click
        ))
        .routes(routes!(routes::subscribers::digest))
        .routes(routes!(routes::subscribers::mails))
}

/// The OpenAPI description the API serves at `/openapi.json`.
pub fn openapi_spec() -> utoipa::openapi::OpenApi {
    documented_routes().split_for_parts().1
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
