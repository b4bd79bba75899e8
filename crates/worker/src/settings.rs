use std::time::Duration;

/// How a worker process behaves (from `trawl-worker`'s flags and environment).
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Unique per process: host, pid and a random part, so two replicas never share in-flight
    /// lists (apalis #504 shows what a shared name does to recovery).
    pub worker_id: String,
    /// Tasks run at once.
    pub concurrency: usize,
    /// How long one blocking dequeue waits before checking for shutdown again.
    pub block_for: Duration,
    /// A worker is alive while its heartbeat is younger than this; renewed every third of it.
    pub heartbeat_ttl: Duration,
    /// At shutdown, how long running tasks may take to finish before they are requeued.
    pub shutdown_grace: Duration,
    /// How long a hand-written task waits for its site's lock before its run fails as busy.
    pub lock_wait: Duration,
    /// First retry delay of a failing page.
    pub retry_base_delay: Duration,
    /// First delay before a transiently failed run is tried again (doubles per retry).
    pub run_retry_base: Duration,
    /// Limit on one HTTP request.
    pub page_timeout: Duration,
    pub user_agent: String,
    /// Browser fetching for sites that need it; None: such sites fail with a clear error.
    pub browser: Option<trawl_scrape::BrowserSettings>,
    /// Requests in flight to one host from this process.
    pub per_domain_concurrency: usize,
    /// Time between two requests to one host from all workers together; None: no shared pacing.
    pub domain_interval: Option<Duration>,
    /// Adzuna API credentials; None: Adzuna sites fail with that reason.
    pub adzuna: Option<trawl_scrape::AdzunaCredentials>,
    /// Where pipeline alerts are POSTed; None: logged and counted only.
    pub alert_webhook_url: Option<url::Url>,
    /// The queues this worker serves, with their weights and caps (WORKER_QUEUES); empty: every
    /// queue its kinds use, weight 1, no cap.
    pub queues: Vec<QueueShare>,
    /// Serve the queues in their listed order (a queue gets a slot only while the ones before
    /// it are empty or at their cap) instead of by weight.
    pub strict_order: bool,
    /// Company career pages may point at private addresses (CAREERS_ALLOW_PRIVATE).
    pub careers_allow_private: bool,
    /// The career kinds' second reader of experience (LLM_URL); None: rules only.
    pub llm: Option<trawl_careers::llm::Llm>,
    /// Where ATS boards found on career pages are read (CAREERS_ATS_BASE_URL); None: the
    /// public APIs.
    pub careers_ats_base_url: Option<url::Url>,
    /// The mail kinds' SMTP server (SMTP_URL; None: they fail with that reason) and links.
    pub mail: trawl_digests::MailKinds,
}

/// One queue of a worker's list: `name[:weight[:cap]]` in WORKER_QUEUES.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueShare {
    pub name: String,
    /// Slots go to queues in proportion to their weights while they all have tasks.
    pub weight: u32,
    /// Most tasks of this queue running at once in this worker; None: up to the concurrency.
    pub cap: Option<usize>,
}

impl QueueShare {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            weight: 1,
            cap: None,
        }
    }

    /// Reads WORKER_QUEUES (`scraping:3,embeddings:1:2`), naming the variable in its errors.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, String> {
        let mut shares: Vec<Self> = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let mut parts = entry.split(':');
            let name = parts.next().unwrap_or_default().to_owned();
            let number = |part: Option<&str>, what: &str| -> Result<Option<u64>, String> {
                part.map(|p| {
                    p.parse::<u64>()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| format!("WORKER_QUEUES: {what} of {name:?} must be a whole number of at least 1, got {p:?}"))
                })
                .transpose()
            };
            let weight = number(parts.next(), "the weight")?.unwrap_or(1);
            let cap = number(parts.next(), "the cap")?;
            if parts.next().is_some() || !queue_core::is_queue_name(&name) {
                return Err(format!(
                    "WORKER_QUEUES: {entry:?} is not name[:weight[:cap]]"
                ));
            }
            if shares.iter().any(|s| s.name == name) {
                return Err(format!("WORKER_QUEUES names {name:?} twice"));
            }
            shares.push(Self {
                name,
                weight: weight.min(1000) as u32,
                cap: cap.map(|c| c as usize),
            });
        }
        Ok(shares)
    }
}

impl WorkerSettings {
    pub fn new(worker_id: String) -> Self {
        Self {
            worker_id,
            concurrency: 4,
            block_for: Duration::from_secs(2),
            heartbeat_ttl: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            lock_wait: Duration::from_secs(300),
            retry_base_delay: Duration::from_millis(500),
            run_retry_base: Duration::from_secs(30),
            page_timeout: Duration::from_secs(30),
            user_agent: trawl_scrape::DEFAULT_USER_AGENT.to_owned(),
            browser: None,
            per_domain_concurrency: 1,
            domain_interval: None,
            adzuna: None,
            alert_webhook_url: None,
            queues: Vec::new(),
            strict_order: false,
            careers_allow_private: false,
            llm: None,
            careers_ats_base_url: None,
            mail: trawl_digests::MailKinds {
                mailer: None,
                public_url: url::Url::parse("http://127.0.0.1:8000").expect("static URL"),
            },
        }
    }
}

/// `<host>-<pid>-<random>`: readable in `GET /jobs/queue/status`, unique across restarts.
pub fn new_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    let random = &uuid::Uuid::new_v4().simple().to_string()[..8];
    format!("{host}-{}-{random}", std::process::id())
}
