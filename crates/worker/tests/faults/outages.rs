//! Redis restarted empty and PostgreSQL stopped, under load: no process exits, /health says
//! what is down and recovers by itself, and every run ends with nothing lost or doubled.
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use test_support::procs::{OwnPostgres, OwnRedis, free_port};
use test_support::{TestBoard, TestRedis, database_url, eventually};

use crate::fleet::*;

/// Lines a worker logs when its dequeue fails: once per outage, not once per retry.
const DEQUEUE_FAILED: &str = "cannot take tasks from redis";

/// Nap runs (the second kind) in each outage test's load.
const NAPS: usize = 30;

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn redis_restarted_empty_under_load_loses_no_run(db: PgPool) {
    const SITES: usize = 60;
    let mut redis = OwnRedis::start();
    let board = TestBoard::start().await;
    slow_details(&board, 60);
    register_sites(&db, &board, "load", SITES).await;
    let api_port = free_port();
    let mut fleet = Fleet::new(&database_url(&db), &redis.url(), "trawl:", &[]);
    submit_naps(&fleet, &db, NAPS).await;
    fleet.spawn_api(api_port);
    fleet.spawn_loop(2);
    some_runs_done(&db, 10).await;
    assert_eq!(health_status(api_port).await, Some(200));

    // SIGKILL, no persistence: queue, in-flight lists, locks and heartbeats are all gone.
    redis.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        health_status(api_port).await,
        Some(503),
        "/health reports Redis down"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    fleet.assert_all_running("while Redis was down");
    redis.start_again();

    // Runs whose task was lost come back through the reconciler (RECONCILE_GRACE = 3 s).
    recovers_and_completes(&db, &mut fleet, api_port, SITES, "after Redis came back").await;
    for worker in &fleet.workers {
        assert_eq!(
            worker.log_count(DEQUEUE_FAILED),
            1,
            "{} logs the outage once; log:\n{}",
            worker.name,
            worker.log_tail(30)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_for_ten_seconds_under_load_loses_no_run() {
    const SITES: usize = 40;
    let (postgres, db) = own_database().await;
    let redis = TestRedis::new();
    let board = TestBoard::start().await;
    slow_details(&board, 100);
    register_sites(&db, &board, "load", SITES).await;
    let api_port = free_port();
    let mut fleet = Fleet::new(&postgres.url("trawl"), &redis.url, &redis.prefix, &[]);
    submit_naps(&fleet, &db, NAPS).await;
    fleet.spawn_api(api_port);
    fleet.spawn_loop(2);
    some_runs_done(&db, 5).await;

    stop(&postgres).await;
    assert_eq!(
        health_status(api_port).await,
        Some(503),
        "/health reports PostgreSQL down"
    );
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        fleet.assert_all_running("while PostgreSQL was down");
    }
    start_again(&postgres).await;

    recovers_and_completes(
        &db,
        &mut fleet,
        api_port,
        SITES,
        "after PostgreSQL came back",
    )
    .await;
}

/// /health turns 200 again, every run ends with nothing lost or doubled, and no process exits.
async fn recovers_and_completes(
    db: &PgPool,
    fleet: &mut Fleet,
    api_port: u16,
    sites: usize,
    when: &str,
) {
    eventually(Duration::from_secs(20), "/health to recover", || async {
        (health_status(api_port).await == Some(200)).then_some(())
    })
    .await;
    let all = (sites + NAPS) as i64;
    until_terminal(db, fleet, all, Duration::from_secs(120), |f| {
        f.assert_all_running(when)
    })
    .await;
    assert_exactly_once(db, sites as i64, NAPS as i64).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_cannot_store_its_result_keeps_the_task_and_retries_the_write() {
    let (postgres, db) = own_database().await;
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    // One run of about 2 s: its postings are stored at its end, while PostgreSQL is down.
    slow_details(&board, 250);
    register_sites(&db, &board, "slow", 1).await;
    let mut fleet = Fleet::new(&postgres.url("trawl"), &redis.url, &redis.prefix, &[]);
    fleet.spawn_loop(1);
    eventually(Duration::from_secs(20), "the run to start", || async {
        (statuses(&db).await.get("running") == Some(&1)).then_some(())
    })
    .await;

    stop(&postgres).await;
    // Long enough for the store to fail (pool acquire time-out, 5 s) and the worker to start
    // retrying the write; all along, the task stays in the worker's in-flight list.
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let metrics = services.queue.metrics().await.unwrap();
        assert_eq!(
            (metrics.in_flight, metrics.pending, metrics.delayed),
            (1, 0, 0),
            "the unstored result's task is neither acked nor given away"
        );
        fleet.assert_all_running("while PostgreSQL was down");
    }
    start_again(&postgres).await;

    until_terminal(&db, &mut fleet, 1, Duration::from_secs(60), |_| {}).await;
    assert_exactly_once(&db, 1, 0).await;
    assert_eq!(
        fleet.workers[0].log_count("cannot store the run's result"),
        1,
        "logged once for the outage; log:\n{}",
        fleet.workers[0].log_tail(20)
    );
}

/// A PostgreSQL cluster of the test's own with a migrated `trawl` database, and a pool on it.
async fn own_database() -> (Arc<OwnPostgres>, PgPool) {
    let postgres = Arc::new(
        tokio::task::spawn_blocking(OwnPostgres::start)
            .await
            .unwrap(),
    );
    let db = migrated_database(&postgres).await;
    (postgres, db)
}

async fn stop(postgres: &Arc<OwnPostgres>) {
    let postgres = postgres.clone();
    tokio::task::spawn_blocking(move || postgres.stop())
        .await
        .unwrap();
}

async fn start_again(postgres: &Arc<OwnPostgres>) {
    let postgres = postgres.clone();
    tokio::task::spawn_blocking(move || postgres.start_again())
        .await
        .unwrap();
}
