//! Browsers through a real Selenium Grid (issue 13, item 3): a JavaScript-rendered site scraped
//! with WEBDRIVER_URL pointing at the hub; sessions capped by trawl's global slots below the
//! grid's own; a node killed mid-scrape costs the page in flight a retry on another node, not
//! the run a retry, and never a stuck run.
use std::sync::Arc;
use std::time::Duration;

use queue_core::SlotSemaphore;
use queue_core::store::RunStatus;
use sqlx::PgPool;
use test_support::grid::Grid;
use test_support::{
    FaultAction, FaultRule, FaultTarget, TestBoard, TestRedis, js_listing_definition, unpaused_site,
};
use tokio_util::sync::CancellationToken;
use trawl_scrape::{BrowserSettings, BrowserSlots};
use trawl_scrape_runs::RedisBrowserSlots;
use trawl_worker::{Worker, WorkerSettings};

use crate::helpers::*;

/// A worker loop whose browsers are the grid's, `slots` global browser slots shared.
fn grid_worker(
    services: &queue_core::Services,
    grid: &Grid,
    slots: &SlotSemaphore,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let mut settings = WorkerSettings::new(format!("grid-{}", uuid::Uuid::new_v4().simple()));
    settings.block_for = Duration::from_millis(100);
    settings.retry_base_delay = Duration::from_millis(200);
    settings.run_retry_base = Duration::from_millis(200);
    settings.page_timeout = Duration::from_secs(20);
    let mut browser = BrowserSettings::new("trawl-test");
    browser.webdriver_url = Some(grid.url.clone());
    browser.max_sessions = 2;
    browser.page_timeout = Duration::from_secs(20);
    settings.browser = Some(browser);
    let background = tokio_util::task::TaskTracker::new();
    let shared = Some(Arc::new(RedisBrowserSlots(slots.clone())) as Arc<dyn BrowserSlots>);
    let registry = trawl_worker::kinds::registry(services, &settings, shared, &background)
        .expect("kinds build");
    let worker = Worker::with_registry(services.clone(), settings, registry, background)
        .expect("worker builds");
    let stop = CancellationToken::new();
    (stop.clone(), tokio::spawn(worker.run(stop)))
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_browser_site_is_scraped_through_selenium_grid(db: PgPool) {
    let metrics = telemetry::metric::install();
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    let mut grid = Grid::start(2).await;
    // One global slot under a grid of two: trawl's cap is the lower one.
    let slots = SlotSemaphore::new(
        services.redis.clone(),
        services.keys(),
        1,
        Duration::from_secs(10),
        Duration::from_secs(120),
        Default::default(),
    );
    let (stop, handle) = grid_worker(&services, &grid, &slots);
    let payload = js_listing_definition(&board.url, "browser");
    trawl_scrape_runs::sites::upsert_site(&db, &unpaused_site("js-grid", payload, 2))
        .await
        .unwrap();

    let watching = CancellationToken::new();
    let monitor = tokio::spawn({
        let (url, stop) = (grid.url.clone(), watching.clone());
        async move {
            let client = reqwest::Client::new();
            let mut most = 0;
            while !stop.is_cancelled() {
                if let Ok(answer) = client.get(format!("{url}/status")).send().await
                    && let Ok(status) = answer.json::<serde_json::Value>().await
                {
                    let open = status["value"]["nodes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        // A killed node stays listed (DOWN, its sessions with it) a while.
                        .filter(|n| n["availability"] == "UP")
                        .flat_map(|n| n["slots"].as_array().cloned().unwrap_or_default())
                        .filter(|slot| !slot["session"].is_null())
                        .count();
                    most = most.max(open);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            most
        }
    });
    let first = queue_run(&services, "js-grid", Some("data"), 10).await;
    let run_id = first.run_id.clone().unwrap();
    let ended = test_support::run_ended(&db, &run_id).await;
    assert_eq!(
        ended.status,
        RunStatus::Succeeded,
        "{:?}\n{}",
        ended.message,
        grid.logs()
    );
    let scraped = run(&db, &run_id).await;
    assert_eq!(scraped.jobs_found, 10, "{scraped:?}");
    // Sampled while the grid was whole (a killed node stays listed with its sessions a while).
    watching.cancel();
    let most = monitor.await.unwrap();
    assert!(
        most == 1,
        "{most} grid sessions at most under 1 global slot and a grid of 2"
    );

    // A second node; slow detail pages; the node with the session dies while the second scrape
    // reads them: the page in flight is retried on the other node, within the same attempt.
    grid.add_node(2).await;
    board.fail(vec![FaultRule {
        target: FaultTarget::AnyDetail,
        action: FaultAction::Delay { millis: 1500 },
        times: None,
    }]);
    let second = queue_run(&services, "js-grid", Some("engineer"), 6).await;
    let run_id = second.run_id.clone().unwrap();
    let busy = test_support::eventually(Duration::from_secs(60), "a grid session busy", || async {
        let running = queue_core::store::get_run(&db, &run_id)
            .await
            .unwrap()
            .unwrap()
            .status
            == RunStatus::Running;
        if running {
            grid.busy_node().await
        } else {
            None
        }
    })
    .await;
    // Mid-page: a detail page takes 1.5 s.
    tokio::time::sleep(Duration::from_millis(500)).await;
    grid.kill_node(busy);
    let ended = test_support::run_ended(&db, &run_id).await;
    let scraped = run(&db, &run_id).await;
    assert_eq!(
        (ended.status, ended.attempt, scraped.completed_pages),
        (RunStatus::Succeeded, 1, scraped.requested_pages),
        "{:?}: {:?}\n{}",
        ended.status,
        ended.message,
        grid.logs()
    );
    assert_eq!(scraped.jobs_found, 6, "{scraped:?}");
    // The page the kill interrupted failed once (the node's WebDriver gone: a network or
    // browser error) and was fetched again through one new session, on the other node.
    let text = telemetry::metric::render(&metrics);
    let sample = |name: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let interrupted = sample(r#"trawl_pages_fetched_total{outcome="network_error"} "#)
        + sample(r#"trawl_pages_fetched_total{outcome="browser_error"} "#);
    assert_eq!(
        (interrupted, sample("trawl_browser_sessions_started_total ")),
        (1.0, 2.0),
        "one page in flight hit, one replacement session:\n{text}"
    );

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(60), handle)
        .await
        .expect("the worker stops")
        .unwrap();
    assert_eq!(slots.held().await.unwrap(), 0, "the slot came back");
}
