//! `trawl-worker`'s configuration: every flag has its environment variable.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use queue_core::{CommonConfig, Services, SlotSemaphore, at_least};
use tokio_util::task::TaskTracker;
use trawl_scrape::{BrowserSettings, BrowserSlots};
use trawl_scrape_runs::RedisBrowserSlots;

use crate::{WorkerSettings, new_worker_id};

#[derive(clap::Args)]
pub struct WorkerConfig {
    #[command(flatten)]
    pub common: CommonConfig,
    #[command(flatten)]
    pub metrics: telemetry::metric::MetricsConfig,
    /// Tasks this process runs at once.
    #[arg(long, env = "WORKER_CONCURRENCY", default_value_t = 4)]
    pub concurrency: usize,
    /// Queues to serve, `name[:weight[:cap]]` comma-separated (e.g. `scraping:3,embeddings:1:2`);
    /// empty: every queue of this worker's kinds, equal weights.
    #[arg(long, env = "WORKER_QUEUES", default_value = "")]
    pub queues: String,
    /// `weighted` (slots shared by weight) or `strict` (a queue only while those listed before
    /// it are empty).
    #[arg(
        long,
        env = "WORKER_QUEUE_ORDER",
        value_enum,
        default_value = "weighted"
    )]
    pub queue_order: QueueOrder,
    /// Seconds running tasks get to finish after SIGTERM before they are requeued.
    #[arg(long, env = "SHUTDOWN_GRACE", default_value_t = 30)]
    pub shutdown_grace: u64,
    /// Milliseconds a heartbeat lasts; a worker silent for longer is presumed dead and its
    /// tasks are recovered.
    #[arg(long, env = "HEARTBEAT_TTL_MS", default_value_t = 30_000)]
    pub heartbeat_ttl_ms: u64,
    /// Seconds after its run was created that a task for a busy site may keep waiting (in the
    /// delayed set, not in a worker slot) before its run fails as busy.
    #[arg(long, env = "LOCK_WAIT", default_value_t = 300)]
    pub lock_wait: u64,
    /// Milliseconds before the first retry of a failing page (doubles per retry).
    #[arg(long, env = "RETRY_BASE_MS", default_value_t = 500)]
    pub retry_base_ms: u64,
    /// Milliseconds before a run that failed transiently (every page 5xx/429/network, a time-out,
    /// the database gone) is tried again; doubles per retry, with jitter, up to the site's
    /// max_retries.
    #[arg(long, env = "RUN_RETRY_BASE_MS", default_value_t = 30_000)]
    pub run_retry_base_ms: u64,
    /// Seconds one HTTP request may take.
    #[arg(long, env = "PAGE_TIMEOUT", default_value_t = 30)]
    pub page_timeout: u64,
    /// User-Agent sent to sites, by HTTP and by the browser.
    #[arg(long, env = "USER_AGENT", default_value = trawl_scrape::DEFAULT_USER_AGENT)]
    pub user_agent: String,
    /// Scrape sites whose definition says `"fetch": "browser"` (needs chromedriver + chromium,
    /// or WEBDRIVER_URL).
    #[arg(long, env = "BROWSER_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub browser_enabled: bool,
    /// An existing WebDriver endpoint (e.g. http://chromedriver:4444); unset: start chromedriver.
    #[arg(long, env = "WEBDRIVER_URL")]
    pub webdriver_url: Option<String>,
    /// chromedriver to start when WEBDRIVER_URL is unset.
    #[arg(long, env = "CHROMEDRIVER_PATH", default_value = "chromedriver")]
    pub chromedriver_path: PathBuf,
    /// Browser binary for chromedriver (default: /usr/bin/chromium when present).
    #[arg(long, env = "CHROMIUM_PATH")]
    pub chromium_path: Option<PathBuf>,
    /// Most browser sessions open at once in this process.
    #[arg(long, env = "BROWSER_MAX_SESSIONS", default_value_t = 2)]
    pub browser_max_sessions: usize,
    /// A browser session is replaced after this many pages.
    #[arg(long, env = "BROWSER_PAGES_PER_SESSION", default_value_t = 50)]
    pub browser_pages_per_session: u32,
    /// Seconds one browser page (load, wait, read) may take before its session is killed.
    #[arg(long, env = "BROWSER_PAGE_TIMEOUT", default_value_t = 30)]
    pub browser_page_timeout: u64,
    /// Seconds an unused browser session stays open (holding its global slot).
    #[arg(long, env = "BROWSER_IDLE_TIMEOUT", default_value_t = 30)]
    pub browser_idle_timeout: u64,
    /// Requests in flight to one host from this worker.
    #[arg(long, env = "PER_DOMAIN_CONCURRENCY", default_value_t = 1)]
    pub per_domain_concurrency: usize,
    /// Requests per second to one host from all workers together (shared through Redis);
    /// 0 = no shared limit.
    #[arg(long, env = "DOMAIN_RATE", default_value_t = 5.0)]
    pub domain_rate: f64,
    /// Adzuna API app id (for `adzuna` sites).
    #[arg(long, env = "ADZUNA_APP_ID", hide_env_values = true)]
    pub adzuna_app_id: Option<String>,
    /// Adzuna API app key (for `adzuna` sites).
    #[arg(long, env = "ADZUNA_APP_KEY", hide_env_values = true)]
    pub adzuna_app_key: Option<String>,
    /// Where pipeline alerts are POSTed (Slack-style JSON); unset: logged and counted only.
    #[arg(long, env = "ALERT_WEBHOOK_URL")]
    pub alert_webhook_url: Option<url::Url>,
    /// The model the `embed_batch` kind embeds with (only loaded when this worker serves the
    /// embeddings queue).
    #[command(flatten)]
    pub embedder: trawl_embedder::EmbedderConfig,
    /// The career kinds: private addresses, the LLM that reads experience.
    #[command(flatten)]
    pub careers: trawl_careers::CareersConfig,
    /// The digests' and confirmations' SMTP server, sender and links.
    #[command(flatten)]
    pub mail: trawl_digests::MailConfig,
    /// Browsers open at once across all workers; 0 = no global cap.
    #[arg(long, env = "BROWSER_GLOBAL_SLOTS", default_value_t = 0)]
    pub browser_global_slots: u32,
    /// Seconds a global browser slot's lease lasts unless renewed (a crashed worker's slot
    /// comes back after this).
    #[arg(long, env = "BROWSER_SLOT_LEASE", default_value_t = 30)]
    pub browser_slot_lease: u64,
    /// Seconds to wait for a free global browser slot before the page fails (and is retried).
    #[arg(long, env = "BROWSER_SLOT_WAIT", default_value_t = 60)]
    pub browser_slot_wait: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QueueOrder {
    Weighted,
    Strict,
}

