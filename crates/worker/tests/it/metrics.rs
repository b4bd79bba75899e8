//! Workers and schedulers serve their own `/metrics` on METRICS_BIND: attempts started, retried,
//! finished and dead-lettered per kind and queue, run durations, scheduler passes and
//! leadership, each in a text format promtool accepts.
use std::time::Duration;

use sqlx::PgPool;
use test_support::nap::{NapTask, submit_nap_task};
use test_support::procs::{Proc, free_port, workspace_binary};
use test_support::prometheus::{assert_samples, check_metrics, sample};
use test_support::{TestRedis, database_url, eventually};

async fn scrape(port: u16) -> Option<String> {
    let response = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .ok()?;
    response.text().await.ok()
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_worker_and_a_scheduler_serve_their_metrics(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    // Fails once (retryably, asking for 10 ms), then succeeds.
    submit_nap_task(
        &services,
        &NapTask {
            fail_first: 1,
            retry_after_ms: Some(10),
            ..NapTask::new(20)
        },
    )
    .await;
    let naps = services.queue_named("naps");
    naps.enqueue_raw(r#"{"kind":"nap","millis":"long"}"#)
        .await?;
    naps.enqueue_raw(r#"{"kind":"embed","posting_ids":[1]}"#)
        .await?;

    let logs = tempfile::tempdir()?;
    let (worker_port, scheduler_port) = (free_port(), free_port());
    let env = |port: u16| {
        vec![
            ("DATABASE_URL", database_url(&db)),
            ("REDIS_URL", redis.url.clone()),
            ("REDIS_PREFIX", redis.prefix.clone()),
            ("BROWSER_ENABLED", "false".to_owned()),
            ("SCHEDULER_INTERVAL", "1".to_owned()),
            ("METRICS_BIND", format!("127.0.0.1:{port}")),
        ]
    };
    let worker = Proc::spawn(
        "worker",
        &workspace_binary("trawl-test-worker"),
        &env(worker_port),
        logs.path(),
    );
    let scheduler = Proc::spawn(
        "scheduler",
        &workspace_binary("trawl-scheduler"),
        &env(scheduler_port),
        logs.path(),
    );

    let worker_metrics = eventually(Duration::from_secs(30), "the nap's success", || async {
        let text = scrape(worker_port).await?;
        let done = sample(
            &text,
            r#"trawl_tasks_finished_total{kind="nap",queue="naps",status="succeeded"}"#,
        );
        (done == Some(1.0)).then_some(text)
    })
    .await;
    assert_samples(
        &worker_metrics,
        &[
            (r#"trawl_tasks_started_total{kind="nap",queue="naps"}"#, 2.0),
            (r#"trawl_tasks_retried_total{kind="nap",queue="naps"}"#, 1.0),
            (
                r#"trawl_tasks_dead_lettered_total{kind="nap",queue="naps"}"#,
                1.0,
            ),
            // An unknown kind is counted as unknown, never under the name it gave.
            (
                r#"trawl_tasks_dead_lettered_total{kind="unknown",queue="naps"}"#,
                1.0,
            ),
            (
                r#"trawl_run_duration_seconds_count{kind="nap",status="succeeded"}"#,
                1.0,
            ),
        ],
    );
    check_metrics(&worker_metrics);

    let scheduler_metrics = eventually(Duration::from_secs(30), "a scheduler pass", || async {
        let text = scrape(scheduler_port).await?;
        (sample(&text, r#"trawl_scheduler_passes_total{result="ok"}"#)? >= 1.0).then_some(text)
    })
    .await;
    assert_samples(
        &scheduler_metrics,
        &[
            ("trawl_scheduler_is_leader", 1.0),
            ("trawl_scheduler_leader_changes_total", 1.0),
        ],
    );
    check_metrics(&scheduler_metrics);
    for process in [&worker, &scheduler] {
        process.sigterm();
    }
    Ok(())
}

/// A scrape counts its pages by outcome and its postings by what storing them did.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_scrape_counts_its_pages_and_postings(db: PgPool) -> anyhow::Result<()> {
    use test_support::{FaultAction, FaultRule, FaultTarget, TestBoard, register_site};
    let metrics = telemetry::metric::install();
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 0).await;
    // One detail page answers 404: a page error, the run partial.
    board.fail(vec![FaultRule {
        target: FaultTarget::AnyDetail,
        action: FaultAction::Status {
            status: 404,
            retry_after: None,
        },
        times: Some(1),
    }]);
    let worker = crate::helpers::worker(&services);
    crate::helpers::queue_run(&services, "demo", None, 3).await;
    crate::helpers::process_next(&worker).await;
    crate::helpers::queue_run(&services, "demo", None, 3).await;
    crate::helpers::process_next(&worker).await;

    let text = telemetry::metric::render(&metrics);
    assert_samples(
        &text,
        &[
            // Per run: robots.txt (the board has none: 404), one listing page and three detail
            // pages; the first run's 404 on a detail is not retried (a client error).
            (r#"trawl_pages_fetched_total{outcome="client_error"}"#, 3.0),
            (r#"trawl_pages_fetched_total{outcome="ok"}"#, 7.0),
            // The first run stores the three postings, one from its listing alone; the second
            // finds two unchanged and completes that one from its detail page.
            (r#"trawl_postings_total{outcome="inserted"}"#, 3.0),
            (r#"trawl_postings_total{outcome="unchanged"}"#, 2.0),
            (r#"trawl_postings_total{outcome="updated"}"#, 1.0),
            (
                r#"trawl_tasks_finished_total{kind="scrape",queue="scraping",status="partial"}"#,
                1.0,
            ),
        ],
    );
    check_metrics(&text);
    Ok(())
}

/// Requests held back by the shared per-host pacing (DOMAIN_RATE) are counted with their waits.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn pacing_waits_are_counted(db: PgPool) -> anyhow::Result<()> {
    use test_support::{TestBoard, register_site};
    let metrics = telemetry::metric::install();
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 0).await;
    // 10 requests a second to the board from all workers: robots.txt, a listing and three
    // detail pages wait their turns.
    let worker = crate::helpers::worker_with(&services, |settings| {
        settings.domain_interval = Some(Duration::from_millis(100));
    });
    crate::helpers::queue_run(&services, "demo", None, 3).await;
    let started = std::time::Instant::now();
    crate::helpers::process_next(&worker).await;
    let elapsed = started.elapsed().as_secs_f64();

    let text = telemetry::metric::render(&metrics);
    let waits = test_support::prometheus::value(&text, "trawl_pacing_wait_seconds_count");
    let waited = test_support::prometheus::value(&text, "trawl_pacing_wait_seconds_sum");
    assert!(waits >= 3.0, "{waits} waits in:\n{text}");
    assert!(
        waited >= 0.25 && waited <= elapsed,
        "waited {waited} s of a {elapsed} s run"
    );
    check_metrics(&text);
    Ok(())
}
