//! Issue 7: the ways trawl lost, blocked or hid work, each replayed against real Redis and
//! PostgreSQL, plus a fuzz over raw task bytes. Every test ends with the invariant check.
use std::time::Duration;

use queue_core::store::{self, RunStatus};
use rand::{Rng, SeedableRng};
use sqlx::PgPool;
use test_support::{
    FaultAction, FaultRule, FaultTarget, TestBoard, TestRedis, assert_invariants, eventually,
    js_listing_definition, redis_cmd, register_site, unpaused_site,
};
use tokio_util::sync::CancellationToken;
use trawl_worker::Processed;

use crate::helpers::*;

async fn lpush(redis: &TestRedis, services: &queue_core::Services, raw: &[u8]) {
    let _: i64 = redis_cmd(
        &redis.pool,
        redis::cmd("LPUSH").arg(services.keys().pending()).arg(raw),
    )
    .await;
}

/// Findings 2 and 3: a NUL in a hand-written task, and bytes that are not UTF-8, end in the
/// dead-letter list with the reason at once, as does a task of a kind this trawl does not run
/// (issue 8); the valid task of the same batch runs.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn nul_and_undecodable_tasks_are_dead_lettered_and_their_batch_runs(
    db: PgPool,
) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 0).await;
    lpush(&redis, &services, br#"{"site_name":"demo\u0000"}"#).await;
    lpush(
        &redis,
        &services,
        br#"{"site_name":"demo","search_term":"a\u0000b"}"#,
    )
    .await;
    lpush(&redis, &services, b"{\"site_name\":\"d\xffmo\"}").await;
    lpush(
        &redis,
        &services,
        br#"{"kind":"embed","posting_ids":[1,2]}"#,
    )
    .await;
    lpush(
        &redis,
        &services,
        br#"{"site_name":"demo","results_wanted":3}"#,
    )
    .await;
    let worker = worker(&services);
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.clone().run(shutdown.clone()));
    let dead = eventually(Duration::from_secs(15), "four dead letters", || async {
        let dead = services.queue.dead_letters(10).await.unwrap();
        (dead.len() == 4).then_some(dead)
    })
    .await;
    let mut reasons: Vec<&str> = dead.iter().map(|d| d.reason.as_str()).collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "invalid scrape task: search_term contains a NUL character",
            "invalid scrape task: site_name contains a NUL character",
            "task is not valid UTF-8: invalid utf-8 sequence of 1 bytes from index 15",
            "unknown kind \"embed\"; this trawl runs: career_confirm, career_detail, career_digest, career_snapshot, pipeline_batch, pipeline_stage, scrape",
        ]
    );
    eventually(Duration::from_secs(15), "the valid task's run", || async {
        let done: Option<String> =
            sqlx::query_scalar("SELECT status FROM scrape_runs WHERE status = 'succeeded'")
                .fetch_optional(&db)
                .await
                .unwrap();
        done
    })
    .await;
    until_nothing_in_flight(&services, &worker, Duration::from_secs(5)).await;
    assert_invariants(&services).await;
    shutdown.cancel();
    running.await?;
    Ok(())
}

