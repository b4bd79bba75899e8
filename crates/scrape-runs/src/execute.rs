//! Executing a run: scrape through the shared library, store each page's postings as it
//! arrives, and write the run's terminal status. Called by the worker and by the API's sync mode.
use std::future::Future;
use std::time::Duration;

use queue_core::store::{self, RunReport, RunStatus};

use crate::postings::PostingOutcome;
use crate::sites::SiteSchedule;
use queue_core::{Services, StoreError, Task};
use rand::Rng;
use tracing::{error, info};
use trawl_scrape::{Fetchers, Politeness, ScrapeReport, ScrapeRequest, ScrapeStatus, SiteSpec};

/// At most this many page errors are kept in full on the run; `errors_count` counts them all.
const MAX_ERROR_DETAILS: usize = 50;

#[derive(Clone)]
pub struct Executor {
    pub services: Services,
    pub fetchers: Fetchers,
    /// First retry delay of a failing page (doubles per retry).
    pub retry_base_delay: Duration,
    /// First delay before a transiently failed run is tried again (doubles per retry, with
    /// jitter). None: runs are never retried (the API's sync mode has no queue to wait in).
    pub run_retry_base: Option<Duration>,
}

/// How one attempt of a run ended.
#[derive(Debug)]
pub enum Ended {
    /// The run's terminal status is written.
    Finished(RunReport),
    /// The attempt failed transiently: the run is `queued` again for its `retry`-th retry, due
    /// after `delay`; the caller parks the task in the delayed set.
    Retry {
        report: RunReport,
        retry: i32,
        delay: Duration,
    },
    /// A newer attempt of the run started elsewhere (this worker's task was recovered while it
    /// still ran): nothing was written, the newer attempt owns the run.
    Superseded(RunReport),
}

impl Ended {
    pub fn report(&self) -> &RunReport {
        match self {
            Ended::Finished(report) | Ended::Superseded(report) => report,
            Ended::Retry { report, .. } => report,
        }
    }
}

/// Longest wait between two tries of a result write while PostgreSQL is unreachable.
const MAX_WRITE_BACKOFF: Duration = Duration::from_secs(5);
/// Longest wait before a run's retry.
const MAX_RUN_RETRY_DELAY: Duration = Duration::from_secs(3600);

impl Executor {
    /// Runs attempt `attempt` of a `running` run to its end and records how it ended. Result
    /// writes are compare-and-set on (run_id, attempt) and retried while PostgreSQL is down, so
    /// a result is never dropped and a stale attempt never overwrites a newer one.
    pub async fn execute(
        &self,
        site: &SiteSchedule,
        spec: &SiteSpec,
        task: &Task,
        run_id: &str,
        attempt: i32,
        time_limit: Duration,
    ) -> Result<Ended, StoreError> {
        let defaults = spec.defaults();
        let request = ScrapeRequest {
            search_term: task.search_term.clone().or(defaults.search_term),
            location: task.location.clone().or(defaults.location),
            results_wanted: task
                .results_wanted
                .or(defaults.results_wanted)
                .unwrap_or(queue_core::DEFAULT_RESULTS_WANTED),
        };
        let politeness = Politeness {
            min_pause: seconds(site.min_pause_seconds),
            max_pause: seconds(site.max_pause_seconds),
            max_retries: site.max_retries.max(0) as u32,
            retry_base_delay: self.retry_base_delay,
        };
        let (sink, mut pages) = tokio::sync::mpsc::channel(4);
        let mut scraped = ScrapeReport::default();
        let mut stored = Stored::default();
        let scraping = async {
            let scrape = trawl_scrape::scrape(
                &site.site_name,
                spec,
                &request,
                &politeness,
                &self.fetchers,
                sink,
                &mut scraped,
            );
            // Dropping the scrape stops it at its next await: the next page, or mid-request.
            tokio::select! {
                done = tokio::time::timeout(time_limit, scrape) => {
                    if done.is_err() { Stop::TimedOut(time_limit) } else { Stop::Finished }
                }
                () = self.cancel_requested(run_id) => Stop::Cancelled,
            }
        };
        let storing = async {
            while let Some(page) = pages.recv().await {
                match crate::postings::upsert_page(&self.services.db, run_id, &page).await {
                    Ok(outcomes) => stored.add(&outcomes),
                    Err(err) => {
                        // Dropping the receiver stops the scrape: there is no point fetching
                        // pages we cannot store.
                        stored.error = Some(err);
                        break;
                    }
                }
            }
        };
        let (stop, ()) = tokio::join!(scraping, storing);
        // Worth another try later: pages that may pass (5xx, 429, network, browser), a time-out,
        // or a database that went away. Never a cancel, a 404 or an unreadable page.
        let transient = match stop {
            Stop::Cancelled => false,
            Stop::TimedOut(_) => true,
            Stop::Finished => scraped.failed_transiently() || stored.error.is_some(),
        };
        let report = build_report(&scraped, &stored, stop);
        self.end_attempt(site, run_id, attempt, report, transient)
            .await
    }

