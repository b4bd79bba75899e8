//! The fleet on a Redis Cluster of 3 masters and 3 replicas on loopback: queues served by
//! different masters, a queue's slot moved live (ASK, then MOVED), and a master SIGKILLed under
//! load with writes its replica never got — every run ends once, the lost tasks found again by
//! the reconciler from PostgreSQL.
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use test_support::cluster::OwnCluster;
use test_support::{TestBoard, database_url, eventually, redis_cmd};

use crate::fleet::*;

/// Scrape runs of the load (queue `scraping`).
const SITES: usize = 20;

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn queues_on_different_masters_and_a_slot_moved_live_lose_nothing(db: PgPool) {
    const NAPS: usize = 60;
    let cluster = OwnCluster::start(3, 1);
    let scraping = cluster.keyslot("{scraping}");
    let naps = cluster.keyslot("{naps}");
    // The slot trawl reports for a queue (`GET /queues`, `trawl queue list`) is Redis's.
    assert_eq!(scraping, queue_core::Keys::new("trawl:", "scraping").slot());
    let (scraping_master, naps_master) = (
        cluster.master_of_slot(scraping).unwrap(),
        cluster.master_of_slot(naps).unwrap(),
    );
    assert_ne!(
        scraping_master, naps_master,
        "queues `scraping` (slot {scraping}) and `naps` (slot {naps}) are served by different masters"
    );
    let board = TestBoard::start().await;
    slow_details(&board, 40);
    register_sites(&db, &board, "load", SITES).await;
    let mut fleet = Fleet::new(&database_url(&db), &cluster.url(), "trawl:", &[]);
    submit_naps(&fleet, &db, NAPS).await;
    fleet.spawn_loop(2);
    some_runs_done(&db, 10).await;

    // The third master takes `scraping` while tasks of it are pending and in flight.
    let third = cluster
        .masters()
        .into_iter()
        .find(|port| *port != scraping_master && *port != naps_master)
        .expect("a third master");
    let moved = cluster.move_slot(scraping, third);
    assert!(moved > 0, "the slot held the queue's keys when it moved");
    assert_eq!(cluster.master_of_slot(scraping), Some(third));

    until_terminal(
        &db,
        &mut fleet,
        (SITES + NAPS) as i64,
        Duration::from_secs(120),
        |f| f.assert_all_running("after the slot moved"),
    )
    .await;
    assert_exactly_once(&db, SITES as i64, NAPS as i64).await;
    test_support::assert_invariants(&fleet.services(&db)).await;
    // No script or pipeline of any kind's run touched keys of two slots (Redis refuses those
    // with CROSSSLOT and counts the refusal).
    for node in &cluster.nodes {
        let errors: String = cluster
            .on(node.port, redis::cmd("INFO").arg("errorstats"))
            .unwrap();
        assert!(
            !errors.contains("CROSSSLOT"),
            "node {}: {errors}",
            node.port
        );
    }
    stop_cleanly(
        fleet.workers.iter_mut().chain(&mut fleet.schedulers),
        Duration::from_secs(20),
    );
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_master_killed_under_load_loses_no_run(db: PgPool) {
    // Enough 300 ms naps for 8 slots to be still busy when the master dies.
    const NAPS: usize = 150;
    /// Naps submitted while the master's replica is frozen: acknowledged, never replicated.
    const LOST: usize = 10;
    let mut cluster = OwnCluster::start(3, 1);
    let slot = cluster.keyslot("{naps}");
    let master = cluster.master_of_slot(slot).unwrap();
    let replica = cluster.replicas_of(master)[0];
    let board = TestBoard::start().await;
    slow_details(&board, 40);
    register_sites(&db, &board, "load", SITES).await;
    let mut fleet = Fleet::new(&database_url(&db), &cluster.url(), "trawl:", &[]);
    let services = fleet.services(&db);
    for _ in 0..NAPS {
        test_support::nap::submit_nap(&services, 300, 0).await;
    }
    fleet.spawn_loop(2);
    some_runs_done(&db, 5).await;

    // The replica stops reading; 32 MB written to the master fill the socket buffers between
    // them, so what comes next waits in the master's own memory: acknowledged, not replicated.
    cluster.freeze(replica);
    let filler = "x".repeat(8 << 20);
    for n in 0..4 {
        let _: () = redis_cmd(
            &services.redis,
            redis::cmd("SET")
                .arg(format!("trawl:{{naps}}:filler:{n}"))
                .arg(&filler),
        )
        .await;
    }
    let mut lost = Vec::new();
    for _ in 0..LOST {
        lost.push(test_support::nap::submit_nap(&services, 300, 0).await);
    }
    let killed_at: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&db)
        .await
        .unwrap();
    let clock = Instant::now();
    cluster.kill(master);
    cluster.thaw(replica);

    let promoted = eventually(
        Duration::from_secs(30),
        "the replica to take over",
        || async { (cluster.master_of_slot(slot) == Some(replica)).then(|| clock.elapsed()) },
    )
    .await;
    let promoted_at: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&db)
        .await
        .unwrap();
    // Every lost nap is back in the ledger's hands (requeued or started) once the reconciler
    // has seen it; the last of them marks the end of the recovery.
    let reconciled = eventually(
        Duration::from_secs(60),
        "the lost naps to be requeued",
        || async {
            let recovered: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM task_runs WHERE run_id = ANY($1) \
             AND (attempt > 0 OR message LIKE 're-enqueued by the reconciler%')",
            )
            .bind(&lost)
            .fetch_one(&db)
            .await
            .unwrap();
            (recovered == LOST as i64).then(|| clock.elapsed())
        },
    )
    .await;
    let all = (SITES + NAPS + LOST) as i64;
    until_terminal(&db, &mut fleet, all, Duration::from_secs(120), |f| {
        f.assert_all_running("after the failover")
    })
    .await;
    let terminal = clock.elapsed();
    let first_served: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT min(a.started_at) FROM task_run_attempts a JOIN task_runs r USING (run_id) \
         WHERE r.queue = 'naps' AND a.started_at > $1",
    )
    .bind(promoted_at)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_exactly_once(&db, SITES as i64, (NAPS + LOST) as i64).await;

    // The reconciler, not a replica, brought back the writes the master took with it.
    let reconciled_lines = fleet.schedulers[0].log_lines("\"reconciled\"");
    for run_id in &lost {
        assert!(
            reconciled_lines
                .iter()
                .any(|line| line.contains(run_id.as_str())),
            "lost nap {run_id} was requeued by the reconciler; reconciled:\n{}",
            reconciled_lines.join("\n")
        );
    }
    // Acks and retries the old master took with it leave entries in live workers' in-flight
    // lists; each worker's in-flight audit clears them (5 heartbeat TTLs, 5 s here).
    let consistent = eventually(
        Duration::from_secs(30),
        "Redis to agree with the ledger",
        || async {
            test_support::violations(&services)
                .await
                .is_empty()
                .then(|| clock.elapsed())
        },
    )
    .await;
    let first_served = first_served.expect("a nap started after the promotion") - killed_at;
    println!(
        "failover: master SIGKILLed; replica promoted after {:.2} s; first nap taken from the \
         new master (started after the promotion was seen) after {:.2} s; last of {LOST} lost naps requeued by the reconciler after \
         {:.2} s; all {all} runs terminal after {:.2} s ({} reconciled runs in all); Redis agrees \
         with the ledger after {:.2} s",
        promoted.as_secs_f64(),
        first_served.num_milliseconds() as f64 / 1000.0,
        reconciled.as_secs_f64(),
        terminal.as_secs_f64(),
        reconciled_lines.len(),
        consistent.as_secs_f64(),
    );
    let stale: usize = fleet
        .workers
        .iter()
        .map(|worker| worker.log_count("\"stale_in_flight\""))
        .sum();
    println!("failover: {stale} stale in-flight entries cleared by the workers' audits");
    stop_cleanly(
        fleet.workers.iter_mut().chain(&mut fleet.schedulers),
        Duration::from_secs(20),
    );
}