/// Finding 2's sibling: a task whose processing fails for a reason that is not an outage (here
/// a table the worker needs is gone) is given back at most MAX_DELIVERIES times, then
/// dead-lettered with the reason, its run failed; it never goes round forever.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_task_that_can_never_be_processed_ends_dead_lettered(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 0).await;
    let task = queue_run(&services, "demo", None, 3).await;
    sqlx::query("ALTER TABLE task_run_attempts RENAME TO gone")
        .execute(&db)
        .await?;
    let worker = worker(&services);
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.clone().run(shutdown.clone()));
    let dead = eventually(Duration::from_secs(20), "the dead letter", || async {
        services.queue.dead_letters(1).await.unwrap().pop()
    })
    .await;
    assert!(
        dead.reason.starts_with("could not be processed 3 times"),
        "{}",
        dead.reason
    );
    assert!(dead.reason.contains("task_run_attempts"), "{}", dead.reason);
    // Stopped first: its own attempt to fail the run (which needs the same table) is over.
    shutdown.cancel();
    running.await?;
    sqlx::query("ALTER TABLE gone RENAME TO task_run_attempts")
        .execute(&db)
        .await?;
    // The worker could not fail the run (the same table was gone); the reconciler does, with
    // the dead letter's reason, instead of queueing the task again.
    let run_id = task.run_id.clone().unwrap();
    let reconciled = queue_core::reconcile(&services, Duration::ZERO).await?;
    assert_eq!(reconciled.failed, vec![run_id.clone()]);
    let run = run(&db, &run_id).await;
    assert_eq!(run.status.as_str(), "failed");
    assert!(
        run.message
            .as_deref()
            .unwrap()
            .starts_with("its task was dead-lettered: could not be processed"),
        "{:?}",
        run.message
    );
    let metrics = services.queue.metrics().await?;
    assert_eq!(
        (metrics.pending, metrics.delayed, metrics.in_flight),
        (0, 0, 0)
    );
    assert_invariants(&services).await;
    Ok(())
}

/// Finding 4: every path that ends a run from outside its attempt releases the site's lock:
/// a dead-lettered task with a run, a cancel before start, the reconciler giving up, a
/// timeout and a cancel while running.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn every_way_a_run_ends_releases_its_site_lock(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = services_with_timeout(&redis, &db, 1);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 0).await;
    let holder = |site: &'static str| {
        let services = services.clone();
        async move { services.locks.holder(site).await.unwrap() }
    };

    // Failed by its kind: the site's definition went bad after the run was queued.
    let task = queue_run(&services, "demo", None, 3).await;
    sqlx::query("UPDATE site_schedules SET payload = '{\"source\":\"nowhere\"}'")
        .execute(&db)
        .await?;
    assert!(matches!(
        process_next(&worker(&services)).await,
        Processed::Finished {
            status: RunStatus::Failed,
            ..
        }
    ));
    assert_eq!(
        run(&db, task.run_id.as_deref().unwrap()).await.status,
        "failed"
    );
    assert_eq!(holder("demo").await, None, "dead-lettered");
    register_site(&db, "demo", &board.url, 0).await;

    // Cancelled before it started.
    let task = queue_run(&services, "demo", None, 3).await;
    queue_core::cancel_run(&services, task.run_id.as_deref().unwrap()).await?;
    assert_eq!(holder("demo").await, None, "cancelled");
    process_next(&worker(&services)).await; // skips it

    // The reconciler gives up on a run whose task vanished after its attempts.
    let task = queue_run(&services, "demo", None, 3).await;
    let run_id = task.run_id.clone().unwrap();
    sqlx::query("UPDATE scrape_runs SET attempt = 5 WHERE run_id = $1")
        .bind(&run_id)
        .execute(&db)
        .await?;
    let _: i64 = redis_cmd(
        &redis.pool,
        redis::cmd("DEL").arg(services.keys().pending()),
    )
    .await;
    let reconciled = queue_core::reconcile(&services, Duration::ZERO).await?;
    assert_eq!(reconciled.failed, vec![run_id]);
    assert_eq!(holder("demo").await, None, "reconciler");

    // Timed out (JOB_TIMEOUT 1 s against 1.5 s pages), then cancelled while running.
    board.fail(vec![FaultRule {
        target: FaultTarget::AnyListing,
        action: FaultAction::Delay { millis: 1500 },
        times: None,
    }]);
    let task = queue_run(&services, "demo", None, 3).await;
    let processed = process_next(&worker(&services)).await;
    assert!(
        matches!(
            processed,
            Processed::Finished {
                status: RunStatus::Failed,
                ..
            }
        ),
        "{processed:?}"
    );
    assert!(
        run(&db, task.run_id.as_deref().unwrap())
            .await
            .message
            .unwrap()
            .contains("timed out")
    );
    assert_eq!(holder("demo").await, None, "timed out");
    assert_invariants(&services).await;
    Ok(())
}

