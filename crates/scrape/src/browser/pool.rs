//! The session pool. Sessions are reused across pages and tasks, capped per process, replaced
//! after `pages_per_session` pages or any error, and always closed: explicitly on the normal
//! path, by killing the driver's process group when the pool is dropped (shutdown, panic).
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use telemetry::metric;
use tempfile::TempDir;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::driver::{DriverProcess, kill_processes_mentioning, processes_mentioning};
use super::{BrowserSettings, BrowserSlots, SlotLease};
use crate::fetch::PageRequest;
use crate::{PageFetcher, ScrapeError};

/// How long a new browser may take to start: longer than a page, since a cold start on a busy
/// 2-core machine takes seconds, and not part of any page's watchdog.
const SESSION_START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long closing a session may take before its browser is killed instead.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a closed session's browser processes get to exit before they are killed.
const BROWSER_EXIT_WAIT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct BrowserPool {
    inner: Arc<Inner>,
}

struct Inner {
    settings: BrowserSettings,
    /// Our own chromedriver, started at the first session when no WEBDRIVER_URL is set;
    /// dropping it kills it and every browser it started.
    driver: tokio::sync::Mutex<Option<DriverProcess>>,
    idle: Mutex<Vec<Session>>,
    /// Whether the idle reaper runs (started with the first session).
    reaper_started: std::sync::atomic::AtomicBool,
    /// One permit per session allowed in this process.
    permits: Semaphore,
    /// The cap across every worker, when configured.
    slots: Option<Arc<dyn BrowserSlots>>,
    /// Owns the idle reaper; the pool's owner joins it at shutdown.
    tracker: TaskTracker,
    /// Cancelled by `close`: the reaper stops.
    closed: CancellationToken,
}

struct Session {
    client: Client,
    pages: u32,
    /// When the session was last put back in the pool.
    idle_since: std::time::Instant,
    /// Removed when the session is dropped, whatever happened to it.
    profile: Option<TempDir>,
    _slot: Option<SlotLease>,
    _open: Counted,
}

/// Counts a session in `trawl_browser_sessions_open` for as long as it lives, however it ends.
struct Counted;

impl Counted {
    fn new() -> Self {
        metrics::counter!(metric::BROWSER_SESSIONS_STARTED).increment(1);
        metrics::gauge!(metric::BROWSER_SESSIONS_OPEN).increment(1);
        Counted
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        metrics::gauge!(metric::BROWSER_SESSIONS_OPEN).decrement(1);
    }
}

