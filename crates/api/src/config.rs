//! `trawl-api`'s configuration: every flag has its environment variable.
use std::net::SocketAddr;
use std::time::Duration;

use queue_core::{CommonConfig, at_least};
use trawl_scrape::HttpFetcher;

use crate::{ApiKeys, AppState};

#[derive(clap::Args)]
pub struct ApiConfig {
    #[command(flatten)]
    pub common: CommonConfig,
    /// Address to listen on.
    #[arg(long, env = "API_BIND", default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,
    /// Comma-separated keys accepted in `Authorization: Bearer <key>` on POST endpoints.
    #[arg(long, env = "API_KEYS", default_value = "", hide_env_values = true)]
    pub api_keys: String,
    /// Serve POST endpoints without keys (local use only).
    #[arg(long, env = "API_ALLOW_OPEN")]
    pub allow_open: bool,
    /// Seconds a sync-mode scrape may take.
    #[arg(long, env = "SYNC_TIMEOUT", default_value_t = 60)]
    pub sync_timeout: u64,
    /// Milliseconds before the first retry of a failing page in sync mode.
    #[arg(long, env = "RETRY_BASE_MS", default_value_t = 500)]
    pub retry_base_ms: u64,
    /// Seconds one HTTP request of a sync-mode scrape may take.
    #[arg(long, env = "PAGE_TIMEOUT", default_value_t = 30)]
    pub page_timeout: u64,
    /// Where pipeline alerts raised by `POST /scheduler/run` passes are POSTed; unset: logged
    /// and counted only.
    #[arg(long, env = "ALERT_WEBHOOK_URL")]
    pub alert_webhook_url: Option<url::Url>,
    /// The model semantic search embeds queries with: the workers' (see trawl-worker).
    #[command(flatten)]
    pub embedder: trawl_embedder::EmbedderConfig,
    /// Let company career pages point at loopback or private-network addresses (the demo
    /// board, tests).
    #[arg(long, env = "CAREERS_ALLOW_PRIVATE", default_value_t = false)]
    pub careers_allow_private: bool,
}

impl ApiConfig {
    /// The API's state; a configuration it cannot serve with is refused, naming the variable.
    pub fn state(&self) -> Result<AppState, String> {
        let keys = ApiKeys::parse(&self.api_keys);
        if keys.is_open() && !self.allow_open {
            return Err("API_KEYS is empty: set API_KEYS, or pass --allow-open \
                 (API_ALLOW_OPEN=true) to serve POST endpoints without keys"
                .into());
        }
        let page_timeout = at_least("PAGE_TIMEOUT", self.page_timeout, 1)?;
        let sync_timeout = at_least("SYNC_TIMEOUT", self.sync_timeout, 1)?;
        let services = self.common.services().map_err(|err| err.to_string())?;
        let fetcher = HttpFetcher::new(
            trawl_scrape::DEFAULT_USER_AGENT,
            Duration::from_secs(page_timeout),
        )
        .map_err(|err| trawl_scrape::error_chain(&err))?;
        let sync_scrape = trawl_tasks::erased(trawl_scrape_runs::ScrapeHandler {
            db: services.db.clone(),
            fetchers: trawl_scrape::Fetchers::http(fetcher),
            retry_base_delay: Duration::from_millis(self.retry_base_ms),
        });
        let embedder = self
            .embedder
            .build()
            .map_err(|err| format!("invalid embeddings configuration: {err}"))?;
        Ok(AppState {
            embedder,
            metrics: telemetry::metric::install(),
            services,
            sync_scrape,
            keys,
            sync_timeout: Duration::from_secs(sync_timeout),
            scheduler_batch: 100,
            alerts: trawl_pipeline::Alerts::new(self.alert_webhook_url.clone()),
            similarity: Default::default(),
            careers_allow_private: self.careers_allow_private,
            run_counts: Default::default(),
            coverage: Default::default(),
            queue_readings: Default::default(),
        })
    }
}