/// Finding 5: a run failed from outside its attempt (poison, reconciler, cancel) counts the
/// postings linked to it, not 0/0/0.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_run_failed_from_outside_counts_its_linked_postings(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 0).await;
    let task = queue_run(&services, "demo", None, 20).await;
    let run_id = task.run_id.clone().unwrap();
    store::start_run(&db, &run_id, task.task_id.as_deref().unwrap(), "w-dead").await?;
    // The attempt stored a page, then its worker died.
    let postings: Vec<trawl_scrape::Posting> = (0..7)
        .map(|n| {
            trawl_scrape::RawPosting {
                title: Some(format!("Data engineer number {n}")),
                url: Some(format!("http://127.0.0.1/jobs/{n}")),
                ..Default::default()
            }
            .normalize(&trawl_scrape::Provenance {
                site: "demo",
                source: "demo_board",
                search_query: None,
            })
            .unwrap()
        })
        .collect();
    trawl_scrape_runs::postings::upsert_page(&db, &run_id, &postings).await?;
    assert!(queue_core::fail_run(&services, &run_id, "poison task: testing").await?);
    let run = run(&db, &run_id).await;
    assert_eq!(
        (
            run.status.as_str(),
            run.jobs_found,
            run.jobs_inserted,
            run.jobs_updated
        ),
        ("failed", 7, 7, 0)
    );
    assert_eq!(services.locks.holder("demo").await?, None);
    Ok(())
}

