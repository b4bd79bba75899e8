use std::time::Duration;

use sqlx::PgPool;
use test_support::{TestBoard, TestRedis, eventually, redis_cmd, register_site};
use tokio_util::sync::CancellationToken;
use trawl_worker::Processed;

use crate::helpers::*;

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn bad_tasks_are_dead_lettered_and_the_worker_goes_on(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 2).await;
    let worker = worker(&services);
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.clone().run(shutdown.clone()));

    // Exactly what an operator would type into redis-cli, bad ones first.
    let queue = &services.queue;
    queue.enqueue_raw("{this is not json").await?;
    queue.enqueue_raw(r#"{"site_name":"nowhere"}"#).await?;
    queue
        .enqueue_raw(r#"{"site_name":"demo","results_wanted":5000}"#)
        .await?;
    queue
        .enqueue_raw(r#"{"site_name":"demo","search_term":"rust","results_wanted":5}"#)
        .await?;

    let run = eventually(
        Duration::from_secs(20),
        "the manual run to finish",
        || async {
            let runs: Vec<(String, String, String, Option<String>)> =
                sqlx::query_as("SELECT run_id, trigger, status, search_term FROM scrape_runs")
                    .fetch_all(&db)
                    .await
                    .unwrap();
            runs.into_iter().find(|r| r.2 == "succeeded")
        },
    )
    .await;
    assert!(run.0.starts_with("manual_"));
    assert_eq!((run.1.as_str(), run.3.as_deref()), ("manual", Some("rust")));
    assert_eq!(
        trawl_scrape_runs::get_scrape_run(&db, &run.0)
            .await?
            .unwrap()
            .jobs_found,
        5
    );

    // Tasks run concurrently, so dead letters arrive in any order.
    let mut dead = queue.dead_letters(10).await?;
    dead.sort_by(|a, b| a.reason.cmp(&b.reason));
    let reasons: Vec<&str> = dead.iter().map(|d| d.reason.as_str()).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons[0].starts_with("invalid scrape task: results_wanted"),
        "{}",
        reasons[0]
    );
    assert!(
        reasons[1].starts_with("malformed task JSON"),
        "{}",
        reasons[1]
    );
    assert_eq!(reasons[2], "unknown site: nowhere");
    assert_eq!(
        dead[1].task, "{this is not json",
        "the message is kept as it was"
    );

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), running).await??;
    let workers: Vec<String> = redis_cmd(
        &redis.pool,
        redis::cmd("ZRANGE")
            .arg(services.keys().workers())
            .arg(0)
            .arg(-1),
    )
    .await;
    assert!(
        workers.is_empty(),
        "a worker that stopped cleanly deregisters"
    );
    assert!(queue.inflight(worker.id()).await?.is_empty());
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_hand_written_task_becomes_a_manual_run(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 2).await;
    let worker = worker(&services);

    services
        .queue
        .enqueue_raw(r#"{"site_name":"demo","search_term":"python","results_wanted":3}"#)
        .await?;
    let Processed::Finished { run_id, status } = process_next(&worker).await else {
        panic!("not finished")
    };
    assert_eq!(status, queue_core::store::RunStatus::Succeeded);
    let run = run(&db, &run_id).await;
    assert_eq!(
        (
            run.trigger.as_str(),
            run.search_term.as_deref(),
            run.results_wanted
        ),
        ("manual", Some("python"), Some(3))
    );
    assert_eq!(run.jobs_found, 3);
    assert!(run.task_id.as_deref().unwrap().starts_with("task_"));
    assert_eq!(services.locks.holder("demo").await?, None);
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_task_for_a_busy_site_waits_in_the_delayed_set_then_fails_as_busy(
    db: PgPool,
) -> anyhow::Result<()> {
    let metrics = telemetry::metric::install();
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 2).await;
    let worker = worker(&services);
    assert!(
        services
            .locks
            .acquire("demo", "someone_else", Duration::from_secs(60))
            .await?
    );

    services
        .queue
        .enqueue_raw(r#"{"site_name":"demo","results_wanted":3}"#)
        .await?;
    // It waits in the delayed set, holding no worker slot, trying the lock again each second,
    // until LOCK_WAIT (2 s here) after its run was created.
    let mut waits = 0;
    let (run_id, status) = loop {
        match process_next(&worker).await {
            Processed::WaitingForLock { holder, .. } => {
                assert_eq!(holder, "someone_else");
                waits += 1;
                let metrics = services.queue.metrics().await?;
                assert_eq!((metrics.delayed, metrics.in_flight), (1, 0));
                until_retry_due(&services).await;
            }
            Processed::Finished { run_id, status } => break (run_id, status),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(waits >= 2, "waited {waits} times");
    // Each wait counted, under the scrape kind and the reason.
    let text = telemetry::metric::render(&metrics);
    let counted: Vec<&str> = text
        .lines()
        .filter(|line| {
            line.starts_with("trawl_tasks_deferred_total{")
                && line.contains(r#"kind="scrape""#)
                && line.contains(r#"reason="run_lock""#)
        })
        .collect();
    assert_eq!(counted.len(), 1, "{text}");
    assert!(counted[0].ends_with(&format!(" {waits}")), "{counted:?}");
    assert_eq!(status, queue_core::store::RunStatus::Failed);
    let run = run(&db, &run_id).await;
    assert!(
        run.message
            .unwrap()
            .contains("busy: run someone_else held demo")
    );
    assert_eq!(
        board.board.requests().listing,
        0,
        "never two runs of one site at once"
    );
    assert_eq!(
        services.locks.holder("demo").await?.as_deref(),
        Some("someone_else")
    );

    // Once the other run lets go, a waiting task runs.
    services
        .queue
        .enqueue_raw(r#"{"site_name":"demo","results_wanted":3}"#)
        .await?;
    assert!(matches!(
        process_next(&worker).await,
        Processed::WaitingForLock { .. }
    ));
    services.locks.release("demo", "someone_else").await?;
    until_retry_due(&services).await;
    assert!(matches!(
        process_next(&worker).await,
        Processed::Finished {
            status: queue_core::store::RunStatus::Succeeded,
            ..
        }
    ));
    Ok(())
}
