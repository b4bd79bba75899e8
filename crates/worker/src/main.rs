use clap::Parser;
use trawl_worker::WorkerConfig;

/// trawl's worker: takes tasks of every kind from the queue (scrapes: through HTTP or a real
/// browser), runs them and records every run. Run as many as you like.
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
    trawl_worker::serve(&config.worker, |kinds| kinds).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn verify_cli() {
        use clap::CommandFactory;
        super::Config::command().debug_assert();
    }
}
