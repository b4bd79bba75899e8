use queue_core::Services;
use serde_json::json;
use sqlx::PgPool;
use test_support::{TestBoard, TestRedis, register_site};

use crate::helpers::*;

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn health_reports_both_dependencies(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let api = spawn_api(&redis.services(&db)).await;
    let (status, body) = read(api.get("/health")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!({"redis": "ok", "postgres": "ok"}));

    let (status, body) = read(api.get("/jobs/health")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"]["queue"], "degraded",
        "no worker is alive: {body}"
    );
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn health_is_503_when_redis_is_unreachable(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    // Port 1 on loopback: nothing listens there.
    let mut config = redis.config("postgres://unused");
    config.redis_url = "redis://127.0.0.1:1".into();
    let broken = queue_core::create_pool(&config.redis_url, 2)?;
    let services = Services::new(db.clone(), broken, &config);
    let api = spawn_api(&services).await;
    let (status, body) = read(api.get("/health")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["data"]["redis"], "unreachable");
    assert_eq!(body["data"]["postgres"], "ok");
    assert!(body["error"]["message"].as_str().unwrap().contains("redis"));
    expect_error(
        api.get("/jobs/queue/status"),
        503,
        "unavailable",
        "backing service",
    )
    .await;
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn sites_lists_registered_sites_and_sources(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 2).await;
    let api = spawn_api(&redis.services(&db)).await;
    let (status, body) = read(api.get("/jobs/sites")).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["sites"][0]["site_name"], "demo");
    assert_eq!(body["data"]["sites"][0]["payload"]["source"], "demo_board");
    assert_eq!(body["data"]["sources"][0]["source"], "demo_board");
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn posts_need_a_valid_key(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let api = spawn_api(&redis.services(&db)).await;
    let body = json!({"site_name": "demo"});
    for path in ["/jobs/scrape", "/scheduler/run"] {
        let url = format!("{}{path}", api.base);
        expect_error(
            api.client.post(&url).json(&body),
            401,
            "unauthorized",
            "Authorization: Bearer",
        )
        .await;
        expect_error(
            api.client.post(&url).bearer_auth("wrong").json(&body),
            401,
            "unauthorized",
            "not valid",
        )
        .await;
    }
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn scheduler_run_and_status(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 2).await;
    let api = spawn_api(&redis.services(&db)).await;

    let (status, body) = read(api.post("/scheduler/run")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["data"]["due"].as_u64(),
            body["data"]["enqueued"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(body["data"]["origin"], "api");

    let (status, body) = read(api.get("/scheduler/status")).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["last_pass"]["enqueued"], 1);
    assert_eq!(body["data"]["totals"]["passes"], 1);
    assert_eq!(body["data"]["sites"][0]["site_name"], "demo");
    assert!(body["data"]["sites"][0]["next_run_at"].is_string());

    let (status, body) = read(api.get("/jobs/queue/status")).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["pending"], 1);
    assert_eq!(body["data"]["runs_by_status"]["queued"], 1);
    assert_eq!(
        body["data"]["pending_key"],
        format!("{}{{scraping}}:pending", redis.prefix)
    );
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn unknown_routes_and_runs_are_404(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let api = spawn_api(&redis.services(&db)).await;
    expect_error(api.get("/nope"), 404, "not_found", "no such endpoint").await;
    expect_error(
        api.get("/jobs/scrape/manual_missing"),
        404,
        "unknown_run",
        "manual_missing",
    )
    .await;
    expect_error(
        api.get("/jobs/scrape/x?limit=-1"),
        400,
        "invalid_request",
        "limit",
    )
    .await;
    expect_error(
        api.get("/jobs/scrape/x?bogus=1"),
        400,
        "invalid_request",
        "bogus",
    )
    .await;
    Ok(())
}

#[test]
fn the_api_refuses_to_start_without_keys() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_trawl-api"))
        .env("DATABASE_URL", "postgres://127.0.0.1:1/none")
        .env("API_KEYS", "")
        .env_remove("API_ALLOW_OPEN")
        .args(["--bind", "127.0.0.1:0"])
        .output()
        .expect("trawl-api runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("API_KEYS is empty"), "{stderr}");
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn dead_letters_can_be_listed_retried_and_deleted(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let api = spawn_api(&services).await;
    services
        .queue
        .enqueue_raw(r#"{"site_name":"demo"}"#)
        .await?;
    services.queue.enqueue_raw("not json").await?;
    let mut consumer =
        services
            .queue
            .consumer(&redis.url, "w1", std::time::Duration::from_millis(100));
    for reason in ["unknown site: demo", "malformed task JSON"] {
        let raw = consumer.next().await?.unwrap();
        services.queue.dead_letter("w1", &raw, reason).await?;
    }

    let (status, body) = read(api.get("/jobs/queue/dead?limit=10")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["data"]["total"].as_u64(), body["data"]["cap"].as_u64()),
        (Some(2), Some(10_000))
    );
    let dead = body["data"]["dead"].as_array().unwrap();
    assert_eq!(dead[0]["reason"], "malformed task JSON");
    let (garbage, demo) = (
        dead[0]["id"].as_str().unwrap(),
        dead[1]["id"].as_str().unwrap(),
    );

    let url = format!("{}/jobs/queue/dead/{demo}/retry", api.base);
    expect_error(api.client.post(&url), 401, "unauthorized", "Bearer").await;
    let (status, body) = read(api.post(&format!("/jobs/queue/dead/{demo}/retry"))).await;
    assert_eq!(
        (status, body["data"]["requeued"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    expect_error(
        api.post(&format!("/jobs/queue/dead/{demo}/retry")),
        404,
        "unknown_dead_letter",
        demo,
    )
    .await;

    let delete = format!("{}/jobs/queue/dead/{garbage}", api.base);
    expect_error(api.client.delete(&delete), 401, "unauthorized", "Bearer").await;
    let (status, _) = read(api.client.delete(&delete).bearer_auth(KEY)).await;
    assert_eq!(status, 200);
    expect_error(
        api.client.delete(&delete).bearer_auth(KEY),
        404,
        "unknown_dead_letter",
        garbage,
    )
    .await;
    expect_error(
        api.get("/jobs/queue/dead?limit=0"),
        400,
        "invalid_request",
        "limit",
    )
    .await;
    assert_eq!(services.queue.metrics().await?.dead, 0);
    assert_eq!(
        services.queue.metrics().await?.pending,
        1,
        "the retried task is queued"
    );
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn pause_resume_and_cancel_endpoints(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 2).await;
    let api = spawn_api(&redis.services(&db)).await;

    expect_error(
        api.client.post(format!("{}/jobs/queue/pause", api.base)),
        401,
        "unauthorized",
        "Bearer",
    )
    .await;
    let (status, _) = read(api.post("/jobs/queue/pause")).await;
    assert_eq!(status, 200);
    let (_, body) = read(api.get("/jobs/queue/status")).await;
    assert_eq!(body["data"]["paused"], true);
    read(api.post("/jobs/queue/resume")).await;
    let (_, body) = read(api.get("/jobs/queue/status")).await;
    assert_eq!(body["data"]["paused"], false);

    let (_, body) = read(api.post("/jobs/scrape").json(&json!({"site_name": "demo"}))).await;
    let run_id = body["data"]["run_id"].as_str().unwrap().to_owned();
    let (status, body) = read(api.post(&format!("/jobs/scrape/{run_id}/cancel"))).await;
    assert_eq!(
        (status, body["data"]["status"].as_str()),
        (200, Some("failed")),
        "{body}"
    );
    expect_error(
        api.post(&format!("/jobs/scrape/{run_id}/cancel")),
        409,
        "run_finished",
        "already ended",
    )
    .await;
    expect_error(
        api.post("/jobs/scrape/manual_nope/cancel"),
        404,
        "unknown_run",
        "manual_nope",
    )
    .await;
    Ok(())
}

/// Every queue in use has its status; the operator endpoints take `?queue=`.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn each_queue_has_its_status_and_controls(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let api = spawn_api(&services).await;
    test_support::nap::submit_nap(&services, 5, 0).await;

    let (status, body) = read(api.get("/queues")).await;
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body["data"]["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["queue"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["scraping", "naps"]);
    assert_eq!(body["data"]["queues"][1]["pending"], 1);
    // Each queue's Redis Cluster slot (CLUSTER KEYSLOT {scraping} / {naps}).
    assert_eq!(body["data"]["queues"][0]["slot"], 7515);
    assert_eq!(body["data"]["queues"][1]["slot"], 4478);

    let (status, body) = read(api.get("/jobs/queue/status?queue=naps")).await;
    assert_eq!((status, body["data"]["pending"].clone()), (200, json!(1)));
    // Without ?queue=, seed 003's shape for the scraping queue.
    let (_, body) = read(api.get("/jobs/queue/status")).await;
    assert_eq!(
        (
            body["data"]["queue"].clone(),
            body["data"]["pending"].clone()
        ),
        (json!("scraping"), json!(0))
    );
    let (status, body) = read(api.post("/jobs/queue/pause?queue=naps")).await;
    assert_eq!(status, 200, "{body}");
    assert!(services.queue_named("naps").is_paused().await?);
    assert!(!services.queue.is_paused().await?);
    expect_error(
        api.get("/jobs/queue/status?queue=%7Bbad%7D"),
        400,
        "invalid_request",
        "not a queue name",
    )
    .await;
    expect_error(
        api.get("/jobs/queue/status?queues=naps"),
        400,
        "invalid_request",
        "queues",
    )
    .await;
    Ok(())
}

/// Recurring work of any kind through the API: registered, listed, refused with the field
/// named, deleted.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn schedules_are_managed_through_the_api(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let api = spawn_api(&redis.services(&db)).await;
    let nightly = json!({"name": "nightly", "kind": "pipeline_batch", "queue": "pipeline",
                         "cron": "30 0 * * *", "payload": {"pipeline": "daily"}});
    let (status, body) = read(api.post("/schedules").json(&nightly)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["schedule"]["name"], "nightly");
    let (_, body) = read(api.get("/schedules")).await;
    assert_eq!(body["data"]["schedules"][0]["cron"], "30 0 * * *");
    let (_, body) = read(api.get("/scheduler/status")).await;
    assert_eq!(body["data"]["schedules"][0]["name"], "nightly");

    // Any JSON number in a stored payload reads back (PostgreSQL prints f64::MAX in full). No
    // kind's payload takes such a field, so the row is written below the API's kind check.
    let mut extreme = nightly.clone();
    extreme["name"] = json!("extreme");
    extreme["payload"] = json!({"low": f64::MIN, "whole": 44.0});
    queue_core::store::upsert_recurring(&db, &serde_json::from_value(extreme)?).await?;
    let (status, body) = read(api.get("/schedules")).await;
    assert_eq!(status, 200, "{body}");
    let stored = body["data"]["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|schedule| schedule["name"] == "extreme")
        .unwrap();
    assert_eq!(stored["payload"]["low"].as_f64(), Some(f64::MIN), "{body}");

    let mut bad = nightly.clone();
    bad["cron"] = json!("30 0 * *");
    expect_error(
        api.post("/schedules").json(&bad),
        400,
        "invalid_request",
        "cron",
    )
    .await;
    // A kind trawl does not run, or a payload its kind refuses, would be dead-lettered at every
    // fire: refused at upsert, naming the field.
    for (field, value, fragment) in [
        (
            "kind",
            json!("pipeline"),
            "kind \"pipeline\" is not a kind trawl runs (career_confirm, career_detail, \
             career_digest, career_snapshot, embed_batch, pipeline_batch, pipeline_stage, scrape)",
        ),
        (
            "payload",
            json!({"stages": ["collect"]}),
            "payload does not fit kind pipeline_batch: unknown field `stages`",
        ),
        // A queue no worker of the kind serves would hold its tasks for ever.
        (
            "queue",
            json!("scraping"),
            "queue \"scraping\" is not where kind pipeline_batch's tasks run: its queue is \
             \"pipeline\"",
        ),
    ] {
        let mut bad = nightly.clone();
        bad[field] = value;
        let request = api.post("/schedules").json(&bad);
        expect_error(request, 400, "invalid_request", fragment).await;
    }
    let mut bad = nightly.clone();
    bad["crn"] = json!("x");
    expect_error(
        api.post("/schedules").json(&bad),
        422,
        "invalid_json",
        "crn",
    )
    .await;
    // Left out, the queue is the kind's.
    let mut queueless = nightly.clone();
    queueless["name"] = json!("queueless");
    queueless.as_object_mut().unwrap().remove("queue");
    let (status, body) = read(api.post("/schedules").json(&queueless)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["schedule"]["queue"], "pipeline", "{body}");
    let unkeyed = api.client.post(format!("{}/schedules", api.base));
    let (status, _) = read(unkeyed.json(&nightly)).await;
    assert_eq!(status, 401, "needs a key");

    let delete = format!("{}/schedules/nightly", api.base);
    let (status, _) = read(api.client.delete(&delete).bearer_auth(KEY)).await;
    assert_eq!(status, 200);
    expect_error(
        api.client.delete(&delete).bearer_auth(KEY),
        404,
        "unknown_schedule",
        "nightly",
    )
    .await;
    Ok(())
}

/// `runs_by_status` is counted at most once a second: a run created right after a count shows
/// in the next second's, not before.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn the_queue_status_counts_runs_at_most_once_a_second(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let api = spawn_api(&redis.services(&db)).await;
    let queued = |body: &serde_json::Value| body["data"]["runs_by_status"]["queued"].as_i64();
    let (status, body) = read(api.get("/jobs/queue/status")).await;
    assert_eq!(status, 200, "{body}");
    let counted = std::time::Instant::now();
    assert_eq!(queued(&body), None, "{body}");

    record_nap_run_without_task(&db, "r-fresh").await;
    let (_, body) = read(api.get("/jobs/queue/status")).await;
    if counted.elapsed() < trawl_api::FRESH_FOR {
        assert_eq!(queued(&body), None, "the count of a second ago: {body}");
    }
    tokio::time::sleep(trawl_api::FRESH_FOR).await;
    let (_, body) = read(api.get("/jobs/queue/status")).await;
    assert_eq!(queued(&body), Some(1), "{body}");
    Ok(())
}
