//! The scrape kind's handler: scrape the site through `trawl-scrape`, store each page's
//! postings as it arrives, and report how the attempt went. The lifecycle (`trawl-tasks`)
//! records it; the worker and the API's sync mode both run it that way.
use std::time::Duration;

use queue_core::store::{RunReport, RunStatus};
use queue_core::{Plan, StoreError};
use sqlx::PgPool;
use tracing::warn;
use trawl_scrape::{Fetchers, Politeness, ScrapeReport, ScrapeRequest, ScrapeStatus};
use trawl_tasks::{Handler, HandlerError, RunContext};

use crate::postings::PostingOutcome;
use crate::task::{KIND, QUEUE, ScrapeTask, plan_for};

/// At most this many page errors are kept in full on the run; `errors_count` counts them all.
const MAX_ERROR_DETAILS: usize = 50;

/// Scrapes sites: the handler of the `scrape` kind.
#[derive(Clone)]
pub struct ScrapeHandler {
    pub db: PgPool,
    pub fetchers: Fetchers,
    /// First retry delay of a failing page (doubles per retry).
    pub retry_base_delay: Duration,
}

impl Handler for ScrapeHandler {
    type Payload = ScrapeTask;
    const KIND: &'static str = KIND;
    const QUEUE: &'static str = QUEUE;

    fn check(payload: &ScrapeTask) -> Result<(), String> {
        payload.check()
    }

    /// A hand-written scrape gets its site's defaults, the site's lock and retry budget; an
    /// unknown site or a broken definition refuses the task.
    async fn plan(&self, payload: &mut ScrapeTask) -> Result<Plan, HandlerError> {
        let site = crate::sites::get_site(&self.db, &payload.site_name)
            .await
            .map_err(store_error)?
            .ok_or_else(|| HandlerError::fatal(format!("unknown site: {}", payload.site_name)))?;
        let spec = site.spec().map_err(HandlerError::fatal)?;
        payload.apply_defaults(&spec);
        Ok(plan_for(&site))
    }

    async fn run(&self, ctx: RunContext, task: ScrapeTask) -> Result<RunReport, HandlerError> {
        let db = &ctx.services.db;
        let site = crate::sites::get_site(db, &task.site_name)
            .await
            .map_err(store_error)?
            .ok_or_else(|| HandlerError::fatal(format!("unknown site: {}", task.site_name)))?;
        let spec = site.spec().map_err(HandlerError::fatal)?;
        let defaults = spec.defaults();
        let request = ScrapeRequest {
            search_term: task.search_term.clone().or(defaults.search_term),
            location: task.location.clone().or(defaults.location),
            results_wanted: task
                .results_wanted
                .or(defaults.results_wanted)
                .unwrap_or(crate::task::DEFAULT_RESULTS_WANTED),
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
                &spec,
                &request,
                &politeness,
                &self.fetchers,
                sink,
                &mut scraped,
            );
            // Dropping the scrape stops it at its next await: the next page, or mid-request.
            tokio::select! {
                done = tokio::time::timeout(ctx.time_limit, scrape) => {
                    if done.is_err() { Stop::TimedOut(ctx.time_limit) } else { Stop::Finished }
                }
                () = ctx.cancel.cancelled() => Stop::Cancelled,
            }
        };
        let storing = async {
            while let Some(page) = pages.recv().await {
                match crate::postings::upsert_page(db, &ctx.run_id, &page).await {
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
        let cancelled = matches!(stop, Stop::Cancelled);
        let report = build_report(&scraped, &stored, stop);
        if report.status != RunStatus::Failed {
            return Ok(report);
        }
        let failure = report.message.clone();
        Err(if transient {
            HandlerError::retryable(failure).with_report(report)
        } else if cancelled {
            HandlerError::fatal(failure).with_report(report)
        } else {
            return Ok(report);
        })
    }

    async fn close(&self) {
        if let Some(browser) = &self.fetchers.browser {
            browser.close().await;
        }
    }
}

/// A database error: an outage is worth retrying, anything else is not.
fn store_error(err: StoreError) -> HandlerError {
    if err.is_unavailable() {
        warn!(error = %err, "database unavailable");
        HandlerError::retryable(err)
    } else {
        HandlerError::fatal(err)
    }
}

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
            let label = match outcome {
                PostingOutcome::Inserted => {
                    self.inserted += 1;
                    "inserted"
                }
                PostingOutcome::Updated => {
                    self.updated += 1;
                    "updated"
                }
                PostingOutcome::Unchanged => {
                    self.unchanged += 1;
                    "unchanged"
                }
            };
            metrics::counter!(telemetry::metric::POSTINGS, "outcome" => label).increment(1);
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
        // Copied into scrape_runs' page columns by the kind's trigger.
        result: serde_json::json!({
            "requested_pages": scraped.requested_pages,
            "completed_pages": scraped.completed_pages,
            "errors_count": scraped.page_errors.len(),
            "jobs_invalid": scraped.invalid_postings,
        }),
        message,
        error_detail: serde_json::json!({"pages": pages, "invalid_postings": scraped.invalid_details,
            "details_missing": scraped.missing_details.iter().take(MAX_ERROR_DETAILS).collect::<Vec<_>>(),
            "empty_listing": scraped.empty_listing, "notes": scraped.notes}),
    }
}

fn seconds(value: i32) -> Duration {
    Duration::from_secs(value.max(0) as u64)
}
