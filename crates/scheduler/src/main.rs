use anyhow::Context;
use clap::Parser;
use trawl_scheduler::SchedulerConfig;

/// trawl's scheduler daemon: every interval, queues a run for each enabled site that is due,
/// behind the site's lock.
#[derive(Parser)]
#[command(name = "trawl-scheduler", version)]
struct Config {
    #[command(flatten)]
    scheduler: SchedulerConfig,
    /// Log output.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "pretty")]
    log_format: telemetry::Format,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(config.log_format);
    let scheduler = config
        .scheduler
        .scheduler()
        .map_err(anyhow::Error::msg)
        .context("invalid configuration")?;
    let shutdown = telemetry::shutdown_on_signal();
    config.scheduler.metrics.serve(shutdown.clone()).await?;
    scheduler.run(shutdown).await;
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