impl BrowserPool {
    /// A pool that opens browsers on demand; chromedriver (unless `webdriver_url` is set) starts
    /// with the first session.
    /// Its background task (the idle reaper) runs on `tracker`, and ends at `close`.
    pub fn new(
        settings: BrowserSettings,
        slots: Option<Arc<dyn BrowserSlots>>,
        tracker: TaskTracker,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                permits: Semaphore::new(settings.max_sessions.max(1)),
                settings,
                driver: tokio::sync::Mutex::new(None),
                idle: Mutex::new(Vec::new()),
                reaper_started: std::sync::atomic::AtomicBool::new(false),
                slots,
                tracker,
                closed: CancellationToken::new(),
            }),
        }
    }

    /// The pid of the chromedriver this pool started, if it did.
    pub async fn driver_pid(&self) -> Option<u32> {
        self.inner
            .driver
            .lock()
            .await
            .as_ref()
            .and_then(DriverProcess::pid)
    }

    /// Closes every idle session and stops our chromedriver. A pool dropped with sessions still
    /// open kills them with the driver's process group.
    pub async fn close(&self) {
        self.inner.closed.cancel();
        let sessions: Vec<Session> =
            std::mem::take(&mut *self.inner.idle.lock().expect("idle lock"));
        for session in sessions {
            self.close_session(session).await;
        }
        let driver = self.inner.driver.lock().await.take();
        if let Some(driver) = driver {
            driver.stop().await;
        }
    }

    async fn endpoint(&self) -> Result<String, ScrapeError> {
        if let Some(url) = &self.inner.settings.webdriver_url {
            return Ok(url.clone());
        }
        let mut driver = self.inner.driver.lock().await;
        if driver.is_none() {
            let started = DriverProcess::spawn(&self.inner.settings.chromedriver)
                .await
                .map_err(session_error)?;
            tracing::info!(endpoint = %started.url, "chromedriver started");
            *driver = Some(started);
        }
        Ok(driver.as_ref().expect("just started").url.clone())
    }

    async fn open_session(&self) -> Result<Session, ScrapeError> {
        let settings = &self.inner.settings;
        let slot = match &self.inner.slots {
            Some(slots) => Some(slots.acquire().await.map_err(session_error)?),
            None => None,
        };
        let local = settings.webdriver_url.is_none();
        let profile = if local {
            Some(
                tempfile::Builder::new()
                    .prefix("trawl-chrome-")
                    .tempdir_in(&settings.profile_root)
                    .map_err(|err| {
                        session_error(format!("cannot create a profile folder: {err}"))
                    })?,
            )
        } else {
            None
        };
        let mut args = vec![
            "--headless=new".to_owned(),
            // Root in a container has no sandbox to offer; /dev/shm there is tiny.
            "--no-sandbox".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-gpu".to_owned(),
            // No calls home: they fail on closed networks and slow every start.
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            format!("--user-agent={}", settings.user_agent),
        ];
        if let Some(profile) = &profile {
            args.push(format!("--user-data-dir={}", profile.path().display()));
        }
        let mut options = json!({"args": args});
        if let (true, Some(binary)) = (local, &settings.chromium) {
            options["binary"] = json!(binary);
        }
        let mut capabilities = Capabilities::new();
        if !local {
            // A Grid matches requests to its nodes' stereotypes by browser name.
            capabilities.insert("browserName".into(), json!("chrome"));
        }
        capabilities.insert("goog:chromeOptions".into(), options);
        capabilities.insert("pageLoadStrategy".into(), json!("normal"));
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        let endpoint = self.endpoint().await?;
        let connect = builder.connect(&endpoint);
        let client = tokio::time::timeout(SESSION_START_TIMEOUT, connect)
            .await
            .map_err(|_| session_error("the browser did not start in time"))?
            .map_err(session_error)?;
        self.start_reaper();
        Ok(Session {
            client,
            pages: 0,
            idle_since: std::time::Instant::now(),
            profile,
            _slot: slot,
            _open: Counted::new(),
        })
    }

    async fn close_session(&self, session: Session) {
        let Session {
            client, profile, ..
        } = session;
        let closed = tokio::time::timeout(CLOSE_TIMEOUT, client.close()).await;
        if let Some(profile) = &profile {
            let marker = profile.path().display().to_string();
            if matches!(closed, Ok(Ok(()))) {
                // The session is closed once the browser's processes are gone, not when
                // chromedriver answers: on a busy machine they linger a moment longer.
                let deadline = tokio::time::Instant::now() + BROWSER_EXIT_WAIT;
                while !processes_mentioning(&marker).is_empty()
                    && tokio::time::Instant::now() < deadline
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            // Whatever would not quit is killed by its unique profile folder.
            let killed = kill_processes_mentioning(&marker);
            if killed > 0 {
                tracing::warn!(
                    killed,
                    "browser session did not close; killed its processes"
                );
            }
        }
        drop(profile);
    }

    /// Closes sessions idle longer than `idle_timeout`, so an idle browser neither holds memory
    /// nor a global slot another worker is waiting for. Stops when the pool is dropped.
    fn start_reaper(&self) {
        use std::sync::atomic::Ordering;
        if self.inner.reaper_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let every = (self.inner.settings.idle_timeout / 2).max(Duration::from_millis(100));
        let closed = self.inner.closed.clone();
        self.inner.tracker.spawn(async move {
            loop {
                // Safe to cancel: between sweeps the reaper holds nothing.
                tokio::select! {
                    () = closed.cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
                let Some(inner) = weak.upgrade() else { return };
                let pool = BrowserPool { inner };
                let limit = pool.inner.settings.idle_timeout;
                let expired: Vec<Session> = {
                    let mut idle = pool.inner.idle.lock().expect("idle lock");
                    let (old, fresh) = std::mem::take(&mut *idle)
                        .into_iter()
                        .partition(|s| s.idle_since.elapsed() >= limit);
                    *idle = fresh;
                    old
                };
                for session in expired {
                    pool.close_session(session).await;
                }
            }
        });
    }

    fn take_idle(&self) -> Option<Session> {
        self.inner.idle.lock().expect("idle lock").pop()
    }

    async fn load(
        client: &Client,
        request: &PageRequest,
        timeout: Duration,
    ) -> Result<String, ScrapeError> {
        let url = request.url.as_str();
        let failed = |err: fantoccini::error::CmdError| ScrapeError::Transport {
            url: url.to_owned(),
            timed_out: false,
            retry_after: None,
            source: Box::new(err),
        };
        client.goto(url).await.map_err(failed)?;
        if let Some(selector) = &request.wait_for {
            client
                .wait()
                .at_most(timeout)
                .every(Duration::from_millis(50))
                .for_element(Locator::Css(selector))
                .await
                .map_err(failed)?;
        }
        if let Some(more) = &request.load_more {
            Self::load_more(client, more, timeout)
                .await
                .map_err(failed)?;
        }
        client.source().await.map_err(failed)
    }

    /// Clicks the "load more" button until it is gone or hidden (or `max_clicks`), each time
    /// waiting for the page's links to grow. The page watchdog bounds the whole.
    async fn load_more(
        client: &Client,
        more: &crate::fetch::LoadMore,
        timeout: Duration,
    ) -> Result<(), fantoccini::error::CmdError> {
        let links = || async {
            let count = client
                .execute("return document.links.length", Vec::new())
                .await?;
            Ok::<u64, fantoccini::error::CmdError>(count.as_u64().unwrap_or(0))
        };
        for _ in 0..more.max_clicks {
            let Ok(button) = client.find(Locator::Css(&more.selector)).await else {
                break;
            };
            if !button.is_displayed().await.unwrap_or(false) {
                break;
            }
            let before = links().await?;
            button.click().await?;
            let started = std::time::Instant::now();
            while links().await? <= before && started.elapsed() < timeout {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }
}

impl PageFetcher for BrowserPool {
    /// Loads a page in a pooled session under the watchdog. A session that errs or hangs is
    /// closed (killed if need be) and never reused.
    async fn fetch(&self, request: &PageRequest) -> Result<String, ScrapeError> {
        let _permit = self
            .inner
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let mut session = match self.take_idle() {
            Some(session) => session,
            None => self.open_session().await?,
        };
        let limit = self.inner.settings.page_timeout;
        let loaded = tokio::time::timeout(limit, Self::load(&session.client, request, limit)).await;
        match loaded {
            Ok(Ok(html)) => {
                session.pages += 1;
                if session.pages >= self.inner.settings.pages_per_session {
                    self.close_session(session).await;
                } else {
                    session.idle_since = std::time::Instant::now();
                    self.inner.idle.lock().expect("idle lock").push(session);
                }
                Ok(html)
            }
            Ok(Err(err)) => {
                self.close_session(session).await;
                Err(err)
            }
            Err(_) => {
                metrics::counter!(metric::BROWSER_SESSIONS_KILLED).increment(1);
                self.close_session(session).await;
                Err(ScrapeError::Transport {
                    url: request.url.to_string(),
                    timed_out: true,
                    retry_after: None,
                    source: format!(
                        "browser watchdog: the page did not load within {} s",
                        limit.as_secs()
                    )
                    .into(),
                })
            }
        }
    }
}

fn session_error(source: impl Into<crate::error::BoxError>) -> ScrapeError {
    ScrapeError::Browser {
        source: source.into(),
    }
}
