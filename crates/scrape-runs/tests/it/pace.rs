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
    let origin = Instant::now();
    let ms = |at: Instant| (at - origin).as_secs_f64() * 1000.0;
    // Each turn as the window it was given in: Redis set it somewhere between the call and its
    // answer, `wait` after that moment (so a slow machine between calls changes the waits, not
    // the turns).
    let mut turns = Vec::new();
    for _ in 0..3 {
        let asked = ms(Instant::now());
        let wait = pacer.reserve("example.com").await?.as_secs_f64() * 1000.0;
        let answered = ms(Instant::now());
        turns.push((asked + wait, answered + wait));
    }
    assert!(
        turns[0].1 - turns[0].0 < 50.0,
        "the first turn is now: {turns:?}"
    );
    for pair in turns.windows(2) {
        let (earliest, latest) = (pair[1].0 - pair[0].1, pair[1].1 - pair[0].0);
        // 100 ms apart, to Redis's millisecond.
        assert!(
            earliest - 2.0 <= 100.0 && 100.0 <= latest + 2.0,
            "turns 100 ms apart: {turns:?}"
        );
    }
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
