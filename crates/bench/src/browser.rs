use std::time::{Duration, Instant};

use anyhow::Context;
use demo_board::DemoBoard;
use tokio_util::sync::CancellationToken;
use trawl_scrape::{
    BrowserPool, BrowserSettings, FetchMode, HttpFetcher, PageFetcher, PageRequest,
};
use url::Url;

#[derive(Debug, clap::Args)]
pub struct Options {
    /// JS listing pages loaded through the pool (sessions reused).
    #[arg(long, default_value_t = 60)]
    pooled_pages: u32,
    /// JS listing pages loaded with a fresh browser session each.
    #[arg(long, default_value_t = 12)]
    fresh_pages: u32,
    /// Server-rendered listing pages fetched over plain HTTP.
    #[arg(long, default_value_t = 2000)]
    http_pages: u32,
    /// Pages in flight at once (also the pool's session cap).
    #[arg(long, default_value_t = 2)]
    concurrency: usize,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let addr = DemoBoard::default().spawn_local(stop.clone()).await?;
    let base = Url::parse(&format!("http://{addr}/"))?;
    let profiles = tempfile::tempdir()?;
    let js_page = |n: u32| PageRequest {
        load_more: None,
        url: base
            .join(&format!("js/jobs?page={}", n % 12 + 1))
            .expect("url"),
        mode: FetchMode::Browser,
        wait_for: Some("main#results[data-loaded]".into()),
    };

    let pooled = pool(&profiles, options.concurrency, 10_000);
    pooled.fetch(&js_page(0)).await.context("warm-up")?; // chromedriver start is not measured
    let pooled_rate = rate(options.pooled_pages, options.concurrency, |n| {
        let (pool, request) = (pooled.clone(), js_page(n));
        async move { pool.fetch(&request).await.map(drop) }
    })
    .await?;
    pooled.close().await;

    let fresh = pool(&profiles, options.concurrency, 1);
    fresh.fetch(&js_page(0)).await.context("warm-up")?;
    let fresh_rate = rate(options.fresh_pages, options.concurrency, |n| {
        let (pool, request) = (fresh.clone(), js_page(n));
        async move { pool.fetch(&request).await.map(drop) }
    })
    .await?;
    fresh.close().await;

    let http = HttpFetcher::new("trawl-bench", Duration::from_secs(10))?;
    let http_rate = rate(options.http_pages, options.concurrency, |n| {
        let (http, request) = (
            http.clone(),
            PageRequest::http(
                base.join(&format!("jobs?page={}", n % 12 + 1))
                    .expect("url"),
            ),
        );
        async move { http.fetch(&request).await.map(drop) }
    })
    .await?;

    println!(
        "browser pool, sessions reused : {pooled_rate:8.1} pages/s ({} JS listing pages, {} at once)",
        options.pooled_pages, options.concurrency
    );
    println!(
        "fresh session per page        : {fresh_rate:8.1} pages/s ({} pages)",
        options.fresh_pages
    );
    println!(
        "pool / fresh                  : {:8.1}x",
        pooled_rate / fresh_rate
    );
    println!(
        "plain HTTP (server-rendered)  : {http_rate:8.1} pages/s ({} pages)",
        options.http_pages
    );
    println!(
        "peak RSS of this process      : {:8.1} MB (the worker side; browsers are separate processes)",
        crate::common::peak_rss_mb()?
    );
    stop.cancel();
    Ok(())
}

fn pool(profiles: &tempfile::TempDir, sessions: usize, pages_per_session: u32) -> BrowserPool {
    let mut settings = BrowserSettings::new("trawl-bench");
    settings.profile_root = profiles.path().to_owned();
    settings.max_sessions = sessions;
    settings.pages_per_session = pages_per_session;
    BrowserPool::new(settings, None, Default::default())
}

/// Runs `count` operations, `concurrency` at a time, and returns operations per second.
async fn rate<F, Fut>(count: u32, concurrency: usize, op: F) -> anyhow::Result<f64>
where
    F: Fn(u32) -> Fut,
    Fut: std::future::Future<Output = Result<(), trawl_scrape::ScrapeError>> + Send + 'static,
{
    let started = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    for n in 0..count {
        if running.len() >= concurrency {
            running.join_next().await.expect("a task is running")??;
        }
        running.spawn(op(n));
    }
    while let Some(done) = running.join_next().await {
        done??;
    }
    Ok(f64::from(count) / started.elapsed().as_secs_f64())
}
