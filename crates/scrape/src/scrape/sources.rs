//! One walk per kind of source: listing pages (and detail pages) of the demo board and of
//! definitions, ATS boards in one response, Lever and Adzuna page by page.
use tokio::sync::mpsc;
use url::Url;

use super::ScrapeRequest;
use super::session::{Session, json_body};
use crate::PageFetcher;
use crate::apis::{self, AdzunaCredentials, AdzunaSpec, AtsSpec};
use crate::definition::{self, DefinitionSpec, Pagination};
use crate::demo_board::{self, PAGE_SIZE};
use crate::fetch::PageRequest;
use crate::intake::Intake;
use crate::posting::{Provenance, RawPosting};
use crate::scrape::PageError;

pub(super) async fn scrape_demo_board<F: PageFetcher, I: Intake>(
    session: &mut Session<'_, F, I>,
    base: &Url,
    follow_details: bool,
    request: &ScrapeRequest,
    provenance: &Provenance<'_>,
    sink: &mpsc::Sender<Vec<I::Item>>,
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
        for item in listing.items.into_iter().take(remaining) {
            if follow_details
                && let Some(detail) = item.url.as_deref().and_then(|u| Url::parse(u).ok())
            {
                let request = PageRequest::http(detail.clone());
                session
                    .accept_with_detail(item, &request, provenance, &mut batch, |item, html| {
                        demo_board::apply_detail(item, html, &detail)
                    })
                    .await;
                continue;
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

pub(super) async fn scrape_definition<F: PageFetcher, I: Intake>(
    session: &mut Session<'_, F, I>,
    definition: &DefinitionSpec,
    request: &ScrapeRequest,
    provenance: &Provenance<'_>,
    sink: &mpsc::Sender<Vec<I::Item>>,
) {
    let (term, place) = (request.search_term.as_deref(), request.location.as_deref());
    let page_request = |url: Url| PageRequest {
        load_more: None,
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
        for item in items.into_iter().take(remaining) {
            if definition.follow_details
                && let Some(detail) = item.url.as_deref().and_then(|u| Url::parse(u).ok())
            {
                // `wait_for` describes listing pages; a detail page counts as loaded when loaded.
                let request = PageRequest {
                    load_more: None,
                    url: detail,
                    mode: definition.fetch,
                    wait_for: None,
                };
                session
                    .accept_with_detail(item, &request, provenance, &mut batch, |item, html| {
                        definition::apply_detail(item, html)
                    })
                    .await;
                continue;
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
pub(super) async fn scrape_board<F: PageFetcher, I: Intake>(
    session: &mut Session<'_, F, I>,
    url: Option<Url>,
    read: impl FnOnce(&serde_json::Value) -> Vec<RawPosting>,
    request: &ScrapeRequest,
    provenance: &Provenance<'_>,
    sink: &mpsc::Sender<Vec<I::Item>>,
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

pub(super) async fn scrape_lever<F: PageFetcher, I: Intake>(
    session: &mut Session<'_, F, I>,
    ats: &AtsSpec,
    request: &ScrapeRequest,
    provenance: &Provenance<'_>,
    sink: &mpsc::Sender<Vec<I::Item>>,
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

pub(super) async fn scrape_adzuna<F: PageFetcher, I: Intake>(
    session: &mut Session<'_, F, I>,
    spec: &AdzunaSpec,
    credentials: &AdzunaCredentials,
    request: &ScrapeRequest,
    provenance: &Provenance<'_>,
    sink: &mpsc::Sender<Vec<I::Item>>,
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
