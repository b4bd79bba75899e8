use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use queue_core::{CommonConfig, at_least};
use trawl_api::{ApiKeys, AppState};
use trawl_scrape::HttpFetcher;
use trawl_scrape_runs::Executor;

/// trawl's HTTP API: queue depth, run status and results, manual scrape requests.
#[derive(Parser)]
#[command(name = "trawl-api", version)]
struct Config {
    #[command(flatten)]
    common: CommonConfig,
    /// Address to listen on.
    #[arg(long, env = "API_BIND", default_value = "127.0.0.1:8000")]
    bind: SocketAddr,
    /// Comma-separated keys accepted in `Authorization: Bearer <key>` on POST endpoints.
    #[arg(long, env = "API_KEYS", default_value = "", hide_env_values = true)]
    api_keys: String,
    /// Serve POST endpoints without keys (local use only).
    #[arg(long, env = "API_ALLOW_OPEN")]
    allow_open: bool,
    /// Seconds a sync-mode scrape may take.
    #[arg(long, env = "SYNC_TIMEOUT", default_value_t = 60)]
    sync_timeout: u64,
    /// Milliseconds before the first retry of a failing page in sync mode.
    #[arg(long, env = "RETRY_BASE_MS", default_value_t = 500)]
    retry_base_ms: u64,
    /// Seconds one HTTP request of a sync-mode scrape may take.
    #[arg(long, env = "PAGE_TIMEOUT", default_value_t = 30)]
    page_timeout: u64,
    /// Log output.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "pretty")]
    log_format: telemetry::Format,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(config.log_format);
    let keys = ApiKeys::parse(&config.api_keys);
    if keys.is_open() && !config.allow_open {
        bail!(
            "API_KEYS is empty: set API_KEYS, or pass --allow-open (API_ALLOW_OPEN=true) to serve POST endpoints without keys"
        );
    }
    let shutdown = telemetry::shutdown_on_signal();
    let services = config.common.services().context("invalid configuration")?;
    let (page_timeout, sync_timeout) = at_least("PAGE_TIMEOUT", config.page_timeout, 1)
        .and_then(|page| Ok((page, at_least("SYNC_TIMEOUT", config.sync_timeout, 1)?)))
        .map_err(anyhow::Error::msg)
        .context("invalid configuration")?;
    let fetcher = HttpFetcher::new(
        trawl_scrape::DEFAULT_USER_AGENT,
        Duration::from_secs(page_timeout),
    )?;
    let executor = Executor {
        services: services.clone(),
        fetchers: trawl_scrape::Fetchers::http(fetcher),
        retry_base_delay: Duration::from_millis(config.retry_base_ms),
        // Sync mode answers in one request: there is no queue for a retry to wait in.
        run_retry_base: None,
    };
    let state = AppState {
        services,
        executor,
        keys,
        sync_timeout: Duration::from_secs(sync_timeout),
        scheduler_batch: 100,
    };
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    tracing::info!(addr = %config.bind, open = state.keys.is_open(), "API listening");
    trawl_api::serve(listener, state, shutdown).await?;
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