/// Finding 6: a detail page that fails never downgrades a posting stored whole; the run says
/// which details were missing.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_failed_detail_page_keeps_the_stored_posting(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    let payload = serde_json::json!({"source": "demo_board", "base_url": board.url.as_str(),
        "follow_details": true});
    trawl_scrape_runs::sites::upsert_site(&db, &unpaused_site("demo", payload, 0)).await?;
    let worker = worker(&services);
    queue_run(&services, "demo", Some("rust"), 2).await;
    process_next(&worker).await;
    let before: Vec<(String, Option<String>, String)> =
        sqlx::query_as("SELECT job_id::text, job_description, content_hash FROM jobs ORDER BY 1")
            .fetch_all(&db)
            .await?;
    assert_eq!(before.len(), 2);
    assert!(before.iter().all(|(_, d, _)| d.is_some()), "stored whole");

    board.fail(vec![FaultRule {
        target: FaultTarget::AnyDetail,
        action: FaultAction::Status {
            status: 500,
            retry_after: None,
        },
        times: None,
    }]);
    let task = queue_run(&services, "demo", Some("rust"), 2).await;
    process_next(&worker).await;
    let after: Vec<(String, Option<String>, String)> =
        sqlx::query_as("SELECT job_id::text, job_description, content_hash FROM jobs ORDER BY 1")
            .fetch_all(&db)
            .await?;
    assert_eq!(after, before, "nothing downgraded");
    let run = run(&db, task.run_id.as_deref().unwrap()).await;
    assert_eq!((run.jobs_updated, run.jobs_unchanged), (0, 2));
    assert!(
        run.message
            .as_deref()
            .unwrap()
            .contains("2 detail pages failed"),
        "{:?}",
        run.message
    );
    assert_eq!(
        run.error_detail["details_missing"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_invariants(&services).await;
    Ok(())
}

/// Finding 7: a listing that needs JavaScript, scraped over plain HTTP, fails with a message
/// that says why and what to try, instead of succeeding with nothing.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_javascript_listing_over_http_fails_and_says_why(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    let payload = js_listing_definition(&board.url, "http");
    trawl_scrape_runs::sites::upsert_site(&db, &unpaused_site("js-over-http", payload, 0)).await?;
    let task = queue_run(&services, "js-over-http", None, 5).await;
    let processed = process_next(&worker(&services)).await;
    assert!(
        matches!(
            processed,
            Processed::Finished {
                status: RunStatus::Failed,
                ..
            }
        ),
        "{processed:?}"
    );
    let run = run(&db, task.run_id.as_deref().unwrap()).await;
    let message = run.message.unwrap();
    assert!(
        message.starts_with("empty: page 1 matched no `item_selector`"),
        "{message}"
    );
    assert!(message.contains(r#""fetch": "browser""#), "{message}");
    assert_eq!(run.error_detail["empty_listing"], true);
    assert_eq!(run.retries, 0, "not worth a retry");
    assert_invariants(&services).await;
    Ok(())
}

/// Finding 8: a worker blocked waiting for work when the queue is paused does not start a task
/// pushed after the pause; it starts once the queue is resumed.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_task_pushed_after_pause_waits_for_resume(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 0).await;
    let worker = worker_with(&services, |s| s.block_for = Duration::from_secs(2));
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.clone().run(shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await; // idle, blocked in BLMOVE
    services.queue.set_paused(true).await?;
    let task = queue_run(&services, "demo", None, 3).await;
    let run_id = task.run_id.clone().unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        run(&db, &run_id).await.status,
        "queued",
        "nothing starts while paused"
    );
    assert_eq!(services.queue.metrics().await?.pending, 1);
    services.queue.set_paused(false).await?;
    eventually(Duration::from_secs(10), "the run after resume", || async {
        (run(&db, &run_id).await.status == "succeeded").then_some(())
    })
    .await;
    shutdown.cancel();
    running.await?;
    assert_invariants(&services).await;
    Ok(())
}

/// Fuzz over raw task bytes: random bytes, valid tasks with bytes flipped, NULs and bad UTF-8
/// spliced in. Every message ends as a run or in the dead-letter list; none stays in flight,
/// pending or delayed.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn every_raw_message_ends_as_a_run_or_a_dead_letter(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 0).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let template = br#"{"site_name":"demo","search_term":"rust","results_wanted":1}"#;
    let mut messages: Vec<Vec<u8>> = Vec::new();
    for n in 0..120 {
        let message = match n % 4 {
            0 => (0..rng.random_range(0..40)).map(|_| rng.random()).collect(),
            1 => {
                let mut m = template.to_vec();
                let at = rng.random_range(0..m.len());
                m[at] = rng.random();
                m
            }
            2 => {
                let mut m = template.to_vec();
                let at = rng.random_range(14..18);
                m.splice(at..at, [0xc3, 0x28]); // an invalid UTF-8 sequence
                m
            }
            _ => br#"{"site_name":"demo","location":"x\u0000y"}"#.to_vec(),
        };
        messages.push(message);
    }
    for message in &messages {
        lpush(&redis, &services, message).await;
    }
    let worker = worker_with(&services, |s| s.lock_wait = Duration::from_millis(300));
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.clone().run(shutdown.clone()));
    let total = messages.len() as i64;
    eventually(Duration::from_secs(60), "every message to end", || async {
        let metrics = services.queue.metrics().await.unwrap();
        let runs: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM scrape_runs WHERE status IN ('succeeded','partial','failed')",
        )
        .fetch_one(&db)
        .await
        .unwrap();
        let settled = metrics.pending == 0 && metrics.delayed == 0 && metrics.in_flight == 0;
        (settled && metrics.dead as i64 + runs == total).then_some(())
    })
    .await;
    let active: i64 =
        sqlx::query_scalar("SELECT count(*) FROM scrape_runs WHERE status IN ('queued','running')")
            .fetch_one(&db)
            .await?;
    assert_eq!(active, 0);
    assert_invariants(&services).await;
    shutdown.cancel();
    running.await?;
    Ok(())
}
