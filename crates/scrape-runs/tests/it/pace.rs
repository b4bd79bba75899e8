use std::sync::Arc;
use std::time::{Duration, Instant};

use queue_core::{Keys, RedisPacer};
use test_support::{TestBoard, TestRedis};
use trawl_scrape::{DomainPacer, Fetchers, HttpFetcher, PageFetcher, PageRequest};
use trawl_scrape_runs::RedisDomainPacer;

fn pacer(redis: &TestRedis, interval: Duration) -> RedisPacer {
    RedisPacer::new(
        redis.pool.clone(),
        Keys::new(&redis.prefix, "scraping"),
        interval,
    )
}

#[tokio::test]
async fn turns_to_one_host_are_spaced_by_the_interval() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let pacer = pacer(&redis, Duration::from_millis(100));
    let waits: Vec<u128> = [
        pacer.reserve("example.com").await?,
        pacer.reserve("example.com").await?,
        pacer.reserve("example.com").await?,
    ]
    .iter()
    .map(Duration::as_millis)
    .collect();
    assert_eq!(waits[0], 0);
    assert!((80..=100).contains(&waits[1]), "{waits:?}");
    assert!((180..=200).contains(&waits[2]), "{waits:?}");
    assert_eq!(
        pacer.reserve("other.example").await?,
        Duration::ZERO,
        "hosts are paced apart"
    );
    Ok(())
}

#[tokio::test]
async fn two_workers_together_keep_to_one_hosts_rate() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let board = TestBoard::start().await;
    let shared: Arc<dyn DomainPacer> =
        Arc::new(RedisDomainPacer(pacer(&redis, Duration::from_millis(100))));
    // Two workers: each its own fetchers and per-process limits, one pace in Redis.
    let workers: Vec<Fetchers> = (0..2)
        .map(|_| Fetchers {
            pacer: Some(shared.clone()),
            ..Fetchers::http(HttpFetcher::new("trawl-test", Duration::from_secs(5)).unwrap())
        })
        .collect();
    let started = Instant::now();
    let mut requests = tokio::task::JoinSet::new();
    for (n, fetchers) in workers.into_iter().enumerate() {
        let urls: Vec<_> = (1..=5)
            .map(|i| board.url.join(&format!("jobs/{}", n * 10 + i)).unwrap())
            .collect();
        requests.spawn(async move {
            for url in urls {
                fetchers.fetch(&PageRequest::http(url)).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = requests.join_next().await {
        done??;
    }
    // 10 requests, 100 ms apart from both workers together: at least 900 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(880),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(board.board.requests().detail, 10);
    Ok(())
}