    /// Writes how the attempt ended: a retry when it failed transiently and the site allows
    /// more, else the terminal status.
    pub async fn end_attempt(
        &self,
        site: &SiteSchedule,
        run_id: &str,
        attempt: i32,
        report: RunReport,
        transient: bool,
    ) -> Result<Ended, StoreError> {
        if let (true, RunStatus::Failed, Some(base)) =
            (transient, report.status, self.run_retry_base)
        {
            let retried = self
                .persist("retry", || {
                    store::retry_run(
                        &self.services.db,
                        run_id,
                        attempt,
                        site.max_retries,
                        |n| retry_delay(base, n, &mut rand::rng()),
                        &report,
                    )
                })
                .await?;
            if let Some((retry, delay)) = retried {
                return Ok(Ended::Retry {
                    report,
                    retry,
                    delay,
                });
            }
        }
        let finished = self
            .persist("result", || {
                store::finish_run(&self.services.db, run_id, attempt, &report)
            })
            .await?;
        Ok(if finished {
            Ended::Finished(report)
        } else {
            Ended::Superseded(report)
        })
    }

    /// Runs a result write until it lands. While PostgreSQL is unreachable it tries again with
    /// capped backoff, logging once per outage; the task stays in flight meanwhile. Any other
    /// error is returned (and the task stays in flight for recovery to judge).
    async fn persist<T, F, Fut>(&self, what: &str, mut write: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let mut backoff = Duration::from_millis(100);
        let mut failing = false;
        loop {
            match write().await {
                Ok(value) => {
                    if failing {
                        info!(write = what, "database is back; result stored");
                    }
                    return Ok(value);
                }
                Err(err) if err.is_unavailable() => {
                    if !std::mem::replace(&mut failing, true) {
                        error!(
                            write = what,
                            error = format!("{err:#}"),
                            "cannot store the run's result; keeping the task and retrying"
                        );
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_WRITE_BACKOFF);
                }
                Err(err) => return Err(err),
            }
        }
    }
}

/// The delay before retry `n` (1-based): `base * 2^(n-1)`, capped at an hour, times a random
/// factor in [0.5, 1.5) so runs that failed together do not all come back together.
pub fn retry_delay(base: Duration, n: i32, rng: &mut impl Rng) -> Duration {
    let doubling = 2u32.saturating_pow(n.clamp(1, 31) as u32 - 1);
    let delay = base.saturating_mul(doubling).min(MAX_RUN_RETRY_DELAY);
    delay.mul_f64(rng.random_range(0.5..1.5))
}

impl Executor {
    /// Resolves once someone asked to cancel the run (checked every `CANCEL_POLL`).
    async fn cancel_requested(&self, run_id: &str) {
        loop {
            tokio::time::sleep(CANCEL_POLL).await;
            if matches!(
                self.services.queue.is_cancel_requested(run_id).await,
                Ok(true)
            ) {
                return;
            }
        }
    }
}

/// How often a running scrape checks whether it was cancelled: one cheap Redis read, and a
/// cancel takes effect within this much time.
const CANCEL_POLL: Duration = Duration::from_millis(500);

/// What the storing side did.
#[derive(Default)]
struct Stored {
    inserted: u32,
    updated: u32,
    unchanged: u32,
    error: Option<StoreError>,
}

