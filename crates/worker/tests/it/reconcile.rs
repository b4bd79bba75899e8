use std::time::Duration;

use queue_core::store::{self, RunStatus};
use queue_core::{Reconciled, reconcile};
use sqlx::PgPool;
use test_support::nap::record_nap_run_without_task;
use test_support::{TestBoard, TestRedis, eventually, redis_cmd, register_site};
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
            failed: vec![],
            held: vec![],
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
            failed: vec![hopeless.clone()],
            held: vec![],
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

/// A run whose row another session holds — a worker cut off mid-write keeps its transaction
/// open until PostgreSQL ends the session (DATABASE_IDLE_IN_TRANSACTION_TIMEOUT, 30 s) — stalls
/// neither the reconciler (the scheduler's pass) nor an operator's cancel: the pass leaves it
/// for the next one and repairs the rest; the cancel asks whoever runs it to stop.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_held_row_stalls_neither_the_reconciler_nor_a_cancel(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    // Three queued runs whose tasks are nowhere in Redis; another session holds the second's row.
    for run_id in ["lost-1", "held", "lost-3"] {
        record_nap_run_without_task(&db, run_id).await;
    }
    let mut other = db.begin().await?;
    sqlx::query("SELECT 1 FROM task_runs WHERE run_id = 'held' FOR UPDATE")
        .execute(&mut *other)
        .await?;
    let limit = store::HELD_ROW_WAIT + Duration::from_secs(3);

    let mut reconciled =
        tokio::time::timeout(limit, reconcile(&services, Duration::ZERO)).await??;
    reconciled.requeued.sort();
    assert_eq!(
        reconciled,
        Reconciled {
            requeued: vec!["lost-1".to_owned(), "lost-3".to_owned()],
            failed: vec![],
            held: vec!["held".to_owned()],
        }
    );
    let cancelled =
        tokio::time::timeout(limit, queue_core::cancel_run(&services, "held")).await??;
    assert_eq!(cancelled, queue_core::Cancelled::Requested);
    assert!(services.queue.is_cancel_requested("held").await?);
    let held = store::get_run(&db, "held").await?.expect("run row");
    assert_eq!((held.status, held.attempt), (RunStatus::Queued, 0));

    // Once the session lets go, the next pass queues it again like the others.
    other.rollback().await?;
    let again = reconcile(&services, Duration::ZERO).await?;
    assert_eq!(again.requeued, vec!["held".to_owned()], "{again:?}");
    Ok(())
}

/// Recovery and the reconciler walk only the queues in the set of queues in use. After Redis
/// lost its data that set is empty, and a worker registered its queues only at its start: a
/// live worker now writes them again on every heartbeat.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_live_worker_registers_its_queues_again_after_redis_lost_them(
    db: PgPool,
) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let worker = worker_with(&services, |s| {
        s.heartbeat_ttl = Duration::from_millis(300);
        s.queues = trawl_worker::QueueShare::parse_list("scraping,pipeline").expect("a queue list");
    });
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(worker.run(stop.clone()));
    let served = || async {
        let queues = services.known_queues().await.ok()?;
        let names: Vec<String> = queues
            .iter()
            .map(|queue| queue.keys().queue_name().to_owned())
            .collect();
        (names == ["scraping", "pipeline"]).then_some(())
    };
    eventually(
        Duration::from_secs(5),
        "the worker's queues registered",
        served,
    )
    .await;
    let known = services.known_queues_key();
    let _: i64 = redis_cmd(&redis.pool, redis::cmd("DEL").arg(&known)).await;
    eventually(
        Duration::from_secs(5),
        "the worker's queues registered again",
        served,
    )
    .await;
    stop.cancel();
    running.await?;
    Ok(())
}
