//! A scrape's session with one site: pauses between requests, retries with backoff, robots.txt,
//! secrets kept out of records, and the report filled in as pages come and go.
use rand::Rng;
use tokio::sync::mpsc;
use url::Url;

use super::{MAX_BACKOFF, Politeness, ScrapeReport, ScrapeRequest, backoff};
use crate::apis;
use crate::fetch::{PageRequest, error_chain};
use crate::intake::Intake;
use crate::posting::{Provenance, RawPosting};
use crate::robots::RobotsCache;
use crate::scrape::PageError;
use crate::{PageFetcher, ScrapeError};

pub(super) fn json_body(text: &str, url: &Url) -> Result<serde_json::Value, ScrapeError> {
    serde_json::from_str(text).map_err(|err| ScrapeError::Parse {
        url: url.to_string(),
        reason: format!("not JSON: {err}"),
    })
}

/// Request bookkeeping for one scrape: pauses, retries and the report.
pub(super) struct Session<'a, F, I> {
    /// What becomes of each posting read: normalized (a scrape) or kept raw (a collect).
    pub(super) intake: &'a I,
    pub(super) politeness: &'a Politeness,
    pub(super) fetcher: &'a F,
    pub(super) report: &'a mut ScrapeReport,
    pub(super) fetched_any: bool,
    /// None when the site's definition overrides robots.txt.
    pub(super) robots: Option<RobotsCache>,
    /// Replaced by `***` in everything recorded about a page.
    pub(super) secrets: Vec<String>,
}

impl<F: PageFetcher, I: Intake> Session<'_, F, I> {
    /// Fetches a page (pausing first, retrying what may pass) and reads it with `read`.
    /// Returns None when the page failed; the failure is on the report.
    pub(super) async fn fetch_and<T>(
        &mut self,
        request: &PageRequest,
        read: impl FnOnce(&str) -> Result<T, ScrapeError>,
    ) -> Option<T> {
        let url = &request.url;
        self.report.requested_pages += 1;
        let allowed = match &mut self.robots {
            Some(robots) => robots.allows(self.fetcher, url).await,
            None => Ok(true),
        };
        let (fetched, attempts) = match allowed {
            Ok(true) => self.fetch_with_retries(request).await,
            Ok(false) => (
                Err(ScrapeError::Disallowed {
                    url: url.to_string(),
                }),
                0,
            ),
            Err(unreachable) => (Err(unreachable), 0),
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

    pub(super) async fn fetch_with_retries(
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
    pub(super) async fn pause(&mut self) {
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
    pub(super) async fn accept_all(
        &mut self,
        postings: Vec<RawPosting>,
        request: &ScrapeRequest,
        provenance: &Provenance<'_>,
        sink: &mpsc::Sender<Vec<I::Item>>,
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

    pub(super) fn redact(&self, text: &str) -> String {
        self.secrets
            .iter()
            .filter(|secret| !secret.is_empty())
            .fold(text.to_owned(), |text, secret| {
                text.replace(secret.as_str(), "***")
            })
    }

    /// Reads the posting's detail page into `item` with `read`, then accepts it. A failed
    /// detail page is recorded and the posting kept with what the listing said, marked partial
    /// (it never replaces a stored row): the next run fills in the rest.
    pub(super) async fn accept_with_detail(
        &mut self,
        mut item: RawPosting,
        detail: &PageRequest,
        provenance: &Provenance<'_>,
        batch: &mut Vec<I::Item>,
        read: impl FnOnce(&mut RawPosting, &str) -> Result<(), ScrapeError>,
    ) {
        let fetched = self.fetch_and(detail, |html| read(&mut item, html)).await;
        if fetched.is_some() {
            self.accept(item, provenance, batch);
        } else {
            self.accept_partial(item, &detail.url, provenance, batch);
        }
    }

    /// `accept` for a posting whose detail page failed.
    fn accept_partial(
        &mut self,
        item: RawPosting,
        detail: &Url,
        provenance: &Provenance<'_>,
        batch: &mut Vec<I::Item>,
    ) {
        self.report
            .missing_details
            .push(self.redact(detail.as_str()));
        let before = batch.len();
        self.accept(item, provenance, batch);
        if let Some(item) = batch.get_mut(before) {
            I::details_missing(item);
        }
    }

    pub(super) fn accept(
        &mut self,
        item: RawPosting,
        provenance: &Provenance<'_>,
        batch: &mut Vec<I::Item>,
    ) {
        let label = item.url.clone().unwrap_or_default();
        match self.intake.take(item, provenance) {
            Ok(posting) => {
                self.report.postings_found += 1;
                batch.push(posting);
            }
            Err(err) => self.report.invalid(format!("{label}: {}", err.0)),
        }
    }
}
