//! The kinds this worker runs: one registration line per kind.
use std::sync::Arc;

use queue_core::{RedisPacer, Services};
use tokio_util::task::TaskTracker;
use trawl_careers::{CareerKinds, Details, Snapshots};
use trawl_digests::{Confirmations, Digests};
use trawl_embedder::EmbedderConfig;
use trawl_embeddings::EmbedBatches;
use trawl_pipeline::{Alerts, PipelineBatches, PipelineKinds, PipelineStages};
use trawl_scrape::{BrowserPool, BrowserSlots, DomainLimits, DomainPacer, Fetchers, HttpFetcher};
use trawl_scrape_runs::{RedisDomainPacer, ScrapeHandler};
use trawl_tasks::Registry;

use crate::WorkerSettings;

/// trawl's kinds, configured from the worker's settings. `background` owns the handlers'
/// background tasks (the browser reaper), joined when the worker stops.
pub fn registry(
    services: &Services,
    settings: &WorkerSettings,
    slots: Option<Arc<dyn BrowserSlots>>,
    background: &TaskTracker,
) -> Result<Registry, trawl_scrape::ScrapeError> {
    // One pool for every kind that reads pages in a browser: BROWSER_MAX_SESSIONS caps the
    // process, whichever kind asks.
    let browser = settings
        .browser
        .clone()
        .map(|browser| BrowserPool::new(browser, slots, background.clone()));
    let careers = careers(services, settings, browser.clone())?;
    Ok(Registry::new()
        .register(scrape(services, settings, browser)?)
        .register(PipelineBatches(pipeline(services, settings)?))
        .register(PipelineStages(pipeline(services, settings)?))
        .register(Snapshots(careers.clone()))
        .register(Details(careers))
        .register(Digests(settings.mail.clone()))
        .register(Confirmations(settings.mail.clone())))
}

/// The career kinds: pages through the scrape path's fetchers and this process's browsers.
fn careers(
    services: &Services,
    settings: &WorkerSettings,
    browser: Option<BrowserPool>,
) -> Result<CareerKinds, trawl_scrape::ScrapeError> {
    let mut fetchers = Fetchers::http(HttpFetcher::new(
        &settings.user_agent,
        settings.page_timeout,
    )?);
    fetchers.browser = browser;
    fetchers.domain_limits = DomainLimits::new(settings.per_domain_concurrency);
    fetchers.pacer = pacer(services, settings);
    Ok(CareerKinds {
        fetchers: Arc::new(fetchers),
        allow_private: settings.careers_allow_private,
        llm: settings.llm.clone(),
        ats_base_url: settings.careers_ats_base_url.clone(),
    })
}

/// The `embed_batch` kind, when this worker serves the embeddings queue: its model is loaded
/// now (a wrong `EMBEDDINGS_*` setting stops the start, naming the variable) and registered in
/// the background (the worker starts while PostgreSQL is away).
pub fn embeddings(
    services: &Services,
    settings: &WorkerSettings,
    config: &EmbedderConfig,
    background: &TaskTracker,
    stop: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<Option<EmbedBatches>> {
    use anyhow::Context;
    let serves = settings.queues.is_empty()
        || settings
            .queues
            .iter()
            .any(|q| q.name == trawl_embeddings::QUEUE);
    if !serves {
        return Ok(None);
    }
    let embedder = config.build().context("invalid embeddings configuration")?;
    let handler = EmbedBatches::new(services.db.clone(), embedder);
    background.spawn(handler.clone().register_in_background(stop.clone()));
    Ok(Some(handler))
}

/// The pipeline's kinds: its collect stage fetches over HTTP with the scrape path's pacing.
fn pipeline(
    services: &Services,
    settings: &WorkerSettings,
) -> Result<PipelineKinds, trawl_scrape::ScrapeError> {
    let mut fetchers = Fetchers::http(HttpFetcher::new(
        &settings.user_agent,
        settings.page_timeout,
    )?);
    fetchers.adzuna = settings.adzuna.clone();
    fetchers.domain_limits = DomainLimits::new(settings.per_domain_concurrency);
    fetchers.pacer = pacer(services, settings);
    Ok(PipelineKinds {
        db: services.db.clone(),
        fetchers: Arc::new(fetchers),
        alerts: Alerts::new(settings.alert_webhook_url.clone()),
        page_retry_base: settings.retry_base_delay,
    })
}

fn pacer(services: &Services, settings: &WorkerSettings) -> Option<Arc<dyn DomainPacer>> {
    settings.domain_interval.map(|interval| {
        Arc::new(RedisDomainPacer(RedisPacer::new(
            services.redis.clone(),
            services.keys().clone(),
            interval,
        ))) as Arc<dyn DomainPacer>
    })
}

fn scrape(
    services: &Services,
    settings: &WorkerSettings,
    browser: Option<BrowserPool>,
) -> Result<ScrapeHandler, trawl_scrape::ScrapeError> {
    let fetchers = Fetchers {
        http: HttpFetcher::new(&settings.user_agent, settings.page_timeout)?,
        browser,
        adzuna: settings.adzuna.clone(),
        domain_limits: DomainLimits::new(settings.per_domain_concurrency),
        pacer: pacer(services, settings),
    };
    Ok(ScrapeHandler {
        db: services.db.clone(),
        fetchers,
        retry_base_delay: settings.retry_base_delay,
    })
}
