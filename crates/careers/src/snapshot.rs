//! The `career_snapshot` kind: reads a company's career page (HTTP or browser, following "next
//! page" links or clicking "load more" up to its cap), extracts the job links, and records the
//! snapshot, its diff and the added links' detail runs in one transaction.
use queue_core::store::{RunReport, RunStatus};
use queue_core::{Plan, Services};
use serde::{Deserialize, Serialize};
use telemetry::metric;
use trawl_scrape::{FetchMode, LoadMore, PageFetcher, PageRequest, ScrapeError};
use trawl_tasks::{Handler, HandlerError, RunContext};
use url::Url;

use crate::companies::{self, Company};
use crate::snapshots;
use crate::{CareerKinds, CareersError, QUEUE, SNAPSHOT_KIND, links};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotTask {
    /// The company's slug.
    pub company: String,
}

/// The `career_snapshot` kind.
#[derive(Clone)]
pub struct Snapshots(pub CareerKinds);

/// A company slug as `companies` CHECKs it; the error names the value.
pub fn check_slug(slug: &str) -> Result<(), String> {
    let ok = !slug.is_empty()
        && slug.len() <= 48
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!("company {slug:?} is not a company slug"))
    }
}

/// A page failure as the lifecycle sees it: a network error or a 5xx is worth another
/// attempt, a 404 is not.
pub(crate) fn page_failed(err: ScrapeError) -> HandlerError {
    let retry = err.is_retryable();
    let err = CareersError::Page(err);
    if retry {
        HandlerError::retryable(err)
    } else {
        HandlerError::fatal(err)
    }
}

/// The request for a company's pages.
pub(crate) fn request(company: &Company, url: Url) -> PageRequest {
    let browser = company.fetch == "browser";
    PageRequest {
        url,
        mode: if browser {
            FetchMode::Browser
        } else {
            FetchMode::Http
        },
        wait_for: company.wait_for.clone().filter(|_| browser),
        load_more: company
            .load_more
            .clone()
            .filter(|_| browser)
            .map(|selector| LoadMore {
                selector,
                max_clicks: company.max_pages.saturating_sub(1) as u32,
            }),
    }
}

impl Snapshots {
    /// Reads every page of the company's career page: its links and how many pages it read.
    async fn read(&self, company: &Company) -> Result<(links::PageLinks, i32), HandlerError> {
        let start = crate::address::check_url(&company.url, self.0.allow_private)
            .await
            .map_err(HandlerError::fatal)?;
        let next_page = company
            .next_page
            .as_deref()
            .and_then(|css| scraper::Selector::parse(css).ok());
        let mut found = links::PageLinks::default();
        let mut seen = vec![start.clone()];
        let mut url = start;
        for page in 1..=company.max_pages {
            let html = self
                .0
                .fetchers
                .fetch(&request(company, url.clone()))
                .await
                .map_err(page_failed)?;
            let on_page = links::extract(&html, &url);
            found.jobs.extend(on_page.jobs);
            found.boards.extend(on_page.boards);
            let Some(selector) = &next_page else {
                return Ok((found, page));
            };
            let next = {
                let document = scraper::Html::parse_document(&html);
                document
                    .select(selector)
                    .find_map(|a| a.value().attr("href"))
                    .and_then(|href| url.join(href).ok())
            };
            match next {
                Some(next) if !seen.contains(&next) => {
                    seen.push(next.clone());
                    url = next;
                }
                _ => return Ok((found, page)),
            }
        }
        Ok((found, company.max_pages))
    }
}

impl Handler for Snapshots {
    type Payload = SnapshotTask;
    const KIND: &'static str = SNAPSHOT_KIND;
    const QUEUE: &'static str = QUEUE;

    fn check(task: &SnapshotTask) -> Result<(), String> {
        check_slug(&task.company)
    }

    async fn plan(&self, task: &mut SnapshotTask) -> Result<Plan, HandlerError> {
        Ok(snapshot_plan(&task.company))
    }

