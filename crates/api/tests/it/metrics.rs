//! `GET /metrics`: the queues' depths read from Redis, every request counted by route and
//! status, in a text format promtool accepts.
use queue_core::{Task, Trigger};
use sqlx::PgPool;
use test_support::TestRedis;
use test_support::prometheus::{assert_samples, check_metrics, value};

use crate::helpers::*;

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn metrics_show_queue_depths_and_requests_and_pass_promtool(db: PgPool) {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    register_demo_nowhere(&db).await;
    let api = spawn_api(&services).await;

    let (status, body) = read(api.post("/jobs/scrape").json(&serde_json::json!({
        "site_name": "demo"
    })))
    .await;
    assert_eq!(status, 202, "{body}");
    let hand_made = Task::new(
        "scrape",
        Default::default(),
        "run_x".into(),
        Trigger::Manual,
    );
    services.queue.enqueue(&hand_made).await.unwrap();
    services.queue.set_paused(true).await.unwrap();
    // A path with an id: counted under its route, not the raw path.
    let (status, _) = read(api.get("/jobs/scrape/run_nope")).await;
    assert_eq!(status, 404);
    let (status, _) = read(api.get("/no/such/path")).await;
    assert_eq!(status, 404);

    let response = api.get("/metrics").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    assert_samples(
        &text,
        &[
            (r#"trawl_queue_pending{queue="scraping"}"#, 2.0),
            (r#"trawl_queue_paused{queue="scraping"}"#, 1.0),
            (r#"trawl_queue_in_flight{queue="scraping"}"#, 0.0),
            (r#"trawl_workers_alive{queue="scraping"}"#, 0.0),
            ("trawl_browser_slots_in_use", 0.0),
            ("trawl_mails_prepared_oldest_seconds", 0.0),
            (
                r#"trawl_api_requests_total{method="POST",route="/jobs/scrape",status="202"}"#,
                1.0,
            ),
            (
                r#"trawl_api_requests_total{method="GET",route="/jobs/scrape/{run_id}",status="404"}"#,
                1.0,
            ),
            (
                r#"trawl_api_requests_total{method="GET",route="unmatched",status="404"}"#,
                1.0,
            ),
        ],
    );
    assert!(
        value(
            &text,
            r#"trawl_api_request_duration_seconds_count{method="POST",route="/jobs/scrape"}"#
        ) >= 1.0
    );
    assert!(!text.contains("run_nope"), "raw paths never become labels");
    check_metrics(&text);

    // Two browser slots held somewhere in the fleet: the API's gauge reads them from Redis.
    let slots = queue_core::SlotSemaphore::new(
        services.redis.clone(),
        services.keys(),
        4,
        std::time::Duration::from_secs(30),
        std::time::Duration::from_secs(1),
        tokio_util::task::TaskTracker::new(),
    );
    assert!(slots.try_acquire("worker-a:1").await.unwrap());
    assert!(slots.try_acquire("worker-b:1").await.unwrap());
    let text = api.text("/metrics").await;
    assert_samples(&text, &[("trawl_browser_slots_in_use", 2.0)]);

    // A mail prepared two hours ago and never recorded sent: the gauge TrawlMailStuck reads.
    sqlx::query(
        "WITH s AS (INSERT INTO subscribers (email, token) VALUES ('m@example.com', gen_random_uuid()) \
             RETURNING id) \
         INSERT INTO mails (subscriber_id, kind, run_id, message_id, created_at) \
         SELECT id, 'digest', 'run_m', '<m@trawl.test>', now() - interval '2 hours' FROM s",
    )
    .execute(&db)
    .await
    .unwrap();
    let stuck = value(
        &api.text("/metrics").await,
        "trawl_mails_prepared_oldest_seconds",
    );
    assert!((7200.0..7300.0).contains(&stuck), "{stuck}");
}

/// deploy/prometheus: the scrape config and the alert rules are valid, and each alert fires
/// on the series it is meant for (`alerts_test.yml`).
#[test]
fn the_prometheus_config_and_alerts_pass_promtool() {
    use test_support::prometheus::promtool;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/prometheus");
    let file = |name: &str| format!("{dir}/{name}");
    promtool(&["check", "config", &file("prometheus.yml")], "");
    let rules = promtool(&["check", "rules", &file("alerts.yml")], "");
    assert!(rules.contains("15 rules found"), "{rules}");
    let tested = promtool(&["test", "rules", &file("alerts_test.yml")], "");
    assert!(tested.contains("SUCCESS"), "{tested}");
}

/// What recovery and the reconciler repair is counted (here by a pass through
/// `POST /scheduler/run`, served by the API's own `/metrics`) and shown in the workers panel:
/// a worker that died holding a task, a run whose task Redis lost, and one left for the next
/// pass because another session held its row.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn repairs_by_recovery_and_the_reconciler_are_counted_and_shown(db: PgPool) {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    register_demo_nowhere(&db).await;
    let api = spawn_api(&services).await;
    assert!(
        !api.text("/ui/workers").await.contains("Repaired"),
        "nothing repaired yet"
    );

    // A worker takes the scrape's task and dies.
    let (status, body) = read(api.post("/jobs/scrape").json(&serde_json::json!({
        "site_name": "demo"
    })))
    .await;
    assert_eq!(status, 202, "{body}");
    redis.take_and_die(&services.queue, "dead-worker", 1).await;
    // Runs the ledger calls queued whose task Redis no longer has, untouched for an hour; the
    // row of one is held by another session (a worker cut off mid-write) during the pass.
    for run_id in ["r-lost", "r-held"] {
        record_nap_run_without_task(&db, run_id).await;
    }
    sqlx::query("UPDATE task_runs SET updated_at = now() - interval '1 hour'")
        .execute(&db)
        .await
        .unwrap();
    let mut other = db.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM task_runs WHERE run_id = 'r-held' FOR UPDATE")
        .execute(&mut *other)
        .await
        .unwrap();

    let (status, body) = read(api.post("/scheduler/run")).await;
    assert_eq!(status, 200, "{body}");
    other.rollback().await.unwrap();
    let text = api.text("/metrics").await;
    assert_samples(
        &text,
        &[
            ("trawl_workers_presumed_dead_total", 1.0),
            (r#"trawl_tasks_recovered_total{outcome="requeued"}"#, 1.0),
            (r#"trawl_tasks_recovered_total{outcome="poisoned"}"#, 0.0),
            (r#"trawl_runs_reconciled_total{outcome="requeued"}"#, 1.0),
            (r#"trawl_runs_reconciled_total{outcome="failed"}"#, 0.0),
            (r#"trawl_runs_reconciled_total{outcome="held"}"#, 1.0),
        ],
    );
    check_metrics(&text);
    let panel = api.text("/ui/workers").await;
    assert!(
        panel.contains(
            "Repaired so far: 1 worker(s) presumed dead, 1 of their tasks requeued and 0 \
             dead-lettered as poison; 1 run(s) requeued from the ledger after Redis lost their \
             task, 0 failed as lost. 1 time(s) a lost run was left for the next pass: another \
             session held its row."
        ),
        "{panel}"
    );
}
