//! `trawl-scheduler`'s configuration: every flag has its environment variable.
use std::time::Duration;

use queue_core::{CommonConfig, at_least};

use crate::{Scheduler, new_scheduler_id};

#[derive(clap::Args)]
pub struct SchedulerConfig {
    #[command(flatten)]
    pub common: CommonConfig,
    /// Seconds between scheduler passes.
    #[arg(long, env = "SCHEDULER_INTERVAL", default_value_t = 30)]
    pub interval: u64,
    /// Most sites scheduled in one pass.
    #[arg(long, env = "SCHEDULER_BATCH", default_value_t = 100)]
    pub batch: i64,
    /// Milliseconds the leader lease lasts unless renewed; a follower takes over within it.
    #[arg(long, env = "LEADER_TTL_MS", default_value_t = 15_000)]
    pub leader_ttl_ms: u64,
    /// Where pipeline alerts (a batch past its SLA, a stage too slow) are POSTed as
    /// Slack-style JSON; unset: logged and counted only.
    #[arg(long, env = "ALERT_WEBHOOK_URL")]
    pub alert_webhook_url: Option<url::Url>,
    #[command(flatten)]
    pub metrics: telemetry::metric::MetricsConfig,
}

impl SchedulerConfig {
    /// The scheduler; a value it cannot run with is refused, naming its variable.
    pub fn scheduler(&self) -> Result<Scheduler, String> {
        let interval = at_least("SCHEDULER_INTERVAL", self.interval, 1)?;
        let batch = at_least("SCHEDULER_BATCH", self.batch, 1)?;
        let leader_ttl_ms = at_least("LEADER_TTL_MS", self.leader_ttl_ms, 300)?;
        Ok(Scheduler {
            services: self.common.services().map_err(|err| err.to_string())?,
            interval: Duration::from_secs(interval),
            batch,
            id: new_scheduler_id(),
            leader_ttl: Duration::from_millis(leader_ttl_ms),
            alerts: trawl_pipeline::Alerts::new(self.alert_webhook_url.clone()),
        })
    }
}
