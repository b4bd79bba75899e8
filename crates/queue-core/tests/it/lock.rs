use std::time::Duration;

use queue_core::{Keys, RunLocks};
use test_support::{TestRedis, redis_cmd};

const TTL: Duration = Duration::from_secs(30);

fn locks(redis: &TestRedis) -> (RunLocks, Keys) {
    let keys = Keys::new(&redis.prefix, "scraping");
    (RunLocks::new(redis.pool.clone(), keys.clone()), keys)
}

#[tokio::test]
async fn only_one_owner_at_a_time() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let (locks, _) = locks(&redis);
    assert!(locks.acquire("demo", "run_a", TTL).await?);
    assert!(!locks.acquire("demo", "run_b", TTL).await?);
    assert_eq!(locks.holder("demo").await?.as_deref(), Some("run_a"));
    assert!(
        locks.acquire("other", "run_b", TTL).await?,
        "locks are per site"
    );
    Ok(())
}

#[tokio::test]
async fn renew_and_release_with_a_wrong_token_do_nothing() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let (locks, keys) = locks(&redis);
    assert!(
        locks
            .acquire("demo", "run_a", Duration::from_secs(5))
            .await?
    );
    assert!(
        !locks
            .renew("demo", "run_b", Duration::from_secs(100))
            .await?
    );
    let ttl: i64 = redis_cmd(&redis.pool, redis::cmd("PTTL").arg(keys.run_lock("demo"))).await;
    assert!(
        ttl <= 5_000,
        "a wrong token must not extend the lock (ttl {ttl})"
    );
    assert!(!locks.release("demo", "run_b").await?);
    assert_eq!(locks.holder("demo").await?.as_deref(), Some("run_a"));
    assert!(
        !locks.claim("demo", "run_b", TTL).await?,
        "claim by another run is refused"
    );

    assert!(
        locks
            .renew("demo", "run_a", Duration::from_secs(100))
            .await?
    );
    let ttl: i64 = redis_cmd(&redis.pool, redis::cmd("PTTL").arg(keys.run_lock("demo"))).await;
    assert!(ttl > 5_000, "the owner extends the lock (ttl {ttl})");
    assert!(
        locks.claim("demo", "run_a", TTL).await?,
        "the owner re-claims its own lock"
    );
    assert!(locks.release("demo", "run_a").await?);
    assert_eq!(locks.holder("demo").await?, None);
    Ok(())
}

#[tokio::test]
async fn an_expired_lock_frees_the_site() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let (locks, _) = locks(&redis);
    assert!(
        locks
            .acquire("demo", "crashed_run", Duration::from_millis(200))
            .await?
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(locks.claim("demo", "next_run", TTL).await?);
    Ok(())
}
