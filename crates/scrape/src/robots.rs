//! robots.txt, obeyed by default (RFC 9309): fetched once per origin per scrape; a missing file
//! (4xx) allows everything, an unreachable one (5xx, network) disallows everything for this
//! scrape, whose pages then fail transiently (the run is retried, not failed for good).
use std::collections::HashMap;

use texting_robots::Robot;
use url::Url;

use crate::{PageFetcher, PageRequest, ScrapeError};

/// The product token robots.txt groups are matched against.
pub const ROBOTS_AGENT: &str = "trawl";

enum Rules {
    AllowAll,
    /// robots.txt could not be read: why.
    Unreachable(String),
    Parsed(Box<Robot>),
}

/// Per-scrape cache of each origin's rules.
#[derive(Default)]
pub(crate) struct RobotsCache {
    origins: HashMap<String, Rules>,
}

impl RobotsCache {
    /// Whether `url` may be fetched; an error when robots.txt could not be read.
    pub(crate) async fn allows<F: PageFetcher>(
        &mut self,
        fetcher: &F,
        url: &Url,
    ) -> Result<bool, ScrapeError> {
        let origin = url.origin().ascii_serialization();
        if !self.origins.contains_key(&origin) {
            let rules = fetch_rules(fetcher, url).await;
            self.origins.insert(origin.clone(), rules);
        }
        match &self.origins[&origin] {
            Rules::AllowAll => Ok(true),
            Rules::Unreachable(reason) => Err(ScrapeError::RobotsUnreachable {
                url: url.to_string(),
                reason: reason.clone(),
            }),
            Rules::Parsed(robot) => Ok(robot.allowed(url.as_str())),
        }
    }
}

async fn fetch_rules<F: PageFetcher>(fetcher: &F, url: &Url) -> Rules {
    let Ok(robots_url) = url.join("/robots.txt") else {
        return Rules::AllowAll;
    };
    match fetcher.fetch(&PageRequest::http(robots_url)).await {
        Ok(text) => match Robot::new(ROBOTS_AGENT, text.as_bytes()) {
            Ok(robot) => Rules::Parsed(Box::new(robot)),
            // Unparseable rules say nothing we can follow: treat like a missing file.
            Err(_) => Rules::AllowAll,
        },
        Err(ScrapeError::Status { status, .. }) if (400..500).contains(&status) => Rules::AllowAll,
        Err(err) => {
            tracing::warn!(url = %url, error = %err, "robots.txt unreachable; the site is disallowed until it can be read");
            Rules::Unreachable(crate::error_chain(&err))
        }
    }
}
