//! Scraping through a real browser over WebDriver: a pool of reused sessions per process with
//! a cap, recycling, a watchdog per page, and cleanup on every path (seed 004's lessons).
mod driver;
mod pool;
mod slots;

use std::path::PathBuf;
use std::time::Duration;

pub use pool::BrowserPool;
pub use slots::{BrowserSlots, SlotLease};

/// Where browsers come from and how they are used.
#[derive(Debug, Clone)]
pub struct BrowserSettings {
    /// An existing WebDriver endpoint (chromedriver, Selenium Grid). None: start chromedriver.
    pub webdriver_url: Option<String>,
    pub chromedriver: PathBuf,
    /// The browser binary chromedriver should start; None lets chromedriver find it.
    pub chromium: Option<PathBuf>,
    /// Most sessions (browsers) open at once in this process.
    pub max_sessions: usize,
    /// A session is closed and replaced after this many pages (browsers grow with use).
    pub pages_per_session: u32,
    /// Watchdog on one page: load, wait for the selector and read the source.
    pub page_timeout: Duration,
    /// An unused session is closed after this long (and gives back its global slot).
    pub idle_timeout: Duration,
    /// Parent of the per-session profile folders.
    pub profile_root: PathBuf,
    pub user_agent: String,
}

impl BrowserSettings {
    pub fn new(user_agent: &str) -> Self {
        Self {
            webdriver_url: None,
            chromedriver: PathBuf::from("chromedriver"),
            chromium: ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists()),
            max_sessions: 2,
            pages_per_session: 50,
            page_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            profile_root: std::env::temp_dir(),
            user_agent: user_agent.to_owned(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrowserError {
    #[error("chromedriver: {0}")]
    Driver(String),
    #[error("cannot open a browser session: {0}")]
    Session(String),
}
