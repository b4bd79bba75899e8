use std::time::Duration;

use queue_core::store::{self, RunStatus};
use queue_core::{Reconciled, reconcile};
use sqlx::PgPool;
use test_support::{TestBoard, TestRedis, redis_cmd, register_site};
use trawl_worker::Processed;

use crate::helpers::*;

/// What a Redis restart without persistence does to the queue.
async fn lose_redis_state(redis: &TestRedis, services: &queue_core::Services) {
    let _: i64 = redis_cmd(
        &redis.pool,
        redis::cmd("DEL").arg(services.keys().pending()),
    )
    .await;
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_run_whose_task_vanished_is_queued_again_and_completes(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 0).await;
    let task = queue_run(&services, "demo", Some("rust"), 5).await;
    let run_id = task.run_id.clone().unwrap();
    lose_redis_state(&redis, &services).await;

    let reconciled = reconcile(&services, Duration::ZERO).await?;
    assert_eq!(
        reconciled,
        Reconciled {
            requeued: vec![run_id.clone()],
            failed: vec![]
        }
    );
    let again = reconcile(&services, Duration::ZERO).await?;
    assert_eq!(
        again,
        Reconciled::default(),
        "its task is in Redis again: nothing to do"
    );

    let processed = process_next(&worker(&services)).await;
    assert_eq!(
        processed,
        Processed::Finished {
            run_id: run_id.clone(),
            status: RunStatus::Succeeded
        }
    );
    let run = run(&db, &run_id).await;
    assert_eq!(
        (run.search_term.as_deref(), run.jobs_found),
        (Some("rust"), 5),
        "the same search"
    );
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_running_run_of_a_vanished_worker_is_requeued_or_failed_past_its_attempts(
    db: PgPool,
) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 0).await;
    register_site(&db, "other", &board.url, 0).await;

    // Started by a worker that is gone, with its task nowhere in Redis.
    let lost = queue_run(&services, "demo", None, 5).await.run_id.unwrap();
    store::start_run(&db, &lost, "task", "ghost").await?;
    // Started three times already (MAX_DELIVERIES = 3): no more tries.
    let hopeless = queue_run(&services, "other", None, 5).await.run_id.unwrap();
    for _ in 0..3 {
        store::start_run(&db, &hopeless, "task", "ghost").await?;
    }
    lose_redis_state(&redis, &services).await;

    let reconciled = reconcile(&services, Duration::ZERO).await?;
    assert_eq!(
        reconciled,
        Reconciled {
            requeued: vec![lost.clone()],
            failed: vec![hopeless.clone()]
        }
    );
    let requeued = run(&db, &lost).await;
    assert_eq!(requeued.status, "queued");
    assert!(
        requeued
            .message
            .unwrap()
            .contains("its task was not in Redis")
    );
    let failed = run(&db, &hopeless).await;
    assert_eq!(failed.status, "failed");
    assert!(
        failed
            .message
            .unwrap()
            .contains("lost from Redis after 3 attempts"),
        "a row says what happened"
    );
    assert_eq!(services.locks.holder("other").await?, None);
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn runs_whose_task_is_pending_or_held_by_a_live_worker_are_left_alone(
    db: PgPool,
) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 0).await;
    register_site(&db, "other", &board.url, 0).await;
    queue_run(&services, "demo", None, 5).await; // pending
    let held = queue_run(&services, "other", None, 5).await.run_id.unwrap();
    services
        .queue
        .heartbeat("alive", Duration::from_secs(30))
        .await?;
    // "alive" takes one of the two tasks into its in-flight list and starts its run.
    let raw = services
        .queue
        .consumer(&redis.url, "alive", Duration::from_millis(200))
        .next()
        .await?
        .unwrap();
    let taken = queue_core::Task::parse_bytes(&raw)?.run_id.unwrap();
    store::start_run(&db, &taken, "task", "alive").await?;

    assert_eq!(
        reconcile(&services, Duration::ZERO).await?,
        Reconciled::default()
    );
    assert!(!held.is_empty());
    Ok(())
}
