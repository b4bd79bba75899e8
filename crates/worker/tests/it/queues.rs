//! Queues: each kind's tasks in a queue of its own, served by weight within caps, so a
//! backlog in one queue does not hold up another.
use std::time::Duration;

use queue_core::store::{self, RunStatus};
use queue_core::{Task, Trigger};
use sqlx::PgPool;
use test_support::nap::{Nap, Snooze, submit_nap};
use test_support::{TestRedis, eventually};
use tokio_util::sync::CancellationToken;
use trawl_worker::{QueueShare, Registry, Worker, WorkerSettings};

fn settings(concurrency: usize) -> WorkerSettings {
    let mut settings =
        WorkerSettings::new(format!("test-worker-{}", uuid::Uuid::new_v4().simple()));
    settings.block_for = Duration::from_millis(200);
    settings.concurrency = concurrency;
    settings.shutdown_grace = Duration::from_millis(100);
    settings
}

fn both_kinds() -> Registry {
    Registry::new().register(Nap).register(Snooze)
}

/// The bar: 5,000 tasks waiting on one queue delay a task on another by no more than
/// one task's run time (the nap takes the first slot that frees; slack, for a loaded test
/// machine: one empty-queue poll and the round trips). In one FIFO queue it would wait for the
/// whole backlog: 1,250 s.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_backlog_on_one_queue_does_not_delay_another(db: PgPool) -> anyhow::Result<()> {
    const BACKLOG: usize = 5_000;
    const RUN_MS: u64 = 1000;
    let redis = TestRedis::new();
    let services = redis.services(&db);
    // The backlog: hand-written snoozes, as `redis-cli LPUSH` would leave them.
    let snoozes = services.queue_named("snoozes");
    let payload = serde_json::json!({"millis": RUN_MS});
    let backlog: Vec<Task> = (0..BACKLOG)
        .map(|_| {
            let mut task = Task::new(
                "snooze",
                payload.as_object().cloned().unwrap_or_default(),
                String::new(),
                Trigger::Manual,
            );
            (task.run_id, task.task_id) = (None, None);
            task
        })
        .collect();
    snoozes.enqueue_many(&backlog).await?;

    let worker = Worker::with_registry(
        services.clone(),
        settings(4),
        both_kinds(),
        Default::default(),
    )
    .expect("worker builds");
    assert_eq!(worker.queues(), vec!["naps", "snoozes"]);
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.clone().run(shutdown.clone()));
    eventually(
        Duration::from_secs(10),
        "the backlog to be worked",
        || async {
            let metrics = snoozes.metrics().await.unwrap();
            (metrics.in_flight >= 4).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(RUN_MS)).await;

    let run_id = submit_nap(&services, 10, 0).await;
    let run = eventually(Duration::from_secs(10), "the nap to finish", || async {
        let run = store::get_run(&db, &run_id).await.unwrap()?;
        (run.status == RunStatus::Succeeded).then_some(run)
    })
    .await;
    let waited = (run.started_at.unwrap() - run.created_at).to_std()?;
    println!("nap waited {waited:?} behind {BACKLOG} snoozes of {RUN_MS} ms");
    let pending = snoozes.metrics().await?.pending;
    shutdown.cancel();
    running.await?;
    assert!(
        waited < Duration::from_millis(RUN_MS + 400),
        "the nap waited {waited:?} behind the backlog"
    );
    assert!(
        pending as usize > BACKLOG - 100,
        "the backlog was still there: {pending}"
    );
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_capped_queue_leaves_its_slots_to_the_others(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    for _ in 0..6 {
        let payload = serde_json::json!({"millis": 300})
            .as_object()
            .cloned()
            .unwrap();
        let mut task = Task::new("snooze", payload, String::new(), Trigger::Manual);
        (task.run_id, task.task_id) = (None, None);
        services.queue_named("snoozes").enqueue(&task).await?;
    }
    let mut settings = settings(4);
    settings.queues = QueueShare::parse_list("snoozes:1:1,naps").map_err(anyhow::Error::msg)?;
    let worker =
        Worker::with_registry(services.clone(), settings, both_kinds(), Default::default())
            .expect("worker builds");
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.clone().run(shutdown.clone()));
    // Snoozes run one at a time however many slots are free.
    let mut most = 0;
    for _ in 0..20 {
        let busy: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM task_runs WHERE kind = 'snooze' AND status = 'running'",
        )
        .fetch_one(&db)
        .await?;
        most = most.max(busy);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    running.await?;
    assert_eq!(most, 1, "the cap held");
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_queue_no_kind_uses_is_refused_at_startup(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let mut settings = settings(2);
    settings.queues = QueueShare::parse_list("naps:2,embedings").map_err(anyhow::Error::msg)?;
    let err = Worker::with_registry(services, settings, both_kinds(), Default::default())
        .err()
        .expect("refused");
    assert!(
        err.contains("WORKER_QUEUES names queue \"embedings\"") && err.contains("naps, snoozes"),
        "{err}"
    );
    for (bad, says) in [
        ("naps:0", "the weight of \"naps\" must be a whole number"),
        ("naps:2:x", "the cap of \"naps\""),
        ("naps,naps", "names \"naps\" twice"),
        ("a:1:2:3", "is not name[:weight[:cap]]"),
    ] {
        let err = QueueShare::parse_list(bad).unwrap_err();
        assert!(err.contains(says), "{bad}: {err}");
    }
    Ok(())
}
