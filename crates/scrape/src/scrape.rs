//! The one scraping function both the worker and the API's sync mode call.
//!
//! It walks a site's listing pages and detail pages with randomized pauses between requests,
//! retries retryable failures with exponential backoff and jitter, normalizes each posting and
//! hands every finished page's postings to `sink` as soon as it is done, so a run stopped by its
//! time limit keeps what it already stored.
use std::time::Duration;

use rand::Rng;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::apis::{self};
use crate::fetch::error_chain;
use crate::intake::{Intake, Normalize};
use crate::posting::{Posting, Provenance};
use crate::robots::RobotsCache;
use crate::site::http_url;
use crate::{Fetchers, SiteSpec};

mod session;
mod sources;

use session::Session;
use sources::{scrape_adzuna, scrape_board, scrape_definition, scrape_demo_board, scrape_lever};

/// Largest share of failed pages a run may have and still count as `partial` (seed 003).
pub const PARTIAL_ERROR_RATIO: f64 = 0.30;
/// Longest wait before a retry, Retry-After included.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// At most this many refused postings are itemized on a run; the count covers all of them.
const MAX_INVALID_DETAILS: usize = 20;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScrapeRequest {
    pub search_term: Option<String>,
    pub location: Option<String>,
    pub results_wanted: u32,
}

/// How gently to treat a site (the site's `site_schedules` columns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Politeness {
    pub min_pause: Duration,
    pub max_pause: Duration,
    pub max_retries: u32,
    /// First retry waits about this long; each further retry doubles it.
    pub retry_base_delay: Duration,
}

/// A page that failed for good, after its retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PageError {
    pub url: String,
    pub error: String,
    pub attempts: u32,
    /// Whether the failure may pass on a later try (network, 429, 5xx, time-outs, browser).
    pub transient: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScrapeStatus {
    Succeeded,
    Partial,
    Failed,
}

/// What a scrape did, filled in as it goes (so it is still there if the scrape is stopped).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScrapeReport {
    pub requested_pages: u32,
    pub completed_pages: u32,
    pub page_errors: Vec<PageError>,
    pub postings_found: u32,
    pub invalid_postings: u32,
    pub invalid_details: Vec<String>,
    /// Detail pages that failed: their postings were stored from the listing alone (new ones)
    /// or left as stored (known ones).
    pub missing_details: Vec<String>,
    /// Page 1 of a listing matched no item: the run failed for that reason (see
    /// `DefinitionSpec::empty_listing_hint`).
    pub empty_listing: bool,
    /// Things the run's record must say, e.g. that robots.txt was ignored and why.
    pub notes: Vec<String>,
}

impl ScrapeReport {
    /// `succeeded` with no failed page, `partial` when at most 30% failed and something
    /// worked, else `failed`.
    pub fn status(&self) -> ScrapeStatus {
        let errors = self.page_errors.len() as f64;
        if errors == 0.0 && self.completed_pages > 0 {
            ScrapeStatus::Succeeded
        } else if self.completed_pages > 0
            && errors / f64::from(self.requested_pages.max(1)) <= PARTIAL_ERROR_RATIO
        {
            ScrapeStatus::Partial
        } else {
            ScrapeStatus::Failed
        }
    }

    /// A failed scrape whose every page error may pass on a later try: worth running again.
    pub fn failed_transiently(&self) -> bool {
        self.status() == ScrapeStatus::Failed
            && !self.page_errors.is_empty()
            && self.page_errors.iter().all(|e| e.transient)
    }

    fn invalid(&mut self, reason: String) {
        self.invalid_postings += 1;
        if self.invalid_details.len() < MAX_INVALID_DETAILS {
            self.invalid_details.push(reason);
        }
    }
}

/// Scrapes one site. Errors are recorded in `report`, never returned: a failing site yields a
/// `failed` or `partial` report with each page's error, not a gap.
pub async fn scrape(
    site_name: &str,
    spec: &SiteSpec,
    request: &ScrapeRequest,
    politeness: &Politeness,
    fetcher: &Fetchers,
    sink: mpsc::Sender<Vec<Posting>>,
    report: &mut ScrapeReport,
) {
    scrape_into(
        site_name, spec, request, politeness, fetcher, &Normalize, sink, report,
    )
    .await
}

