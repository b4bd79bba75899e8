use std::process::Stdio;
use std::time::Duration;

use queue_core::store::RunStatus;
use sqlx::PgPool;
use test_support::{
    FaultAction, FaultRule, FaultTarget, TestBoard, TestRedis, eventually, register_site,
};
use trawl_worker::Processed;

use crate::helpers::*;

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_worker_killed_mid_task_loses_nothing(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 0).await;
    // The first listing request hangs, so the worker is mid-task when it dies.
    board.fail(vec![FaultRule {
        target: FaultTarget::Listing { page: 1 },
        action: FaultAction::Delay { millis: 20_000 },
        times: Some(1),
    }]);
    let task = queue_run(&services, "demo", None, 20).await;
    let run_id = task.run_id.clone().unwrap();

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_trawl-worker"))
        .env("DATABASE_URL", test_support::database_url(&db))
        .env("REDIS_URL", &redis.url)
        .env("REDIS_PREFIX", &redis.prefix)
        .env("HEARTBEAT_TTL_MS", "1000")
        .env("BROWSER_ENABLED", "false")
        .env("DOMAIN_RATE", "0")
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let worker_id = eventually(
        Duration::from_secs(20),
        "the worker to start the run",
        || async {
            let run = run(&db, &run_id).await;
            (run.status.as_str() == "running").then(|| run.worker_id.clone().unwrap())
        },
    )
    .await;
    // Its listing request is in the board (and hangs there): it is truly mid-task.
    eventually(Duration::from_secs(20), "the listing request", || async {
        (board.board.requests().listing >= 1).then_some(())
    })
    .await;
    child.start_kill()?; // SIGKILL: no cleanup of any kind
    child.wait().await?;

    // The task is still in Redis, in the dead worker's in-flight list.
    assert_eq!(services.queue.inflight(&worker_id).await?.len(), 1);
    tokio::time::sleep(Duration::from_millis(1200)).await; // its heartbeat runs out
    let recovery = services.queue.recover_crashed(3).await?;
    assert_eq!((recovery.workers, recovery.requeued), (vec![worker_id], 1));

    let next = worker(&services);
    let processed = process_next(&next).await;
    assert_eq!(
        processed,
        Processed::Finished {
            run_id: run_id.clone(),
            status: RunStatus::Succeeded
        },
        "{:?}",
        run(&db, &run_id).await.message
    );
    let run = run(&db, &run_id).await;
    assert_eq!(
        (run.attempt, run.jobs_found, run.jobs_inserted),
        (2, 20, 20)
    );
    assert_eq!(job_count(&db).await, 20);
    assert_eq!(services.locks.holder("demo").await?, None);
    Ok(())
}
