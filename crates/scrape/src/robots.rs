//! robots.txt, obeyed by default (RFC 9309): fetched once per origin per scrape; a missing file
//! (4xx) allows everything, an unreachable one (5xx, network) disallows everything for now.
use std::collections::HashMap;

use texting_robots::Robot;
use url::Url;

use crate::{PageFetcher, PageRequest, ScrapeError};

/// The product token robots.txt groups are matched against.
pub const ROBOTS_AGENT: &str = "trawl";

enum Rules {
    AllowAll,
    DisallowAll,
    Parsed(Box<Robot>),
}

/// Per-scrape cache of each origin's rules.
#[derive(Default)]
pub(crate) struct RobotsCache {
    origins: HashMap<String, Rules>,
}

impl RobotsCache {
    pub(crate) async fn allows<F: PageFetcher>(&mut self, fetcher: &F, url: &Url) -> bool {
        let origin = url.origin().ascii_serialization();
        if !self.origins.contains_key(&origin) {
            let rules = fetch_rules(fetcher, url).await;
            self.origins.insert(origin.clone(), rules);
        }
        match &self.origins[&origin] {
            Rules::AllowAll => true,
            Rules::DisallowAll => false,
            Rules::Parsed(robot) => robot.allowed(url.as_str()),
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
            tracing::warn!(url = %url, error = %err, "robots.txt unreachable; treating the site as disallowed");
            Rules::DisallowAll
        }
    }
}
