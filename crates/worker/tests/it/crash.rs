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

/// Two tasks recovered from one crashed worker: the next worker holds one of them at a time
/// (the other is handed back), so if the one it runs kills it, the other is not in its
/// in-flight list to be blamed and dead-lettered with it. Both run, one after the other.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_worker_holds_one_recovered_task_at_a_time(db: PgPool) -> anyhow::Result<()> {
    use queue_core::store;
    use test_support::nap::submit_nap;

    let metrics = telemetry::metric::install();
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let naps = services.queue_named("naps");
    let runs = [
        submit_nap(&services, 400, 0).await,
        submit_nap(&services, 400, 0).await,
    ];
    // A worker takes both and dies.
    taken_by_a_dead_worker(&redis, &services, runs.len()).await?;
    let (worker, shutdown, running) = recovering_worker(&services);
    let mut most_held = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let held = naps.inflight(worker.id()).await?.len();
        most_held = most_held.max(held);
        let mut done = 0;
        for run_id in &runs {
            let run = store::get_run(&db, run_id).await?.expect("run row");
            done += usize::from(run.status.is_terminal());
        }
        if done == runs.len() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the recovered naps never both ran"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    shutdown.cancel();
    running.await?;
    assert_eq!(most_held, 1, "recovered tasks held at once");
    let text = telemetry::metric::render(&metrics);
    let deferred = r#"trawl_tasks_deferred_total{kind="nap",queue="naps",reason="recovered"}"#;
    let handed = test_support::prometheus::sample(&text, deferred);
    assert!(handed.is_some_and(|n| n >= 1.0), "{deferred}: {handed:?}");
    // One after the other: the second started after the first finished.
    let mut spans = Vec::new();
    for run_id in &runs {
        let run = store::get_run(&db, run_id).await?.expect("run row");
        assert_eq!(run.status, store::RunStatus::Succeeded);
        spans.push((run.started_at.unwrap(), run.finished_at.unwrap()));
    }
    spans.sort();
    assert!(spans[0].1 <= spans[1].0, "they overlapped: {spans:?}");
    test_support::assert_invariants(&services).await;
    Ok(())
}

/// A recovered task whose run's row another session holds locked (the worker it came from was
/// cut off mid-transaction, and PostgreSQL keeps that session's locks until it ends it) waits
/// for the row in the delayed set, not in the worker: the worker's other tasks start and end
/// meanwhile. (It used to take every slot before its start, so one locked row stalled the
/// whole worker; and its start shared the ledger batcher's transaction with everyone else's.)
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_recovered_task_whose_row_is_locked_does_not_stall_its_worker(
    db: PgPool,
) -> anyhow::Result<()> {
    a_task_whose_row_is_locked_does_not_stall_its_worker(db, true).await
}

/// The same for an ordinary task: the reconciler requeues a run whose task Redis lost, and the
/// cut-off worker's session may still hold its row. Its start, in a dequeued batch's statement
/// in the ledger batcher's shared transaction, used to wait for the row, and every other start
/// and end of the worker with it.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_requeued_task_whose_row_is_locked_does_not_stall_its_worker(
    db: PgPool,
) -> anyhow::Result<()> {
    a_task_whose_row_is_locked_does_not_stall_its_worker(db, false).await
}

async fn a_task_whose_row_is_locked_does_not_stall_its_worker(
    db: PgPool,
    recovered: bool,
) -> anyhow::Result<()> {
    use queue_core::store;
    use test_support::nap::submit_nap;

    let metrics = telemetry::metric::install();
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let naps = services.queue_named("naps");
    let locked = submit_nap(&services, 100, 0).await;
    if recovered {
        taken_by_a_dead_worker(&redis, &services, 1).await?;
    }
    // The cut-off worker's session, still in its transaction on the run's row.
    let mut cut_off = db.begin().await?;
    sqlx::query("SELECT 1 FROM task_runs WHERE run_id = $1 FOR UPDATE")
        .bind(&locked)
        .execute(&mut *cut_off)
        .await?;

    let (_worker, shutdown, running) = recovering_worker(&services);
    // The task was taken: its start finds the row held.
    eventually(Duration::from_secs(10), "the task taken", || async {
        (naps.metrics().await.unwrap().pending == 0).then_some(())
    })
    .await;
    let others = [
        submit_nap(&services, 50, 0).await,
        submit_nap(&services, 50, 0).await,
        submit_nap(&services, 50, 0).await,
    ];
    eventually(
        Duration::from_secs(15),
        "the other naps ended while the row stayed locked",
        || async {
            let mut ended = 0;
            for run_id in &others {
                let run = store::get_run(&db, run_id).await.unwrap().expect("run row");
                ended += usize::from(run.status == store::RunStatus::Succeeded);
            }
            (ended == others.len()).then_some(())
        },
    )
    .await;
    let run = store::get_run(&db, &locked).await?.expect("run row");
    assert_eq!(
        (run.status, run.attempt),
        (store::RunStatus::Queued, 0),
        "the run did not start while its row was locked"
    );

    // The session ends (PostgreSQL's idle-in-transaction timeout, here a rollback): the run
    // starts and ends, once, its waits not counted against it.
    cut_off.rollback().await?;
    eventually(Duration::from_secs(15), "the locked nap ended", || async {
        let run = store::get_run(&db, &locked)
            .await
            .unwrap()
            .expect("run row");
        run.status.is_terminal().then_some(run)
    })
    .await;
    shutdown.cancel();
    running.await?;
    let run = store::get_run(&db, &locked).await?.expect("run row");
    assert_eq!(
        (run.status, run.attempt, run.retries),
        (store::RunStatus::Succeeded, 1, 0)
    );
    // Each wait is counted (and shown): one or more, once a second while the row was held.
    let text = telemetry::metric::render(&metrics);
    let deferred = r#"trawl_tasks_deferred_total{kind="nap",queue="naps",reason="row_held"}"#;
    let waits = test_support::prometheus::sample(&text, deferred);
    assert!(waits.is_some_and(|n| n >= 1.0), "{deferred}: {waits:?}");
    test_support::assert_invariants(&services).await;
    Ok(())
}

/// The first `tasks` nap tasks are taken by a worker that then dies, and recovered: back at the
/// front of `naps`, marked recovered.
async fn taken_by_a_dead_worker(
    redis: &TestRedis,
    services: &queue_core::Services,
    tasks: usize,
) -> anyhow::Result<()> {
    let naps = services.queue_named("naps");
    redis.take_and_die(&naps, "dead-worker", tasks).await;
    assert_eq!(naps.recover_crashed(3).await?.requeued, tasks as u64);
    Ok(())
}

/// A worker of naps with 4 slots, running until the token is cancelled.
fn recovering_worker(
    services: &queue_core::Services,
) -> (
    std::sync::Arc<trawl_worker::Worker>,
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    use trawl_worker::{Registry, Worker, WorkerSettings};
    let mut settings = WorkerSettings::new("recovering-worker".to_owned());
    settings.block_for = Duration::from_millis(100);
    settings.concurrency = 4;
    let registry = Registry::new().register(test_support::nap::Nap);
    let worker = Worker::with_registry(services.clone(), settings, registry, Default::default())
        .expect("worker builds");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(worker.clone().run(shutdown.clone()));
    (worker, shutdown, running)
}