/// [`scrape`] with another intake: the pipeline's collect stage keeps postings raw.
#[allow(clippy::too_many_arguments)] // scrape's arguments and the intake
pub async fn scrape_into<I: Intake>(
    site_name: &str,
    spec: &SiteSpec,
    request: &ScrapeRequest,
    politeness: &Politeness,
    fetcher: &Fetchers,
    intake: &I,
    sink: mpsc::Sender<Vec<I::Item>>,
    report: &mut ScrapeReport,
) {
    let provenance = Provenance {
        site: site_name,
        source: spec.kind().as_str(),
        search_query: request.search_term.as_deref(),
    };
    let robots = match spec.robots_override() {
        Some(reason) => {
            report.notes.push(format!("robots.txt ignored: {reason}"));
            None
        }
        None => Some(RobotsCache::default()),
    };
    // Secrets that travel in URLs never reach a run's record or the logs.
    let secrets = fetcher
        .adzuna
        .iter()
        .flat_map(|c| [c.app_key.clone(), c.app_id.clone()])
        .collect();
    let mut session = Session {
        intake,
        politeness,
        fetcher,
        report,
        fetched_any: false,
        robots,
        secrets,
    };
    match spec {
        SiteSpec::DemoBoard(board) => match http_url("base_url", &board.base_url) {
            Ok(base) => {
                scrape_demo_board(
                    &mut session,
                    &base,
                    board.follow_details,
                    request,
                    &provenance,
                    &sink,
                )
                .await
            }
            Err(err) => session.report.page_errors.push(PageError {
                url: board.base_url.clone(),
                error: error_chain(&err),
                attempts: 0,
                transient: false,
            }),
        },
        SiteSpec::Definition(definition) => {
            scrape_definition(&mut session, definition, request, &provenance, &sink).await
        }
        SiteSpec::Greenhouse(ats) => {
            let url = ats.api(apis::GREENHOUSE_API).ok().and_then(|base| {
                base.join(&format!("v1/boards/{}/jobs?content=true", ats.board))
                    .ok()
            });
            scrape_board(
                &mut session,
                url,
                |body| apis::greenhouse_postings(ats, body),
                request,
                &provenance,
                &sink,
            )
            .await;
        }
        SiteSpec::Ashby(ats) => {
            let url = ats.api(apis::ASHBY_API).ok().and_then(|base| {
                base.join(&format!(
                    "posting-api/job-board/{}?includeCompensation=true",
                    ats.board
                ))
                .ok()
            });
            scrape_board(
                &mut session,
                url,
                |body| apis::ashby_postings(ats, body),
                request,
                &provenance,
                &sink,
            )
            .await;
        }
        SiteSpec::Lever(ats) => scrape_lever(&mut session, ats, request, &provenance, &sink).await,
        SiteSpec::Adzuna(adzuna) => match &fetcher.adzuna {
            Some(credentials) => {
                scrape_adzuna(
                    &mut session,
                    adzuna,
                    credentials,
                    request,
                    &provenance,
                    &sink,
                )
                .await
            }
            None => session.report.page_errors.push(PageError {
                url: adzuna
                    .base_url
                    .clone()
                    .unwrap_or_else(|| apis::ADZUNA_API.to_owned()),
                error: "Adzuna needs ADZUNA_APP_ID and ADZUNA_APP_KEY in the worker's environment"
                    .into(),
                attempts: 0,
                transient: false,
            }),
        },
    }
}

/// Exponential backoff with full jitter on top: base·2^(attempt-1) plus up to one base more,
/// capped at a minute so a large max_retries cannot stall a run for hours.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let exponential = base.saturating_mul(1u32 << (attempt.saturating_sub(1)).min(16));
    let jitter = if base.is_zero() {
        Duration::ZERO
    } else {
        rand::rng().random_range(Duration::ZERO..=base)
    };
    (exponential + jitter).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let base = Duration::from_millis(100);
        for attempt in 1..=4 {
            let expected = base * (1 << (attempt - 1));
            let delay = backoff(base, attempt);
            assert!(
                delay >= expected && delay <= expected + base,
                "attempt {attempt}: {delay:?}"
            );
        }
        assert_eq!(
            backoff(Duration::from_secs(10), 30),
            Duration::from_secs(60)
        );
    }

    fn report(requested: u32, completed: u32, errors: usize) -> ScrapeReport {
        let error = PageError {
            url: String::new(),
            error: String::new(),
            attempts: 1,
            transient: true,
        };
        ScrapeReport {
            requested_pages: requested,
            completed_pages: completed,
            page_errors: vec![error; errors],
            ..Default::default()
        }
    }

    #[test]
    fn status_follows_the_error_ratio() {
        assert_eq!(report(10, 10, 0).status(), ScrapeStatus::Succeeded);
        assert_eq!(report(10, 7, 3).status(), ScrapeStatus::Partial);
        assert_eq!(report(10, 6, 4).status(), ScrapeStatus::Failed);
        assert_eq!(report(1, 0, 1).status(), ScrapeStatus::Failed);
    }

    #[test]
    fn only_all_transient_failures_are_worth_a_retry() {
        assert!(report(10, 6, 4).failed_transiently());
        assert!(!report(10, 7, 3).failed_transiently(), "partial is kept");
        let mut mixed = report(2, 0, 2);
        mixed.page_errors[1].transient = false;
        assert!(!mixed.failed_transiently(), "a 404 will fail again");
    }
}
