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
use url::Url;

use crate::apis::{self, AdzunaCredentials, AdzunaSpec, AtsSpec};
use crate::definition::{self, DefinitionSpec, Pagination};
use crate::demo_board::{self, PAGE_SIZE};
use crate::fetch::{PageRequest, error_chain};
use crate::posting::{Posting, Provenance, RawPosting};
use crate::robots::RobotsCache;
use crate::site::http_url;
use crate::{Fetchers, PageFetcher, ScrapeError, SiteSpec};

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

async fn scrape_demo_board<F: PageFetcher>(
    session: &mut Session<'_, F>,
    base: &Url,
    follow_details: bool,
    request: &ScrapeRequest,
    provenance: &Provenance<'_>,
    sink: &mpsc::Sender<Vec<Posting>>,
) {
    let wanted = request.results_wanted.max(1);
    let mut remaining = wanted as usize;
    for page in 1..=wanted.div_ceil(PAGE_SIZE) {
        let url = demo_board::listing_url(
            base,
            request.search_term.as_deref(),
            request.location.as_deref(),
            page,
        );
        let Some(listing) = session
            .fetch_and(&PageRequest::http(url.clone()), |html| {
                demo_board::parse_listing(html, &url)
            })
            .await
        else {
            // A failed page is recorded; the next page's URL does not depend on it.
            continue;
        };
        let mut batch = Vec::new();
        for mut item in listing.items.into_iter().take(remaining) {
            if follow_details
                && let Some(detail) = item.url.as_deref().and_then(|u| Url::parse(u).ok())
            {
                // A failed detail page is recorded and the posting is kept with what the
                // listing said, marked partial: the next run fills in the rest.
                let read = session
                    .fetch_and(&PageRequest::http(detail.clone()), |html| {
                        demo_board::apply_detail(&mut item, html, &detail)
                    })
                    .await;
                if read.is_none() {
                    session.accept_partial(item, &detail, provenance, &mut batch);
                    continue;
                }
            }
            session.accept(item, provenance, &mut batch);
        }
        remaining -= batch.len().min(remaining);
        if !batch.is_empty() && sink.send(batch).await.is_err() {
            return; // Nobody is storing the results any more: stop scraping.
        }
        if remaining == 0 || !listing.has_next {
            break;
        }
    }
}

async fn scrape_definition<F: PageFetcher>(
    session: &mut Session<'_, F>,
    definition: &DefinitionSpec,
    request: &ScrapeRequest,
    provenance: &Provenance<'_>,
    sink: &mpsc::Sender<Vec<Posting>>,
) {
    let (term, place) = (request.search_term.as_deref(), request.location.as_deref());
    let page_request = |url: Url| PageRequest {
        url,
        mode: definition.fetch,
        wait_for: definition.wait_for.clone(),
    };
    let mut remaining = request.results_wanted.max(1) as usize;
    let mut next = Url::parse(&definition.render_url(term, place, 1)).ok();
    for page in 1..=definition.pagination.max_pages() {
        let Some(url) = next.take() else { break };
        let parsed = session
            .fetch_and(&page_request(url.clone()), |html| {
                Ok(definition.parse_listing(html, &url))
            })
            .await;
        let Some((items, next_link)) = parsed else {
            if matches!(definition.pagination, Pagination::NextLink { .. }) {
                break; // The next link was on the page that failed.
            }
            next = Url::parse(&definition.render_url(term, place, page + 1)).ok();
            continue;
        };
        if items.is_empty() {
            if page == 1 {
                // Nothing where the definition expects postings: a layout change or a page
                // that needs JavaScript, never a silent success with nothing in it.
                session.report.page_errors.push(PageError {
                    url: url.to_string(),
                    error: definition.empty_listing_hint(),
                    attempts: 1,
                    transient: false,
                });
                session.report.empty_listing = true;
            }
            break;
        }
        let mut batch = Vec::new();
        for mut item in items.into_iter().take(remaining) {
            if definition.follow_details
                && let Some(detail) = item.url.as_deref().and_then(|u| Url::parse(u).ok())
            {
                // `wait_for` describes listing pages; a detail page counts as loaded when loaded.
                let request = PageRequest {
                    url: detail.clone(),
                    mode: definition.fetch,
                    wait_for: None,
                };
                let read = session
                    .fetch_and(&request, |html| definition::apply_detail(&mut item, html))
                    .await;
                if read.is_none() {
                    session.accept_partial(item, &detail, provenance, &mut batch);
                    continue;
                }
            }
            session.accept(item, provenance, &mut batch);
        }
        remaining -= batch.len().min(remaining);
        if !batch.is_empty() && sink.send(batch).await.is_err() {
            return;
        }
        if remaining == 0 {
            break;
        }
        next = match &definition.pagination {
            Pagination::NextLink { .. } => next_link,
            Pagination::PageParam { .. } => {
                Url::parse(&definition.render_url(term, place, page + 1)).ok()
            }
        };
    }
}