    async fn run(&self, ctx: RunContext, task: SnapshotTask) -> Result<RunReport, HandlerError> {
        let db = &ctx.services.db;
        let company = companies::get(db, &task.company)
            .await
            .map_err(HandlerError::retryable)?
            .ok_or_else(|| HandlerError::fatal(CareersError::UnknownCompany(task.company)))?;
        if !company.enabled {
            return Ok(RunReport {
                status: RunStatus::Succeeded,
                message: format!("{} is disabled: not checked", company.slug),
                error_detail: serde_json::json!({}),
                result: serde_json::json!({"company": company.slug, "skipped": true}),
            });
        }
        let (page, pages) = self.read(&company).await?;
        let recorded = snapshots::record(db, &company, &ctx.run_id, ctx.attempt, &page, pages)
            .await
            .map_err(|e| match e {
                CareersError::Superseded(_) => HandlerError::fatal(e),
                e => HandlerError::retryable(e),
            })?;
        // Boards on ATSs with an API are read by the scrape kind's sources, not scraped here.
        let boards = crate::ats::follow(
            &ctx.services,
            &company,
            &page.boards,
            self.0.ats_base_url.as_ref(),
        )
        .await
        .map_err(HandlerError::retryable)?;
        let queued = recorded.detail_tasks.len();
        // A failed push fails those detail runs with the reason; the snapshot stands.
        if let Err(err) =
            queue_core::enqueue_all_or_fail(&ctx.services, QUEUE, &recorded.detail_tasks).await
        {
            tracing::warn!(error = %err, tasks = queued, "could not enqueue the detail tasks");
        }
        metrics::counter!(metric::CAREER_SNAPSHOTS, "outcome" => if recorded.warning.is_some() { "warning" } else { "ok" })
            .increment(1);
        metrics::counter!(metric::CAREER_LINKS_ADDED).increment(recorded.added as u64);
        let status = if recorded.warning.is_some() {
            RunStatus::Partial
        } else {
            RunStatus::Succeeded
        };
        let message = recorded.warning.clone().unwrap_or_else(|| {
            format!(
                "{}: {} links on {pages} page(s), {} added, {} removed, diff_enqueued={}",
                company.slug,
                recorded.links,
                recorded.added,
                recorded.removed,
                recorded.diff_enqueued
            )
        });
        tracing::info!(company = %company.slug, links = recorded.links, added = recorded.added,
            removed = recorded.removed, diff_enqueued = recorded.diff_enqueued, "career page checked");
        let mut result = serde_json::to_value(&recorded).expect("serializes");
        result["company"] = company.slug.clone().into();
        result["pages"] = pages.into();
        result["details_queued"] = queued.into();
        result["boards"] = serde_json::to_value(&boards).expect("serializes");
        Ok(RunReport {
            status,
            message,
            error_detail: serde_json::json!({}),
            result,
        })
    }

    async fn close(&self) {
        self.0.close().await;
    }
}

/// A snapshot holds its company's run lock: one check of a company at a time.
pub fn snapshot_plan(company: &str) -> Plan {
    Plan {
        queue: QUEUE.to_owned(),
        lock_key: Some(format!("career:{company}")),
        max_retries: 3,
    }
}

/// Queues a check of `company` now (`trawl careers snapshot`, the API).
pub async fn submit(services: &Services, company: &str) -> Result<String, CareersError> {
    check_slug(company).map_err(CareersError::Invalid)?;
    let run_id = queue_core::new_run_id(queue_core::Trigger::Manual);
    let task = queue_core::Task::new(
        SNAPSHOT_KIND,
        queue_core::payload_of(&SnapshotTask {
            company: company.to_owned(),
        }),
        run_id.clone(),
        queue_core::Trigger::Manual,
    );
    queue_core::submit_run(services, &task, &snapshot_plan(company)).await?;
    Ok(run_id)
}
