use std::time::Duration;

use queue_core::Cancelled;
use sqlx::PgPool;
use test_support::{
    FaultAction, FaultRule, FaultTarget, TestBoard, TestRedis, eventually, register_site,
};
use tokio_util::sync::CancellationToken;
use trawl_worker::Processed;

use crate::helpers::*;

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_paused_queue_is_not_worked_until_resumed(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 0).await;
    services.queue.set_paused(true).await?;
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker(&services).run(shutdown.clone()));

    let task = queue_run(&services, "demo", None, 5).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let metrics = services.queue.metrics().await?;
    assert_eq!(
        (metrics.paused, metrics.pending),
        (true, 1),
        "nothing taken while paused"
    );
    assert_eq!(
        run(&db, task.run_id.as_deref().unwrap()).await.status,
        "queued"
    );

    services.queue.set_paused(false).await?;
    eventually(
        Duration::from_secs(15),
        "the run to finish after resume",
        || async {
            (run(&db, task.run_id.as_deref().unwrap()).await.status == "succeeded").then_some(())
        },
    )
    .await;
    shutdown.cancel();
    running.await?;
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_running_run_is_cancelled_at_its_next_page(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 0).await;
    board.fail(vec![FaultRule {
        target: FaultTarget::AnyListing,
        action: FaultAction::Delay { millis: 700 },
        times: None,
    }]);
    let shutdown = CancellationToken::new();
    let worker = worker(&services);
    let running = tokio::spawn(worker.clone().run(shutdown.clone()));

    let task = queue_run(&services, "demo", None, 200).await; // 10 slow listing pages
    let run_id = task.run_id.clone().unwrap();
    eventually(Duration::from_secs(10), "the run to start", || async {
        (run(&db, &run_id).await.status == "running").then_some(())
    })
    .await;
    assert_eq!(
        queue_core::cancel_run(&services, &run_id).await?,
        Cancelled::Requested
    );
    let cancelled = eventually(Duration::from_secs(10), "the run to stop", || async {
        let run = run(&db, &run_id).await;
        (run.status.as_str() == "failed").then_some(run)
    })
    .await;
    assert!(
        cancelled
            .message
            .as_deref()
            .unwrap()
            .starts_with("cancelled by an operator"),
        "{:?}",
        cancelled.message
    );
    assert!(
        board.board.requests().listing < 10,
        "stopped before the last page"
    );
    eventually(
        Duration::from_secs(5),
        "the lock to be released",
        || async {
            services
                .locks
                .holder("demo")
                .await
                .unwrap()
                .is_none()
                .then_some(())
        },
    )
    .await;
    assert!(
        services.queue.inflight(worker.id()).await?.is_empty(),
        "acked"
    );
    assert_eq!(
        queue_core::cancel_run(&services, &run_id).await?,
        Cancelled::AlreadyFinished(queue_core::store::RunStatus::Failed)
    );
    shutdown.cancel();
    running.await?;
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_queued_run_is_cancelled_before_it_starts(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 0).await;
    let task = queue_run(&services, "demo", None, 5).await;
    let run_id = task.run_id.clone().unwrap();
    assert_eq!(
        queue_core::cancel_run(&services, &run_id).await?,
        Cancelled::BeforeStart
    );
    assert_eq!(run(&db, &run_id).await.status, "failed");
    assert_eq!(
        services.locks.holder("demo").await?,
        None,
        "the site is free again"
    );
    // Another run may take the site at once; the cancelled task is skipped without waiting.
    queue_run(&services, "demo", None, 5).await;
    assert_eq!(
        process_next(&worker(&services)).await,
        Processed::Duplicate {
            run_id,
            status: queue_core::store::RunStatus::Failed
        }
    );
    assert_eq!(board.board.requests().listing, 0);
    assert_eq!(
        queue_core::cancel_run(&services, "nope").await?,
        Cancelled::NoSuchRun
    );
    Ok(())
}

/// A run ended in PostgreSQL whose site lock was never released (its worker died between the
/// two): the task's redelivery finds the run ended, releases the lock and acks.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_redelivered_task_of_an_ended_run_releases_its_lock(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 0).await;
    let task = queue_run(&services, "demo", None, 5).await;
    let run_id = task.run_id.clone().unwrap();
    assert_eq!(services.locks.holder("demo").await?, Some(run_id.clone()));
    queue_core::store::fail_run(&db, &run_id, "ended by a worker that then died").await?;

    assert_eq!(
        process_next(&worker(&services)).await,
        Processed::Duplicate {
            run_id,
            status: queue_core::store::RunStatus::Failed
        }
    );
    assert_eq!(services.locks.holder("demo").await?, None, "released");
    assert_eq!(board.board.requests().listing, 0);
    Ok(())
}
