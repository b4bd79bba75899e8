use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use queue_core::{Keys, SlotSemaphore};
use test_support::{
    FaultAction, FaultRule, FaultTarget, TestBoard, TestRedis, processes_mentioning,
};
use trawl_scrape::{
    BrowserPool, BrowserSettings, BrowserSlots, FetchMode, PageFetcher, PageRequest,
};
use trawl_scrape_runs::RedisBrowserSlots;

fn semaphore(redis: &TestRedis, capacity: u32, lease: Duration) -> SlotSemaphore {
    SlotSemaphore::new(
        redis.pool.clone(),
        &Keys::new(&redis.prefix, "scraping"),
        capacity,
        lease,
        Duration::from_secs(60),
        Default::default(),
    )
}

/// Distinct browsers (by profile folder) running under `root`.
fn browsers_under(root: &std::path::Path) -> usize {
    let marker = root.display().to_string();
    let profiles: HashSet<String> = processes_mentioning(&marker)
        .into_iter()
        .filter_map(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).ok())
        .filter_map(|cmdline| {
            String::from_utf8_lossy(&cmdline)
                .split('\0')
                .find_map(|arg| arg.strip_prefix("--user-data-dir=").map(str::to_owned))
        })
        .collect();
    profiles.len()
}

#[tokio::test]
async fn two_slots_never_allow_a_third_browser() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let slots = semaphore(&redis, 2, Duration::from_secs(5));
    let board = TestBoard::start().await;
    // Slow detail pages keep each browser busy for a while.
    board.fail(vec![FaultRule {
        target: FaultTarget::AnyDetail,
        action: FaultAction::Delay { millis: 700 },
        times: None,
    }]);
    let profiles = tempfile::tempdir()?;

    // Three "workers", each with its own pool, sharing the two global slots.
    let pools: Vec<BrowserPool> = (0..3)
        .map(|_| {
            let mut settings = BrowserSettings::new("trawl-test");
            settings.profile_root = profiles.path().to_owned();
            settings.max_sessions = 1;
            settings.idle_timeout = Duration::from_millis(300);
            BrowserPool::new(
                settings,
                Some(Arc::new(RedisBrowserSlots(slots.clone())) as Arc<dyn BrowserSlots>),
                Default::default(),
            )
        })
        .collect();

    let watching = tokio_util::sync::CancellationToken::new();
    let monitor = tokio::spawn({
        let (slots, root, stop) = (slots.clone(), profiles.path().to_owned(), watching.clone());
        async move {
            let (mut most_slots, mut most_browsers) = (0, 0);
            while !stop.is_cancelled() {
                most_slots = most_slots.max(slots.held().await.unwrap());
                most_browsers = most_browsers.max(browsers_under(&root));
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            (most_slots, most_browsers)
        }
    });
    let mut scrapes = tokio::task::JoinSet::new();
    for (n, pool) in pools.iter().enumerate() {
        let pool = pool.clone();
        let urls: Vec<_> = (1..=3)
            .map(|i| board.url.join(&format!("jobs/{}", n * 10 + i)).unwrap())
            .collect();
        scrapes.spawn(async move {
            for url in urls {
                pool.fetch(&PageRequest {
                    load_more: None,
                    url,
                    mode: FetchMode::Browser,
                    wait_for: None,
                })
                .await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = scrapes.join_next().await {
        done??;
    }
    watching.cancel();
    let (most_slots, most_browsers) = monitor.await?;
    assert_eq!(most_slots, 2, "both slots were used, never a third");
    assert!(
        most_browsers <= 2,
        "at most 2 browsers at once, saw {most_browsers}"
    );
    for pool in &pools {
        pool.close().await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await; // slot releases run in the background
    assert_eq!(
        slots.held().await?,
        0,
        "closed sessions give their slots back"
    );
    Ok(())
}

#[tokio::test]
async fn a_crashed_holders_slot_comes_back_when_its_lease_ends() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let slots = semaphore(&redis, 1, Duration::from_millis(400));
    // A worker takes the only slot and dies: nothing renews or releases it.
    assert!(slots.try_acquire("worker-that-died").await?);
    assert!(!slots.try_acquire("survivor").await?, "the slot is taken");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        slots.try_acquire("survivor").await?,
        "the lease ran out and the slot came back"
    );
    assert!(
        !slots.renew("worker-that-died").await?,
        "an expired lease is not revived"
    );
    Ok(())
}

#[tokio::test]
async fn a_held_lease_is_renewed_while_in_use() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let slots = semaphore(&redis, 1, Duration::from_millis(300));
    let lease = BrowserSlots::acquire(&RedisBrowserSlots(slots.clone()))
        .await
        .map_err(anyhow::Error::msg)?;
    tokio::time::sleep(Duration::from_millis(900)).await; // three lease lengths
    assert!(
        !slots.try_acquire("other").await?,
        "the renewed lease still holds the slot"
    );
    drop(lease);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(slots.try_acquire("other").await?, "released on drop");
    Ok(())
}
