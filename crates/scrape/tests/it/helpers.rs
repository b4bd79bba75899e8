//! Running one scrape and collecting what it produced.
use std::time::Duration;

use tokio::sync::mpsc;
use trawl_scrape::{Fetchers, Politeness, Posting, ScrapeReport, ScrapeRequest, SiteSpec, scrape};

/// Scrapes `spec` with no pauses and no retries; returns the report and every posting sent.
pub async fn run_scrape(
    spec: &SiteSpec,
    fetchers: &Fetchers,
    wanted: u32,
    term: Option<&str>,
) -> (ScrapeReport, Vec<Posting>) {
    let politeness = Politeness {
        min_pause: Duration::ZERO,
        max_pause: Duration::ZERO,
        max_retries: 0,
        retry_base_delay: Duration::from_millis(5),
    };
    let request = ScrapeRequest {
        search_term: term.map(str::to_owned),
        location: None,
        results_wanted: wanted,
    };
    let (sink, mut pages) = mpsc::channel(1024);
    let mut report = ScrapeReport::default();
    scrape(
        "test-site",
        spec,
        &request,
        &politeness,
        fetchers,
        sink,
        &mut report,
    )
    .await;
    let mut postings = Vec::new();
    while let Ok(page) = pages.try_recv() {
        postings.extend(page);
    }
    (report, postings)
}
