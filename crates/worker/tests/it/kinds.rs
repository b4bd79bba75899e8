//! A second kind (`nap`, the tests' own) through the one lifecycle: ledger row, attempts,
//! retry decided by the error, cancel, reconciliation and strict payloads, with no code of its
//! own beyond its handler.
use std::sync::Arc;
use std::time::Duration;

use queue_core::store::{self, AttemptStatus, RunStatus};
use sqlx::PgPool;
use test_support::nap::{Nap, submit_nap};
use test_support::{TestRedis, assert_invariants, eventually};
use tokio_util::sync::CancellationToken;
use trawl_worker::{Processed, Registry, Worker, WorkerSettings};

use crate::helpers::process_next;

fn nap_worker(services: &queue_core::Services) -> Arc<Worker> {
    let mut settings =
        WorkerSettings::new(format!("test-worker-{}", uuid::Uuid::new_v4().simple()));
    settings.block_for = Duration::from_millis(200);
    settings.run_retry_base = Duration::from_millis(20);
    let registry = Registry::new().register(Nap);
    Worker::with_registry(services.clone(), settings, registry, Default::default())
        .expect("worker builds")
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_second_kind_gets_the_whole_lifecycle(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let worker = nap_worker(&services);

    // Fails retryably once: the error decides the retry, the ledger counts it.
    let run_id = submit_nap(&services, 10, 1).await;
    let processed = process_next(&worker).await;
    assert!(
        matches!(&processed, Processed::Retrying { retry: 1, .. }),
        "{processed:?}"
    );
    let run = eventually(Duration::from_secs(10), "the retry to run", || async {
        let mut consumer = worker.consumer();
        services.queue_named("naps").promote_due().await.unwrap();
        match worker.run_once(&mut consumer).await.unwrap() {
            trawl_worker::Outcome::Ran(Processed::Finished { status, .. }) => Some(status),
            _ => None,
        }
    })
    .await;
    assert_eq!(run, RunStatus::Succeeded);
    let row = store::get_run(&db, &run_id).await?.expect("run row");
    assert_eq!(
        (row.kind.as_str(), row.attempt, row.retries, row.lock_key),
        ("nap", 2, 1, None)
    );
    assert_eq!(row.result["slept_ms"], 10);
    let attempts: Vec<_> = store::run_attempts(&db, &run_id)
        .await?
        .into_iter()
        .map(|a| (a.status, a.retried))
        .collect();
    assert_eq!(
        attempts,
        vec![
            (AttemptStatus::Failed, true),
            (AttemptStatus::Succeeded, false)
        ]
    );

    // No scrape_runs row for it: the view shows scrapes only.
    let scrapes: i64 = sqlx::query_scalar("SELECT count(*) FROM scrape_runs")
        .fetch_one(&db)
        .await?;
    assert_eq!(scrapes, 0);
    assert_invariants(&services).await;
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_running_nap_is_cancelled_and_a_lost_one_reconciled(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let worker = nap_worker(&services);
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.clone().run(shutdown.clone()));

    let long = submit_nap(&services, 30_000, 0).await;
    eventually(Duration::from_secs(10), "the nap to start", || async {
        let run = store::get_run(&db, &long).await.unwrap()?;
        (run.status == RunStatus::Running).then_some(())
    })
    .await;
    queue_core::cancel_run(&services, &long).await?;
    let cancelled = eventually(Duration::from_secs(10), "the cancel", || async {
        let run = store::get_run(&db, &long).await.unwrap()?;
        run.status.is_terminal().then_some(run)
    })
    .await;
    assert_eq!(cancelled.status, RunStatus::Failed);
    assert!(
        cancelled
            .message
            .as_deref()
            .unwrap()
            .contains("cancelled by an operator"),
        "{:?}",
        cancelled.message
    );
    shutdown.cancel();
    running.await?;

    // A queued nap whose task Redis lost: rebuilt from its ledger row, payload and all.
    let lost = submit_nap(&services, 5, 0).await;
    redis_flush_pending(&services).await;
    let reconciled = queue_core::reconcile(&services, Duration::ZERO).await?;
    assert_eq!(reconciled.requeued, vec![lost.clone()]);
    assert!(matches!(
        process_next(&nap_worker(&services)).await,
        Processed::Finished {
            status: RunStatus::Succeeded,
            ..
        }
    ));
    assert_invariants(&services).await;
    Ok(())
}

async fn redis_flush_pending(services: &queue_core::Services) {
    let naps = services.queue_named("naps");
    let _: () = test_support::redis_cmd(
        &services.redis,
        redis::cmd("DEL").arg(naps.keys().pending()),
    )
    .await;
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn bad_kinds_and_payloads_are_dead_lettered_with_the_reason(
    db: PgPool,
) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let queue = &services.queue_named("naps");
    queue
        .enqueue_raw(r#"{"kind":"embed","posting_ids":[1]}"#)
        .await?;
    queue
        .enqueue_raw(r#"{"kind":"nap","millis":5,"snooze":true}"#)
        .await?;
    queue
        .enqueue_raw(r#"{"kind":"nap","millis":"long"}"#)
        .await?;
    queue
        .enqueue_raw(r#"{"kind":"nap","millis":600000}"#)
        .await?;
    // A scrape-shaped task sent to a worker that runs naps only.
    queue.enqueue_raw(r#"{"site_name":"demo"}"#).await?;
    let worker = nap_worker(&services);
    let mut reasons = Vec::new();
    for _ in 0..5 {
        match process_next(&worker).await {
            Processed::DeadLettered { reason } => reasons.push(reason),
            other => panic!("{other:?}"),
        }
    }
    reasons.sort();
    assert_eq!(reasons.len(), 5);
    assert!(
        reasons[0].starts_with("invalid nap task: invalid type: string \"long\""),
        "{}",
        reasons[0]
    );
    assert_eq!(
        reasons[1],
        "invalid nap task: millis must be at most 60000, got 600000"
    );
    assert!(
        reasons[2].starts_with("invalid nap task: unknown field `site_name`"),
        "{}",
        reasons[2]
    );
    assert!(
        reasons[3].starts_with("invalid nap task: unknown field `snooze`"),
        "{}",
        reasons[3]
    );
    assert_eq!(reasons[4], "unknown kind \"embed\"; this trawl runs: nap");
    // Nothing was recorded for them, and nothing is left in flight.
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM task_runs")
        .fetch_one(&db)
        .await?;
    assert_eq!(runs, 0);
    assert_eq!(queue.metrics().await?.in_flight, 0);
    Ok(())
}

/// What the lifecycle promises every kind beyond a clean run: the delay a retryable error asks
/// for is the one the retry waits, a panic fails the run (not the worker), and a handler that
/// ignores its time limit is stopped shortly after it and retried.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn the_lifecycle_keeps_a_kinds_delay_stops_its_panic_and_its_overrun(
    db: PgPool,
) -> anyhow::Result<()> {
    use test_support::nap::{NapTask, submit_nap_task};
    let redis = TestRedis::new();
    let services = crate::helpers::services_with_timeout(&redis, &db, 1);
    let worker = nap_worker(&services);

    let asked = NapTask {
        fail_first: 1,
        retry_after_ms: Some(1500),
        ..NapTask::new(5)
    };
    submit_nap_task(&services, &asked).await;
    let processed = process_next(&worker).await;
    assert!(
        matches!(processed, Processed::Retrying { retry: 1, delay, .. } if delay == Duration::from_millis(1500)),
        "{processed:?}"
    );

    let run_id = submit_nap_task(
        &services,
        &NapTask {
            panic: true,
            ..NapTask::new(5)
        },
    )
    .await;
    // Only the panicking run's task is pending (the retry waits in the delayed set).
    assert_eq!(
        process_next(&worker).await,
        Processed::Finished {
            run_id: run_id.clone(),
            status: RunStatus::Failed
        }
    );
    let run = store::get_run(&db, &run_id).await?.expect("run");
    assert_eq!(run.message.as_deref(), Some("the task panicked"));

    // JOB_TIMEOUT 1 s; the nap ignores it: stopped 5 s later, retryable.
    let run_id = submit_nap_task(&services, &NapTask::new(20_000)).await;
    let started = std::time::Instant::now();
    let processed = process_next(&worker).await;
    assert!(
        matches!(&processed, Processed::Retrying { run_id: id, retry: 1, .. } if id == &run_id),
        "{processed:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let run = store::get_run(&db, &run_id).await?.expect("run");
    assert!(
        run.message
            .as_deref()
            .unwrap()
            .contains("timed out after 1 s (JOB_TIMEOUT)"),
        "{:?}",
        run.message
    );
    Ok(())
}

/// The API and the CLI check a recurring task's kind and payload against `trawl_kinds`'
/// catalog without building handlers; the worker registers its handlers in `kinds.rs`. Adding a
/// kind to one list and not the other would refuse work a worker runs, or accept work none
/// runs: the two must name the same kinds, on the same queues.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn the_worker_runs_every_kind_in_the_catalog(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let settings = WorkerSettings::new("catalog-check".to_owned());
    let background = tokio_util::task::TaskTracker::new();
    let registry = trawl_worker::kinds::registry(&services, &settings, None, &background)?;
    // The embeddings kind is registered when the worker serves its queue (`kinds::embeddings`,
    // which loads a model): its handler is the same type the catalog names.
    let mut run = registry.kinds();
    run.push(trawl_embeddings::KIND);
    run.sort_unstable();
    let catalog = trawl_kinds::catalog();
    assert_eq!(run, catalog.kinds());
    for kind in registry.kinds() {
        let queue = registry.get(kind).map(|handler| handler.queue());
        assert_eq!(queue, catalog.queue(kind), "{kind}'s queue");
    }
    assert_eq!(
        catalog.queue(trawl_embeddings::KIND),
        Some(trawl_embeddings::QUEUE)
    );
    Ok(())
}
