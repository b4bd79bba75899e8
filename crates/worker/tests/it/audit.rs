//! The in-flight audit: what a Redis failover leaves in a live worker's in-flight list (an ack
//! or a retry the old master took with it) is cleared by the worker itself.
use std::time::Duration;

use queue_core::store;
use sqlx::PgPool;
use test_support::{TestBoard, TestRedis, eventually, redis_cmd, register_site};
use tokio_util::sync::CancellationToken;
use trawl_worker::Processed;

use crate::helpers::*;

/// A worker auditing every second (5 heartbeat TTLs of 200 ms) and a run of the demo site it
/// has run to the end; the board must outlive the test.
async fn a_worker_with_an_ended_run(
    db: &PgPool,
    redis: &TestRedis,
    board: &TestBoard,
) -> (
    queue_core::Services,
    std::sync::Arc<trawl_worker::Worker>,
    queue_core::Task,
) {
    let services = redis.services(db);
    register_site(db, "demo", &board.url, 0).await;
    let worker = worker_with(&services, |s| s.heartbeat_ttl = Duration::from_millis(200));
    let ended = queue_run(&services, "demo", None, 2).await;
    assert!(matches!(
        process_next(&worker).await,
        Processed::Finished { .. }
    ));
    (services, worker, ended)
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn entries_a_live_worker_is_not_running_are_acked_or_queued_again(
    db: PgPool,
) -> anyhow::Result<()> {
    let (redis, board) = (TestRedis::new(), TestBoard::start().await);
    // One run ended (its ack lost: its message is back in flight), one queued (the retry that
    // moved it out of the in-flight list lost: it sits there, run by no one).
    let (services, worker, ended) = a_worker_with_an_ended_run(&db, &redis, &board).await;
    let ended_id = ended.run_id.clone().unwrap();
    let waiting = queue_run(&services, "demo", Some("rust"), 3).await;
    let waiting_id = waiting.run_id.clone().unwrap();
    let inflight = services.keys().inflight(worker.id());
    let _: i64 = redis_cmd(
        &redis.pool,
        redis::cmd("LPUSH").arg(&inflight).arg(ended.to_json()),
    )
    .await;
    let _: String = redis_cmd(
        &redis.pool,
        redis::cmd("LMOVE")
            .arg(services.keys().pending())
            .arg(&inflight)
            .arg("RIGHT")
            .arg("LEFT"),
    )
    .await;

    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.clone().run(shutdown.clone()));
    let waited = eventually(
        Duration::from_secs(20),
        "the waiting run to run",
        || async {
            let run = store::get_run(&db, &waiting_id).await.unwrap().unwrap();
            run.status.is_terminal().then_some(run)
        },
    )
    .await;
    assert_eq!(waited.status.as_str(), "succeeded", "{:?}", waited.message);
    until_nothing_in_flight(&services, &worker, Duration::from_secs(10)).await;
    let attempts = store::run_attempts(&db, &ended_id).await?;
    assert_eq!(attempts.len(), 1, "the ended run was not run again");
    test_support::assert_invariants(&services).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), running).await??;
    Ok(())
}

/// A recovered copy of a task (one recovery moved out of a lapsed worker's list) left in a live
/// worker's list — a take whose reply a cut connection lost — once its run has ended. Such a
/// copy may also be one the worker holds on purpose, waiting to run alone: only because its run
/// has ended is it surely a leftover. The copy had claimed its run's lock before its start
/// failed: the lock goes with it.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_recovered_copy_of_an_ended_run_is_acked(db: PgPool) -> anyhow::Result<()> {
    let (redis, board) = (TestRedis::new(), TestBoard::start().await);
    let (services, worker, ended) = a_worker_with_an_ended_run(&db, &redis, &board).await;
    let run_id = ended.run_id.as_deref().unwrap();
    assert!(
        services
            .locks
            .claim("demo", run_id, Duration::from_secs(600))
            .await?
    );
    let mut copy = ended.clone();
    copy.recovered = Some(1);
    let inflight = services.keys().inflight(worker.id());
    let _: i64 = redis_cmd(
        &redis.pool,
        redis::cmd("LPUSH").arg(&inflight).arg(copy.to_json()),
    )
    .await;

    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.clone().run(shutdown.clone()));
    until_nothing_in_flight(&services, &worker, Duration::from_secs(10)).await;
    let attempts = store::run_attempts(&db, run_id).await?;
    assert_eq!(attempts.len(), 1, "the ended run was not run again");
    assert_eq!(
        services.locks.holder("demo").await?,
        None,
        "the lock was released"
    );
    test_support::assert_invariants(&services).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), running).await??;
    Ok(())
}