impl Stored {
    fn add(&mut self, outcomes: &[PostingOutcome]) {
        for outcome in outcomes {
            match outcome {
                PostingOutcome::Inserted => self.inserted += 1,
                PostingOutcome::Updated => self.updated += 1,
                PostingOutcome::Unchanged => self.unchanged += 1,
            }
        }
    }
}

/// How the scrape ended.
enum Stop {
    Finished,
    TimedOut(Duration),
    Cancelled,
}

fn build_report(scraped: &ScrapeReport, stored: &Stored, stop: Stop) -> RunReport {
    let mut status = match scraped.status() {
        ScrapeStatus::Succeeded => RunStatus::Succeeded,
        ScrapeStatus::Partial => RunStatus::Partial,
        ScrapeStatus::Failed => RunStatus::Failed,
    };
    let mut message = format!(
        "{} of {} pages fetched; {} postings ({} new, {} updated, {} unchanged)",
        scraped.completed_pages,
        scraped.requested_pages,
        stored.inserted + stored.updated + stored.unchanged,
        stored.inserted,
        stored.updated,
        stored.unchanged,
    );
    if scraped.invalid_postings > 0 {
        message.push_str(&format!(
            "; {} postings refused by validation",
            scraped.invalid_postings
        ));
    }
    if let Some(first) = scraped.page_errors.first() {
        message.push_str(&format!(
            "; {} pages failed, first: {}",
            scraped.page_errors.len(),
            first.error
        ));
    }
    if !scraped.missing_details.is_empty() {
        message.push_str(&format!(
            "; {} detail pages failed: those postings were stored from the listing if new, \
             left as stored if known",
            scraped.missing_details.len()
        ));
    }
    for note in &scraped.notes {
        message.push_str(&format!("; {note}"));
    }
    if scraped.empty_listing
        && let Some(first) = scraped.page_errors.first()
    {
        // The reason leads: nothing was found where postings were expected.
        message = format!("empty: {}; {message}", first.error);
    }
    match stop {
        Stop::Finished => {}
        Stop::TimedOut(limit) => {
            status = RunStatus::Failed;
            message = format!(
                "timed out after {} s (JOB_TIMEOUT); {message}",
                limit.as_secs()
            );
        }
        Stop::Cancelled => {
            status = RunStatus::Failed;
            message = format!("cancelled by an operator; {message}");
        }
    }
    if let Some(err) = &stored.error {
        status = RunStatus::Failed;
        message = format!("could not store postings: {err}; {message}");
    }
    let pages: Vec<_> = scraped.page_errors.iter().take(MAX_ERROR_DETAILS).collect();
    RunReport {
        status,
        requested_pages: scraped.requested_pages,
        completed_pages: scraped.completed_pages,
        errors_count: scraped.page_errors.len() as u32,
        jobs_invalid: scraped.invalid_postings,
        message,
        error_detail: serde_json::json!({"pages": pages, "invalid_postings": scraped.invalid_details,
            "details_missing": scraped.missing_details.iter().take(MAX_ERROR_DETAILS).collect::<Vec<_>>(),
            "empty_listing": scraped.empty_listing, "notes": scraped.notes}),
    }
}

fn seconds(value: i32) -> Duration {
    Duration::from_secs(value.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_with_jitter_and_a_cap() {
        let base = Duration::from_secs(10);
        let mut rng = rand::rng();
        for n in 1..=4 {
            let expected = base * 2u32.pow(n as u32 - 1);
            for _ in 0..50 {
                let delay = retry_delay(base, n, &mut rng);
                assert!(
                    delay >= expected / 2 && delay < expected.mul_f64(1.5),
                    "retry {n}: {delay:?}"
                );
            }
        }
        assert!(retry_delay(base, 30, &mut rng) < MAX_RUN_RETRY_DELAY.mul_f64(1.5));
        let spread: std::collections::HashSet<_> =
            (0..20).map(|_| retry_delay(base, 1, &mut rng)).collect();
        assert!(spread.len() > 1, "jitter varies the delay");
    }
}
