use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use queue_core::{CommonConfig, at_least};

/// trawl's scheduler daemon: every interval, queues a run for each enabled site that is due,
/// behind the site's lock.
#[derive(Parser)]
#[command(name = "trawl-scheduler", version)]
struct Config {
    #[command(flatten)]
    common: CommonConfig,
    /// Seconds between scheduler passes.
    #[arg(long, env = "SCHEDULER_INTERVAL", default_value_t = 30)]
    interval: u64,
    /// Most sites scheduled in one pass.
    #[arg(long, env = "SCHEDULER_BATCH", default_value_t = 100)]
    batch: i64,
    /// Milliseconds the leader lease lasts unless renewed; a follower takes over within it.
    #[arg(long, env = "LEADER_TTL_MS", default_value_t = 15_000)]
    leader_ttl_ms: u64,
    /// Log output.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "pretty")]
    log_format: telemetry::Format,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(config.log_format);
    let shutdown = telemetry::shutdown_on_signal();
    let services = config.common.services().context("invalid configuration")?;
    let checked = || -> Result<_, String> {
        Ok((
            at_least("SCHEDULER_INTERVAL", config.interval, 1)?,
            at_least("SCHEDULER_BATCH", config.batch, 1)?,
            at_least("LEADER_TTL_MS", config.leader_ttl_ms, 300)?,
        ))
    };
    let (interval, batch, leader_ttl_ms) = checked()
        .map_err(anyhow::Error::msg)
        .context("invalid configuration")?;
    let scheduler = trawl_scheduler::Scheduler {
        services,
        interval: Duration::from_secs(interval),
        batch,
        id: trawl_scheduler::new_scheduler_id(),
        leader_ttl: Duration::from_millis(leader_ttl_ms),
    };
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
