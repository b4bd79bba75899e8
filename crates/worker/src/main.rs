use anyhow::Context;
use clap::Parser;
use trawl_worker::{Worker, WorkerConfig};

/// trawl's worker: takes scrape tasks from the queue, scrapes the sites (HTTP or a real browser),
/// stores the postings and records every run. Run as many as you like.
#[derive(Parser)]
#[command(name = "trawl-worker", version)]
struct Config {
    #[command(flatten)]
    worker: WorkerConfig,
    /// Log output.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "pretty")]
    log_format: telemetry::Format,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(config.log_format);
    let shutdown = telemetry::shutdown_on_signal();
    let services = config
        .worker
        .common
        .services()
        .context("invalid configuration")?;
    let settings = config
        .worker
        .settings()
        .map_err(anyhow::Error::msg)
        .context("invalid configuration")?;
    let background = tokio_util::task::TaskTracker::new();
    let slots = config.worker.browser_slots(&services, &background);
    Worker::new(services, settings, slots, background)
        .context("cannot build the worker")?
        .run(shutdown)
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn verify_cli() {
        use clap::CommandFactory;
        super::Config::command().debug_assert();
    }
}
