use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;

/// Serves trawl's deterministic demo job board (240 postings, search, pagination, JSON-LD
/// detail pages, injectable faults at /_admin/faults).
#[derive(Parser)]
#[command(name = "trawl-demo-board", version)]
struct Config {
    /// Address to listen on.
    #[arg(long, env = "DEMO_BOARD_BIND", default_value = "127.0.0.1:8090")]
    bind: SocketAddr,
    /// Log output: json or pretty.
    #[arg(long, env = "LOG_FORMAT", default_value = "pretty")]
    log_format: telemetry::Format,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(config.log_format);
    let shutdown = telemetry::shutdown_on_signal();
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    tracing::info!(addr = %config.bind, "demo board listening");
    demo_board::DemoBoard::default()
        .serve(listener, shutdown)
        .await?;
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