impl WorkerConfig {
    /// The worker's settings; a value no worker can run with is refused, naming its variable.
    pub fn settings(&self) -> Result<WorkerSettings, String> {
        let mut settings = WorkerSettings::new(new_worker_id());
        settings.concurrency = at_least("WORKER_CONCURRENCY", self.concurrency, 1)?;
        settings.queues = crate::settings::QueueShare::parse_list(&self.queues)?;
        settings.strict_order = self.queue_order == QueueOrder::Strict;
        settings.shutdown_grace = Duration::from_secs(self.shutdown_grace);
        settings.lock_wait = Duration::from_secs(self.lock_wait);
        // Renewed every third of it: below 300 ms a busy Redis round trip could expire it.
        settings.heartbeat_ttl =
            Duration::from_millis(at_least("HEARTBEAT_TTL_MS", self.heartbeat_ttl_ms, 300)?);
        settings.retry_base_delay = Duration::from_millis(self.retry_base_ms);
        settings.run_retry_base = Duration::from_millis(self.run_retry_base_ms);
        settings.page_timeout =
            Duration::from_secs(at_least("PAGE_TIMEOUT", self.page_timeout, 1)?);
        settings.user_agent.clone_from(&self.user_agent);
        settings.per_domain_concurrency =
            at_least("PER_DOMAIN_CONCURRENCY", self.per_domain_concurrency, 1)?;
        if !self.domain_rate.is_finite() || self.domain_rate < 0.0 {
            return Err(format!(
                "DOMAIN_RATE must be 0 (no shared limit) or a positive number, got {}",
                self.domain_rate
            ));
        }
        settings.domain_interval =
            (self.domain_rate > 0.0).then(|| Duration::from_secs_f64(1.0 / self.domain_rate));
        at_least("BROWSER_SLOT_LEASE", self.browser_slot_lease, 1)?;
        if let (Some(app_id), Some(app_key)) = (&self.adzuna_app_id, &self.adzuna_app_key) {
            settings.adzuna = Some(trawl_scrape::AdzunaCredentials {
                app_id: app_id.clone(),
                app_key: app_key.clone(),
            });
        }
        settings
            .alert_webhook_url
            .clone_from(&self.alert_webhook_url);
        settings.careers_allow_private = self.careers.careers_allow_private;
        settings.llm = self.careers.llm()?;
        settings
            .careers_ats_base_url
            .clone_from(&self.careers.careers_ats_base_url);
        settings.mail = trawl_digests::MailKinds {
            mailer: self.mail.mailer()?,
            public_url: self.mail.public_url.clone(),
        };
        if self.browser_enabled {
            let mut browser = BrowserSettings::new(&self.user_agent);
            browser.webdriver_url.clone_from(&self.webdriver_url);
            browser.chromedriver.clone_from(&self.chromedriver_path);
            if let Some(path) = &self.chromium_path {
                browser.chromium = Some(path.clone());
            }
            browser.max_sessions = at_least("BROWSER_MAX_SESSIONS", self.browser_max_sessions, 1)?;
            browser.pages_per_session = at_least(
                "BROWSER_PAGES_PER_SESSION",
                self.browser_pages_per_session,
                1,
            )?;
            browser.page_timeout = Duration::from_secs(at_least(
                "BROWSER_PAGE_TIMEOUT",
                self.browser_page_timeout,
                1,
            )?);
            browser.idle_timeout = Duration::from_secs(at_least(
                "BROWSER_IDLE_TIMEOUT",
                self.browser_idle_timeout,
                1,
            )?);
            settings.browser = Some(browser);
        }
        Ok(settings)
    }

    /// The global browser cap, when configured; its lease renewers run on `tracker`.
    pub fn browser_slots(
        &self,
        services: &Services,
        tracker: &TaskTracker,
    ) -> Option<Arc<dyn BrowserSlots>> {
        (self.browser_global_slots > 0).then(|| {
            Arc::new(RedisBrowserSlots(SlotSemaphore::new(
                services.redis.clone(),
                services.keys(),
                self.browser_global_slots,
                Duration::from_secs(self.browser_slot_lease),
                Duration::from_secs(self.browser_slot_wait),
                tracker.clone(),
            ))) as Arc<dyn BrowserSlots>
        })
    }
}
