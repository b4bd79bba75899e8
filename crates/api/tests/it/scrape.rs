use serde_json::json;
use sqlx::PgPool;
use test_support::{TestBoard, TestRedis, register_site};

use crate::helpers::*;

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn async_scrape_queues_a_run(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 2).await;
    let services = redis.services(&db);
    let api = spawn_api(&services).await;

    let request = json!({"site_name": "demo", "search_term": "rust", "is_remote": true, "results_wanted": 40});
    let (status, body) = read(api.post("/jobs/scrape").json(&request)).await;
    assert_eq!(status, 202, "{body}");
    let data = &body["data"];
    assert_eq!(
        (data["status"].as_str(), data["execution_mode"].as_str()),
        (Some("queued"), Some("async"))
    );
    let run_id = data["run_id"].as_str().unwrap();
    assert!(run_id.starts_with("manual_"));

    let raw: Vec<String> = test_support::redis_cmd(
        &redis.pool,
        redis::cmd("LRANGE")
            .arg(services.keys().pending())
            .arg(0)
            .arg(-1),
    )
    .await;
    let task = queue_core::Task::parse(&raw[0])?;
    let scrape = trawl_scrape_runs::ScrapeTask::from_task(&task)?;
    assert_eq!(task.run_id.as_deref(), Some(run_id));
    assert_eq!(task.task_id.as_deref(), data["task_id"].as_str());
    assert_eq!(
        (
            scrape.search_term.as_deref(),
            scrape.location.as_deref(),
            scrape.results_wanted
        ),
        (Some("rust"), Some("Remote"), Some(40))
    );

    let (status, body) = read(api.get(&format!("/jobs/scrape/{run_id}"))).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["status"], "queued");
    assert_eq!(body["data"]["run"]["trigger"], "manual");
    assert_eq!(body["data"]["postings"], json!([]));

    expect_error(
        api.post("/jobs/scrape").json(&request),
        409,
        "site_busy",
        run_id,
    )
    .await;
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn sync_scrape_returns_postings_within_the_cap(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 2).await;
    let services = redis.services(&db);
    let api = spawn_api(&services).await;

    let (status, body) = read(
        api.post("/jobs/scrape?mode=sync")
            .json(&json!({"site_name": "demo"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(
        (data["execution_mode"].as_str(), data["status"].as_str()),
        (Some("sync"), Some("succeeded"))
    );
    assert_eq!(
        data["postings"].as_array().unwrap().len(),
        25,
        "sync mode defaults to its cap"
    );
    assert_eq!(data["run"]["jobs_found"], 25);
    assert!(data["postings"][0]["job_title"].is_string());
    assert_eq!(
        services.locks.holder("demo").await?,
        None,
        "lock released after the inline run"
    );

    let (status, body) = read(
        api.post("/jobs/scrape?mode=sync")
            .json(&json!({"site_name": "demo", "results_wanted": 3})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["postings"].as_array().unwrap().len(), 3);

    let run_id = body["data"]["run_id"].as_str().unwrap();
    let (status, body) = read(api.get(&format!("/jobs/scrape/{run_id}?limit=2"))).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["run"]["jobs_found"], 3);
    assert_eq!(
        body["data"]["postings"].as_array().unwrap().len(),
        2,
        "limit applies"
    );
    let attempts = body["data"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(
        (
            &attempts[0]["attempt"],
            &attempts[0]["status"],
            &attempts[0]["worker_id"]
        ),
        (&json!(1), &json!("succeeded"), &json!("api-sync"))
    );

    // More than sync mode's cap is taken as the cap, and the run says so.
    let (status, body) = read(
        api.post("/jobs/scrape?mode=sync")
            .json(&json!({"site_name": "demo", "results_wanted": 26})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["run"]["results_wanted"], 25, "{body}");
    assert_eq!(body["data"]["postings"].as_array().unwrap().len(), 25);
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn bad_scrape_requests_get_a_4xx_with_a_message(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 2).await;
    let api = spawn_api(&redis.services(&db)).await;

    let post = || api.post("/jobs/scrape");
    expect_error(
        post().json(&json!({"site_name": "atlantis"})),
        404,
        "unknown_site",
        "unknown site: atlantis",
    )
    .await;
    expect_error(
        post().json(&json!({"site_name": "demo", "results_wanted": 0})),
        400,
        "invalid_request",
        "between 1 and 1000",
    )
    .await;
    expect_error(
        post().json(&json!({"site_name": "demo", "results_wanted": 1001})),
        400,
        "invalid_request",
        "between 1 and 1000",
    )
    .await;
    expect_error(
        api.post("/jobs/scrape?mode=turbo")
            .json(&json!({"site_name": "demo"})),
        400,
        "invalid_request",
        "mode",
    )
    .await;
    expect_error(
        post().json(&json!({"site_name": "demo", "location": "Paris", "is_remote": true})),
        400,
        "invalid_request",
        "either location or is_remote",
    )
    .await;
    expect_error(
        post().json(&json!({"site_name": "demo", "serch_term": "x"})),
        422,
        "invalid_json",
        "unknown field `serch_term`",
    )
    .await;
    expect_error(
        post().json(&json!({"search_term": "x"})),
        422,
        "invalid_json",
        "missing field `site_name`",
    )
    .await;
    expect_error(
        post()
            .header("content-type", "application/json")
            .body("{\"site_name\": "),
        400,
        "invalid_json",
        "",
    )
    .await;
    expect_error(
        post().body("site_name=demo"),
        415,
        "unsupported_media_type",
        "Content-Type",
    )
    .await;
    let huge = json!({"site_name": "demo", "search_term": "x".repeat(20_000)});
    expect_error(post().json(&huge), 413, "body_too_large", "").await;

    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM scrape_runs")
        .fetch_one(&db)
        .await?;
    assert_eq!(runs, 0, "no bad request left a run behind");
    Ok(())
}