/// An ATS board answered in one response (Greenhouse, Ashby).
async fn scrape_board<F: PageFetcher>(
    session: &mut Session<'_, F>,
    url: Option<Url>,
    read: impl FnOnce(&serde_json::Value) -> Vec<RawPosting>,
    request: &ScrapeRequest,
    provenance: &Provenance<'_>,
    sink: &mpsc::Sender<Vec<Posting>>,
) {
    let Some(url) = url else { return };
    let Some(body) = session
        .fetch_and(&PageRequest::http(url.clone()), |text| {
            json_body(text, &url)
        })
        .await
    else {
        return;
    };
    let postings = read(&body);
    session
        .accept_all(
            postings,
            request,
            provenance,
            sink,
            request.results_wanted as usize,
        )
        .await;
}

async fn scrape_lever<F: PageFetcher>(
    session: &mut Session<'_, F>,
    ats: &AtsSpec,
    request: &ScrapeRequest,
    provenance: &Provenance<'_>,
    sink: &mpsc::Sender<Vec<Posting>>,
) {
    let Ok(base) = ats.api(apis::LEVER_API) else {
        return;
    };
    let mut remaining = request.results_wanted.max(1) as usize;
    let mut skip = 0;
    while remaining > 0 {
        let path = format!(
            "v0/postings/{}?mode=json&skip={skip}&limit={}",
            ats.board,
            apis::LEVER_PAGE_SIZE
        );
        let Ok(url) = base.join(&path) else { return };
        let Some(body) = session
            .fetch_and(&PageRequest::http(url.clone()), |text| {
                json_body(text, &url)
            })
            .await
        else {
            return; // Lever pages by offset: without this page we cannot know the next.
        };
        let postings = apis::lever_postings(ats, &body);
        let page_len = postings.len();
        remaining -= session
            .accept_all(postings, request, provenance, sink, remaining)
            .await
            .min(remaining);
        if page_len < apis::LEVER_PAGE_SIZE as usize {
            return;
        }
        skip += page_len;
    }
}

async fn scrape_adzuna<F: PageFetcher>(
    session: &mut Session<'_, F>,
    spec: &AdzunaSpec,
    credentials: &AdzunaCredentials,
    request: &ScrapeRequest,
    provenance: &Provenance<'_>,
    sink: &mpsc::Sender<Vec<Posting>>,
) {
    let cap = request.results_wanted.clamp(1, apis::ADZUNA_MAX_RESULTS);
    let mut remaining = cap as usize;
    for page in 1..=cap.div_ceil(apis::ADZUNA_PAGE_SIZE) {
        let url = apis::adzuna_url(
            spec,
            credentials,
            request.search_term.as_deref(),
            request.location.as_deref(),
            page,
        );
        let Some(body) = session
            .fetch_and(&PageRequest::http(url.clone()), |text| {
                json_body(text, &url)
            })
            .await
        else {
            continue;
        };
        let (postings, count) = apis::adzuna_postings(&body);
        let page_len = postings.len();
        let mut batch = Vec::new();
        for item in postings.into_iter().take(remaining) {
            session.accept(item, provenance, &mut batch);
        }
        remaining -= batch.len().min(remaining);
        if !batch.is_empty() && sink.send(batch).await.is_err() {
            return;
        }
        let seen = u64::from(page) * u64::from(apis::ADZUNA_PAGE_SIZE);
        if remaining == 0 || page_len < apis::ADZUNA_PAGE_SIZE as usize || seen >= count {
            return;
        }
    }
}

fn json_body(text: &str, url: &Url) -> Result<serde_json::Value, ScrapeError> {
    serde_json::from_str(text).map_err(|err| ScrapeError::Parse {
        url: url.to_string(),
        reason: format!("not JSON: {err}"),
    })
}

/// Request bookkeeping for one scrape: pauses, retries and the report.
struct Session<'a, F> {
    politeness: &'a Politeness,
    fetcher: &'a F,
    report: &'a mut ScrapeReport,
    fetched_any: bool,
    /// None when the site's definition overrides robots.txt.
    robots: Option<RobotsCache>,
    /// Replaced by `***` in everything recorded about a page.
    secrets: Vec<String>,
}

