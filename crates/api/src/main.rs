use anyhow::Context;
use clap::Parser;
use trawl_api::ApiConfig;

/// trawl's HTTP API: queue depth, run status and results, manual scrape requests.
#[derive(Parser)]
#[command(name = "trawl-api", version)]
struct Config {
    #[command(flatten)]
    api: ApiConfig,
    /// Log output.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "pretty")]
    log_format: telemetry::Format,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(config.log_format);
    let state = config
        .api
        .state()
        .map_err(anyhow::Error::msg)
        .context("invalid configuration")?;
    let shutdown = telemetry::shutdown_on_signal();
    let bind = config.api.bind;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    tracing::info!(addr = %bind, open = state.keys.is_open(), "API listening");
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
