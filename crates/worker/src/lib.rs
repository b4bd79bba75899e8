//! The worker: a registry of kinds and a loop. It takes tasks, runs each through its kind's
//! handler and the one lifecycle every kind shares, and acks, retries or dead-letters it.
mod config;
pub mod kinds;
mod outcome;
mod settings;
mod worker;

pub use config::WorkerConfig;
pub use outcome::{Outcome, Processed, WorkerError};
pub use settings::{QueueShare, WorkerSettings, new_worker_id};
pub use trawl_tasks::{Ended, Lifecycle, Registry, retry_delay};
pub use worker::Worker;

/// Runs a worker process until SIGTERM: `kinds` may add kinds to trawl's own (a test worker
/// adds its test kinds; `trawl-worker` adds none).
pub async fn serve(
    config: &WorkerConfig,
    kinds: impl FnOnce(Registry) -> Registry,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let shutdown = telemetry::shutdown_on_signal();
    config.metrics.serve(shutdown.clone()).await?;
    let services = config.common.services().context("invalid configuration")?;
    let settings = config
        .settings()
        .map_err(anyhow::Error::msg)
        .context("invalid configuration")?;
    let background = tokio_util::task::TaskTracker::new();
    let slots = config.browser_slots(&services, &background);
    let registry = kinds::registry(&services, &settings, slots, &background)
        .context("cannot build the worker")?;
    let registry = match kinds::embeddings(
        &services,
        &settings,
        &config.embedder,
        &background,
        &shutdown,
    )? {
        Some(embed) => registry.register(embed),
        None => registry,
    };
    Worker::with_registry(services, settings, kinds(registry), background)
        .map_err(anyhow::Error::msg)
        .context("invalid configuration")?
        .run(shutdown)
        .await;
    Ok(())
}