impl<F: PageFetcher> Session<'_, F> {
    /// Fetches a page (pausing first, retrying what may pass) and reads it with `read`.
    /// Returns None when the page failed; the failure is on the report.
    async fn fetch_and<T>(
        &mut self,
        request: &PageRequest,
        read: impl FnOnce(&str) -> Result<T, ScrapeError>,
    ) -> Option<T> {
        let url = &request.url;
        self.report.requested_pages += 1;
        let allowed = match &mut self.robots {
            Some(robots) => robots.allows(self.fetcher, url).await,
            None => true,
        };
        let (fetched, attempts) = if allowed {
            self.fetch_with_retries(request).await
        } else {
            (
                Err(ScrapeError::Disallowed {
                    url: url.to_string(),
                }),
                0,
            )
        };
        match fetched.and_then(|html| read(&html)) {
            Ok(value) => {
                self.report.completed_pages += 1;
                Some(value)
            }
            Err(err) => {
                let (url, error) = (self.redact(url.as_str()), self.redact(&error_chain(&err)));
                tracing::warn!(url = %url, attempts, error = %error, "page failed");
                self.report.page_errors.push(PageError {
                    url,
                    error,
                    attempts,
                    transient: err.is_retryable(),
                });
                None
            }
        }
    }

    async fn fetch_with_retries(
        &mut self,
        request: &PageRequest,
    ) -> (Result<String, ScrapeError>, u32) {
        let url = &request.url;
        let mut attempt = 0;
        loop {
            self.pause().await;
            attempt += 1;
            match self.fetcher.fetch(request).await {
                Err(err) if err.is_retryable() && attempt <= self.politeness.max_retries => {
                    // The server's Retry-After wins over our backoff when it asks for longer,
                    // up to the same one-minute cap.
                    let delay = backoff(self.politeness.retry_base_delay, attempt)
                        .max(err.retry_after().unwrap_or_default().min(MAX_BACKOFF));
                    tracing::debug!(url = %self.redact(url.as_str()), attempt, ?delay, error = %self.redact(&error_chain(&err)), "retrying page");
                    tokio::time::sleep(delay).await;
                }
                result => return (result, attempt),
            }
        }
    }

    /// A random pause in [min, max] before every request but the first, so requests do not
    /// arrive in a machine-regular rhythm.
    async fn pause(&mut self) {
        if !std::mem::replace(&mut self.fetched_any, true) {
            return;
        }
        let (min, max) = (self.politeness.min_pause, self.politeness.max_pause);
        let pause = if max > min {
            rand::rng().random_range(min..=max)
        } else {
            min
        };
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }

    /// Checks and sends the postings matching the search, at most `limit`; returns how many
    /// were kept.
    async fn accept_all(
        &mut self,
        postings: Vec<RawPosting>,
        request: &ScrapeRequest,
        provenance: &Provenance<'_>,
        sink: &mpsc::Sender<Vec<Posting>>,
        limit: usize,
    ) -> usize {
        let (term, place) = (request.search_term.as_deref(), request.location.as_deref());
        let mut batch = Vec::new();
        for item in postings
            .into_iter()
            .filter(|p| apis::matches_search(p, term, place))
        {
            if batch.len() >= limit {
                break;
            }
            self.accept(item, provenance, &mut batch);
        }
        let kept = batch.len();
        if kept > 0 {
            let _ = sink.send(batch).await;
        }
        kept
    }

    fn redact(&self, text: &str) -> String {
        self.secrets
            .iter()
            .filter(|secret| !secret.is_empty())
            .fold(text.to_owned(), |text, secret| {
                text.replace(secret.as_str(), "***")
            })
    }

    /// `accept` for a posting whose detail page failed.
    fn accept_partial(
        &mut self,
        item: RawPosting,
        detail: &Url,
        provenance: &Provenance<'_>,
        batch: &mut Vec<Posting>,
    ) {
        self.report
            .missing_details
            .push(self.redact(detail.as_str()));
        let before = batch.len();
        self.accept(item, provenance, batch);
        if let Some(posting) = batch.get_mut(before) {
            posting.details_missing = true;
        }
    }

    fn accept(&mut self, item: RawPosting, provenance: &Provenance<'_>, batch: &mut Vec<Posting>) {
        let label = item.url.clone().unwrap_or_default();
        match item.normalize(provenance) {
            Ok(posting) => {
                self.report.postings_found += 1;
                batch.push(posting);
            }
            Err(err) => self.report.invalid(format!("{label}: {}", err.0)),
        }
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
