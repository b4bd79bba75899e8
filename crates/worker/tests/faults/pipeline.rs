//! A worker `kill -9`'d in each stage of a batch, at the worst moment: its stage's work done and
//! written inside its transaction, the commit not yet made. The batch still completes exactly
//! once: every stage redone by another worker, each row written once.
use std::time::Duration;

use serde_json::json;
use sqlx::{PgPool, Postgres, Transaction};
use test_support::{TestBoard, TestRedis, database_url, eventually, unpaused_site};
use trawl_pipeline::{Stage, store};
use trawl_scrape_runs::sites::NewSite;

use crate::fleet::*;

/// Holds the row the stage's commit must update last: the next stage's audit row, or for the
/// export the batch itself. The stage then blocks at the end of its transaction. (NO KEY
/// UPDATE: rows that merely reference the batch, such as its records, still go in.)
async fn hold_commit(
    db: &PgPool,
    batch_id: uuid::Uuid,
    stage: Stage,
) -> Transaction<'static, Postgres> {
    let mut tx = db.begin().await.unwrap();
    match stage.next() {
        Some(next) => sqlx::query(
            "SELECT 1 FROM batch_runs WHERE batch_id = $1 AND stage = $2 FOR NO KEY UPDATE",
        )
        .bind(batch_id)
        .bind(next.as_str())
        .execute(&mut *tx)
        .await
        .unwrap(),
        None => sqlx::query("SELECT 1 FROM batches WHERE batch_id = $1 FOR NO KEY UPDATE")
            .bind(batch_id)
            .execute(&mut *tx)
            .await
            .unwrap(),
    };
    tx
}

