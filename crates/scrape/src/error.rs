use std::time::Duration;

/// An error kept whole as the source of another, so its whole chain reaches the run's record.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why fetching or reading one page failed. Record it with `error_chain`: the `Display` of a
/// wrapping variant names what failed, its sources say why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScrapeError {
    #[error("HTTP {status} from {url}")]
    Status {
        status: u16,
        url: String,
        retry_after: Option<Duration>,
    },
    /// The request itself failed (network, time-out, the browser on a page); `source` says why.
    #[error("request to {url} failed")]
    Transport {
        url: String,
        timed_out: bool,
        retry_after: Option<Duration>,
        #[source]
        source: BoxError,
    },
    /// No browser session could be had (chromedriver, the global slots, a profile folder).
    #[error("no browser session")]
    Browser {
        #[source]
        source: BoxError,
    },
    #[error("could not read {url}: {reason}")]
    Parse { url: String, reason: String },
    #[error("cannot fetch {url}: {reason}")]
    Unsupported { url: String, reason: String },
    #[error("{url} is disallowed by robots.txt")]
    Disallowed { url: String },
    /// RFC 9309: an unreachable robots.txt (5xx, network) disallows the site, but only until
    /// it can be read: the page fails transiently, and the run is retried.
    #[error("{url} not fetched: its robots.txt is unreachable ({reason})")]
    RobotsUnreachable { url: String, reason: String },
}

impl ScrapeError {
    /// Rate limits, server errors, time-outs, connection and browser failures may pass; anything
    /// else (a 404, a page we cannot read, robots.txt) will fail the same way again.
    pub fn is_retryable(&self) -> bool {
        match self {
            ScrapeError::Status { status, .. } => {
                *status == 429 || *status == 408 || *status >= 500
            }
            ScrapeError::Transport { .. }
            | ScrapeError::Browser { .. }
            | ScrapeError::RobotsUnreachable { .. } => true,
            ScrapeError::Parse { .. }
            | ScrapeError::Unsupported { .. }
            | ScrapeError::Disallowed { .. } => false,
        }
    }

    /// The outcome label of `trawl_pages_fetched_total` for this failure.
    pub fn outcome(&self) -> &'static str {
        match self {
            ScrapeError::Status { status: 429, .. } => "rate_limited",
            ScrapeError::Status { status, .. } if *status >= 500 => "server_error",
            ScrapeError::Status { .. } => "client_error",
            ScrapeError::Transport {
                timed_out: true, ..
            } => "timeout",
            ScrapeError::Transport { .. } => "network_error",
            ScrapeError::Browser { .. } => "browser_error",
            ScrapeError::Parse { .. } => "unreadable",
            ScrapeError::Unsupported { .. } => "unsupported",
            ScrapeError::Disallowed { .. } => "disallowed",
            ScrapeError::RobotsUnreachable { .. } => "robots_unreachable",
        }
    }

    /// How long the server asked us to wait before trying again, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ScrapeError::Status { retry_after, .. }
            | ScrapeError::Transport { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A site definition that cannot be used, with the field at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SiteSpecError {
    #[error("site definition is not valid: {0}")]
    Shape(String),
    #[error("site definition field `{field}`: {reason}")]
    Field { field: &'static str, reason: String },
}
