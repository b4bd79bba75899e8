use std::time::Duration;

use queue_core::Task;
use sqlx::PgPool;
use test_support::{
    FaultAction, FaultRule, FaultTarget, TestBoard, TestRedis, eventually, redis_cmd, register_site,
};
use tokio_util::sync::CancellationToken;
use trawl_worker::Processed;

use crate::helpers::*;

fn slow_page_two(millis: u64) -> Vec<FaultRule> {
    vec![FaultRule {
        target: FaultTarget::Listing { page: 2 },
        action: FaultAction::Delay { millis },
        times: None,
    }]
}

async fn wait_until_page_two(board: &TestBoard) {
    eventually(
        Duration::from_secs(10),
        "the scrape to reach page 2",
        || async { (board.board.requests().listing >= 2).then_some(()) },
    )
    .await;
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn shutdown_lets_a_running_task_finish_within_the_grace(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 0).await;
    board.fail(slow_page_two(500));
    let worker = worker_with(&services, |s| s.shutdown_grace = Duration::from_secs(10));
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.clone().run(shutdown.clone()));

    let task = queue_run(&services, "demo", None, 40).await;
    wait_until_page_two(&board).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), running).await??;

    let run = run(&db, task.run_id.as_deref().unwrap()).await;
    assert_eq!(
        (run.status.as_str(), run.jobs_found),
        ("succeeded", 40),
        "{:?}",
        run.message
    );
    assert!(services.queue.inflight(worker.id()).await?.is_empty());
    // Issue 8, item 6: heartbeat, promoter and ack batcher were joined, not left running.
    assert_eq!(worker.background_tasks(), 0, "background tasks joined");
    let pending: i64 = redis_cmd(
        &redis.pool,
        redis::cmd("LLEN").arg(services.keys().pending()),
    )
    .await;
    assert_eq!(pending, 0);
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn shutdown_requeues_what_outlives_the_grace(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 0).await;
    board.fail(slow_page_two(30_000));
    let worker = worker_with(&services, |s| s.shutdown_grace = Duration::from_millis(300));
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.clone().run(shutdown.clone()));

    let task = queue_run(&services, "demo", None, 40).await;
    let run_id = task.run_id.clone().unwrap();
    wait_until_page_two(&board).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), running).await??;

    // The task is back at the head of the queue, its run queued again, its lock kept.
    let stopped = run(&db, &run_id).await;
    assert_eq!(stopped.status, "queued");
    assert_eq!(
        stopped.message.as_deref(),
        Some("requeued at worker shutdown")
    );
    assert!(services.queue.inflight(worker.id()).await?.is_empty());
    let pending: Vec<String> = redis_cmd(
        &redis.pool,
        redis::cmd("LRANGE")
            .arg(services.keys().pending())
            .arg(0)
            .arg(-1),
    )
    .await;
    assert_eq!(pending.len(), 1);
    assert_eq!(Task::parse(&pending[0])?.run_id, Some(run_id.clone()));
    assert_eq!(services.locks.holder("demo").await?, Some(run_id.clone()));

    // The next worker resumes the same run; postings stored before the stop count once.
    board.fail(vec![]);
    let next = crate::helpers::worker(&services);
    assert!(matches!(
        process_next(&next).await,
        Processed::Finished { .. }
    ));
    let resumed = run(&db, &run_id).await;
    assert_eq!(
        (resumed.status.as_str(), resumed.attempt, resumed.jobs_found),
        ("succeeded", 2, 40)
    );
    assert_eq!(job_count(&db).await, 40);
    assert_eq!(services.locks.holder("demo").await?, None);
    Ok(())
}