/// The pid of the worker running `stage`'s run, once it waits on a lock (at its commit).
async fn blocked_worker(fleet: &Fleet, db: &PgPool, batch_id: uuid::Uuid, stage: Stage) -> u32 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(pid) = blocked_pid(db, batch_id, stage).await {
            return pid;
        }
        if tokio::time::Instant::now() > deadline {
            let runs = store::batch_runs(db, batch_id).await.unwrap();
            let tasks: Vec<(String, String, String)> =
                sqlx::query_as("SELECT run_id, kind, status FROM task_runs")
                    .fetch_all(db)
                    .await
                    .unwrap();
            panic!(
                "{stage} never blocked at its commit: {runs:#?}\n{tasks:?}\n{}",
                fleet.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn blocked_pid(db: &PgPool, batch_id: uuid::Uuid, stage: Stage) -> Option<u32> {
    {
        let worker: Option<String> = sqlx::query_scalar(
            "SELECT t.worker_id FROM batch_runs r JOIN task_runs t ON t.run_id = r.run_id \
             WHERE r.batch_id = $1 AND r.stage = $2 AND r.status = 'running' AND t.status = 'running'",
        )
        .bind(batch_id)
        .bind(stage.as_str())
        .fetch_optional(db)
        .await
        .unwrap()
        .flatten();
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
        )
        .fetch_one(db)
        .await
        .unwrap();
        let pid = worker?.rsplit('-').nth(1)?.parse().ok()?;
        (waiting > 0).then_some(pid)
    }
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_worker_killed_in_each_stage_leaves_the_batch_done_exactly_once(db: PgPool) {
    let redis = TestRedis::new();
    let board = TestBoard::start().await;
    let site =
        json!({"source": "demo_board", "base_url": board.url.as_str(), "follow_details": false});
    // A pipeline source only: not scraped on a schedule of its own.
    let site = NewSite {
        enabled: false,
        ..unpaused_site("demo", site, 0)
    };
    trawl_scrape_runs::sites::upsert_site(&db, &site)
        .await
        .unwrap();
    let mut fleet = Fleet::new(
        &database_url(&db),
        &redis.url,
        &redis.prefix,
        &[("JOB_TIMEOUT", "120")],
    );
    let services = fleet.services(&db);
    let definition = json!({"sources": [{"site": "demo", "queries": ["engineer", "data"], "max_per_query": 40}]});
    trawl_pipeline::upsert_pipeline(&services, "daily", definition)
        .await
        .unwrap();
    fleet.spawn_loop(2);

    // The batch recorded as its `pipeline_batch` task records it, so the first hold is in place
    // before its collect stage is queued.
    let batch_id = uuid::Uuid::new_v4();
    let pipeline = store::get_pipeline(&db, "daily").await.unwrap().unwrap();
    store::create_batch(&db, batch_id, &pipeline, queue_core::Trigger::Manual)
        .await
        .unwrap();
    // Each stage's commit is held before the stage gets there, its worker killed while it
    // waits, the hold released: the run is recovered and redone by another worker. The next
    // stage's hold is taken before this one's is released, so no stage can slip through.
    let mut hold = hold_commit(&db, batch_id, Stage::Collect).await;
    let run_id = queue_core::new_run_id(queue_core::Trigger::Manual);
    let run_id = store::assign_run(&db, batch_id, Stage::Collect, &run_id)
        .await
        .unwrap();
    trawl_pipeline::submit_stage(&services, batch_id, Stage::Collect, &run_id, 3)
        .await
        .unwrap();
    for stage in Stage::ALL {
        let pid = blocked_worker(&fleet, &db, batch_id, stage).await;
        let index = fleet
            .workers
            .iter()
            .position(|w| w.pid() == pid)
            .expect("a fleet worker");
        let mut victim = fleet.workers.remove(index);
        victim.kill9();
        fleet.spawn_worker();
        let next_hold = match stage.next() {
            Some(next) => Some(hold_commit(&db, batch_id, next).await),
            None => None,
        };
        hold.rollback().await.unwrap();
        eventually(
            Duration::from_secs(60),
            "the stage redone and ended",
            || async {
                let (status, _) = store::stage_status(&db, batch_id, stage).await.unwrap()?;
                (status != "running" && status != "queued").then_some(())
            },
        )
        .await;
        let Some(next_hold) = next_hold else { break };
        hold = next_hold;
    }
    let batch = eventually(Duration::from_secs(60), "the batch ends", || async {
        store::get_batch(&db, batch_id)
            .await
            .unwrap()
            .filter(|b| b.status != "running")
    })
    .await;
    let runs = store::batch_runs(&db, batch_id).await.unwrap();
    assert_eq!(batch.status, "success", "{runs:#?}\n{}", fleet.logs());
    for run in &runs {
        assert_eq!(
            (run.status.as_str(), run.attempt),
            ("success", 2),
            "{} was redone once: {run:?}",
            run.stage
        );
    }
    let export = runs.iter().find(|r| r.stage == "export").unwrap();
    let enriched = runs
        .iter()
        .find(|r| r.stage == "enrich")
        .unwrap()
        .jobs_enriched
        .unwrap();
    let pool = &db;
    let count = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(pool)
            .await
            .unwrap()
    };
    assert_eq!(export.jobs_inserted, Some(enriched), "{export:?}");
    assert_eq!(
        count("SELECT count(*) FROM jobs").await,
        i64::from(enriched)
    );
    assert_eq!(
        count("SELECT count(*) FROM batch_job_images").await,
        i64::from(enriched),
        "one before-image per row"
    );
    assert_eq!(
        count("SELECT count(*) FROM model_versions").await,
        1,
        "one model"
    );
    assert_eq!(
        count("SELECT count(*) FROM model_versions WHERE status = 'active'").await,
        1
    );
    assert_eq!(count("SELECT count(*) FROM batch_export_rows").await, 0);
    assert_eq!(
        count("SELECT count(*) FROM task_runs WHERE kind = 'pipeline_stage'").await,
        5,
        "one run per stage, however often it was delivered"
    );
    let collected = runs[0].jobs_collected.unwrap();
    assert_eq!(
        count("SELECT count(*) FROM batch_records WHERE stage = 'collect'").await,
        i64::from(collected)
    );
    test_support::assert_invariants(&services).await;
}
