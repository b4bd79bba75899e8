//! The fetcher boundary: a source asks for a page and does not care how it arrives. Plain HTTP
//! or a real browser, chosen per site by its definition's fetch mode.
use std::future::Future;
use std::time::Duration;

use telemetry::metric;
use url::Url;

use crate::ScrapeError;
use crate::browser::BrowserPool;
use crate::definition::FetchMode;

/// Identifies trawl to the sites it visits, as polite crawlers do.
pub const DEFAULT_USER_AGENT: &str = concat!(
    "trawl/",
    env!("CARGO_PKG_VERSION"),
    " (job-posting crawler)"
);

/// One page to get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub url: Url,
    pub mode: FetchMode,
    /// Browser mode: the page counts as loaded once this CSS selector matches.
    pub wait_for: Option<String>,
    /// Browser mode: a "load more" button to click until it is gone.
    pub load_more: Option<LoadMore>,
}

/// A "load more" button: clicked, then the page is given time to grow, until the button is
/// gone or hidden or it was clicked `max_clicks` times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadMore {
    pub selector: String,
    pub max_clicks: u32,
}

impl PageRequest {
    pub fn http(url: Url) -> Self {
        Self {
            url,
            mode: FetchMode::Http,
            wait_for: None,
            load_more: None,
        }
    }
}

/// Gets the HTML of one page.
pub trait PageFetcher: Send + Sync {
    fn fetch(
        &self,
        request: &PageRequest,
    ) -> impl Future<Output = Result<String, ScrapeError>> + Send;
}

#[derive(Clone)]
pub struct HttpFetcher {
    client: reqwest::Client,
}

impl HttpFetcher {
    /// `page_timeout` bounds one whole request, connection to last byte.
    pub fn new(user_agent: &str, page_timeout: Duration) -> Result<Self, ScrapeError> {
        let client = reqwest::Client::builder()
            .user_agent(user_agent)
            .timeout(page_timeout)
            .connect_timeout(page_timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|err| ScrapeError::Transport {
                url: "(building the HTTP client)".into(),
                timed_out: false,
                retry_after: None,
                source: Box::new(err),
            })?;
        Ok(Self { client })
    }

    /// The underlying client, for sources that speak JSON APIs.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

impl PageFetcher for HttpFetcher {
    async fn fetch(&self, request: &PageRequest) -> Result<String, ScrapeError> {
        let url = &request.url;
        let response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|err| transport(url, err))?;
        let status = response.status();
        if !status.is_success() {
            return Err(ScrapeError::Status {
                status: status.as_u16(),
                url: url.to_string(),
                retry_after: retry_after(&response),
            });
        }
        response.text().await.map_err(|err| transport(url, err))
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare on APIs and ignored).
pub(crate) fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

pub(crate) fn transport(url: &Url, err: reqwest::Error) -> ScrapeError {
    ScrapeError::Transport {
        url: url.to_string(),
        timed_out: err.is_timeout(),
        retry_after: None,
        source: Box::new(err),
    }
}

/// `err: cause: cause…`: a top-level message rarely says what went wrong; its sources do.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The fetchers a process has: HTTP always, a browser pool when configured.
#[derive(Clone)]
pub struct Fetchers {
    pub http: HttpFetcher,
    pub browser: Option<BrowserPool>,
    /// Needed by Adzuna sites; None: they fail with that reason.
    pub adzuna: Option<crate::apis::AdzunaCredentials>,
    /// In-flight requests per host from this process.
    pub domain_limits: crate::pace::DomainLimits,
    /// Spacing of requests per host across all workers; None: no shared pacing.
    pub pacer: Option<std::sync::Arc<dyn crate::pace::DomainPacer>>,
}

impl Fetchers {
    /// HTTP only, per-domain concurrency 1, no browser, no shared pacing.
    pub fn http(http: HttpFetcher) -> Self {
        Self {
            http,
            browser: None,
            adzuna: None,
            domain_limits: Default::default(),
            pacer: None,
        }
    }
}

impl PageFetcher for Fetchers {
    async fn fetch(&self, request: &PageRequest) -> Result<String, ScrapeError> {
        let host = request.url.host_str().unwrap_or_default().to_owned();
        let _in_flight = self.domain_limits.acquire(&host).await;
        if let Some(pacer) = &self.pacer {
            let asked = std::time::Instant::now();
            pacer.wait_turn(&host).await;
            let waited = asked.elapsed();
            // A turn taken at once costs a Redis round trip, not a wait.
            if waited >= Duration::from_millis(5) {
                metrics::histogram!(metric::PACING_WAIT).record(waited.as_secs_f64());
            }
        }
        let fetched = self.fetch_unpaced(request).await;
        let outcome = fetched.as_ref().map_or_else(ScrapeError::outcome, |_| "ok");
        metrics::counter!(metric::PAGES_FETCHED, "outcome" => outcome).increment(1);
        fetched
    }
}

impl Fetchers {
    async fn fetch_unpaced(&self, request: &PageRequest) -> Result<String, ScrapeError> {
        match (request.mode, &self.browser) {
            (FetchMode::Http, _) => self.http.fetch(request).await,
            (FetchMode::Browser, Some(pool)) => pool.fetch(request).await,
            (FetchMode::Browser, None) => Err(ScrapeError::Unsupported {
                url: request.url.to_string(),
                reason:
                    "this site needs a browser and this process has none (set BROWSER_ENABLED=true)"
                        .into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 8, item 9: a failed request keeps its cause as the error's source, and the
    /// recorded text carries the whole chain (what failed, then why).
    #[tokio::test]
    async fn a_failed_request_keeps_its_cause() {
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        let url = Url::parse("http://127.0.0.1:1/jobs").unwrap();
        let fetcher = HttpFetcher::new("trawl-test", Duration::from_secs(2)).unwrap();
        let err = fetcher.fetch(&PageRequest::http(url)).await.unwrap_err();
        assert!(err.is_retryable());
        assert!(std::error::Error::source(&err).is_some(), "{err:?}");
        let chain = error_chain(&err);
        assert!(
            chain.starts_with("request to http://127.0.0.1:1/jobs failed: "),
            "{chain}"
        );
        assert!(chain.to_lowercase().contains("connect"), "{chain}");
    }
}
