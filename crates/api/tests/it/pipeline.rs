//! The pipeline through the API: define, run (a worker in-process), watch, search with the
//! model, roll back; and every bad request a 4xx naming what is wrong.
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use test_support::{TestBoard, TestRedis, eventually, unpaused_site};

use crate::helpers::{KEY, expect_error, read, spawn_api};

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_pipeline_is_defined_run_watched_searched_and_rolled_back(db: PgPool) {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    let site =
        json!({"source": "demo_board", "base_url": board.url.as_str(), "follow_details": true});
    trawl_scrape_runs::sites::upsert_site(&db, &unpaused_site("demo", site, 0))
        .await
        .unwrap();
    let api = spawn_api(&services).await;
    let put = |name: &str, body: Value| {
        api.client
            .put(format!("{}/pipelines/{name}", api.base))
            .bearer_auth(KEY)
            .json(&body)
    };

    expect_error(
        put("daily", json!({"sources": [{"site": "nowhere"}]})),
        400,
        "invalid_definition",
        "sources[0].site",
    )
    .await;
    expect_error(
        put(
            "daily",
            json!({"sources": [{"site": "demo"}], "cron": "99 * * * *"}),
        ),
        400,
        "invalid_definition",
        "cron",
    )
    .await;
    expect_error(
        put(
            "daily",
            json!({"sources": [{"site": "demo"}], "stages": {"collect": {"sla_seconds": 0}}}),
        ),
        400,
        "invalid_definition",
        "stages",
    )
    .await;
    expect_error(
        api.client
            .put(format!("{}/pipelines/daily", api.base))
            .json(&json!({})),
        401,
        "unauthorized",
        "",
    )
    .await;
    expect_error(
        api.post("/pipeline/nothing/runs"),
        404,
        "no_such_pipeline",
        "nothing",
    )
    .await;
    expect_error(
        api.get("/pipeline/batches/not-a-uuid"),
        400,
        "invalid_request",
        "batch_id",
    )
    .await;
    expect_error(
        api.get("/jobs/postings?q=rust&rank=tfidf"),
        409,
        "no_model",
        "run the pipeline",
    )
    .await;
    expect_error(
        api.get("/jobs/postings?rank=tfidf"),
        400,
        "invalid_request",
        "needs q",
    )
    .await;

    let (status, body) = read(put(
        "daily",
        json!({"sources": [{"site": "demo", "queries": ["engineer"], "max_per_query": 20}]}),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["pipeline"]["definition"]["cron"], "30 0 * * *");

    let _worker =
        test_support::procs::WorkerProcess::start(&test_support::database_url(&db), &redis);

    let (status, body) = read(api.post("/pipeline/daily/runs")).await;
    assert_eq!(status, 202, "{body}");
    let batch_id = body["data"]["batch_id"].as_str().unwrap().to_owned();
    let batch = eventually(Duration::from_secs(60), "the batch succeeds", || async {
        let (_, body) = read(api.get(&format!("/pipeline/batches/{batch_id}"))).await;
        (body["data"]["batch"]["status"] == "success").then_some(body)
    })
    .await;
    let stages = batch["data"]["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 5);
    assert_eq!(stages[4]["jobs_inserted"], 20);

    let (_, status) = read(api.get("/pipeline/status?pipeline=daily")).await;
    assert_eq!(status["data"]["latest"]["batch"]["status"], "success");
    assert_eq!(status["data"]["success_rate"][0]["success_rate"], 100.0);
    assert_eq!(status["data"]["stage_times"].as_array().unwrap().len(), 5);

    let (_, models) = read(api.get("/models")).await;
    let version = models["data"]["models"][0]["model_version"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(models["data"]["models"][0]["status"], "active");

    let (status, ranked) =
        read(api.get("/jobs/postings?q=rust%20engineer&rank=tfidf&limit=5")).await;
    assert_eq!(status, 200, "{ranked}");
    let hits = ranked["data"]["postings"].as_array().unwrap();
    assert!(!hits.is_empty() && hits.len() <= 5);
    assert!(
        hits.windows(2)
            .all(|w| w[0]["score"].as_f64() >= w[1]["score"].as_f64())
    );
    let job_id = hits[0]["posting"]["job_id"].as_str().unwrap().to_owned();
    let (status, similar) =
        read(api.get(&format!("/jobs/postings/{job_id}/similar?limit=3"))).await;
    assert_eq!(status, 200, "{similar}");
    assert_eq!(similar["data"]["model_version"], version.as_str());
    assert!(
        similar["data"]["similar"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["posting"]["job_id"] != job_id.as_str())
    );
    expect_error(
        api.get(&format!("/jobs/postings/{}/similar", uuid::Uuid::new_v4())),
        404,
        "not_vectorized",
        "",
    )
    .await;

    expect_error(
        api.post("/models/tfidf_v20000101_000000/activate"),
        409,
        "refused",
        "no model",
    )
    .await;
    let (status, _) = read(api.post(&format!("/models/{version}/activate"))).await;
    assert_eq!(status, 200);

    expect_error(
        api.post(&format!("/pipeline/batches/{batch_id}/rerun?from=export")),
        409,
        "refused",
        "failed or stopped",
    )
    .await;
    // An unknown batch, with no stage before `collect` to check: 404, not a failed read.
    expect_error(
        api.post(&format!(
            "/pipeline/batches/{}/rerun?from=collect",
            uuid::Uuid::new_v4()
        )),
        404,
        "no_such_batch",
        "no batch",
    )
    .await;
    expect_error(
        api.post(&format!("/pipeline/batches/{batch_id}/rerun?from=nowhere")),
        400,
        "invalid_request",
        "from",
    )
    .await;
    // The dashboard's page: the batch with a bar per stage, and the batch's audit page.
    let panel = api.text("/ui/pipeline/batches").await;
    assert!(
        panel.contains(&batch_id[..8]) && panel.contains(&version),
        "{panel}"
    );
    assert_eq!(
        panel.matches("class=\"bar succeeded\"").count(),
        5,
        "{panel}"
    );
    let page = api.text(&format!("/ui/pipeline/batches/{batch_id}")).await;
    assert!(
        page.contains("Validation report") && page.contains("Pass rate: 100.0%"),
        "{page}"
    );
    let page = api.text("/ui/pipeline").await;
    assert!(page.contains("hx-get=\"/ui/pipeline/batches\""), "{page}");

    let (status, undone) = read(api.post(&format!("/pipeline/batches/{batch_id}/rollback"))).await;
    assert_eq!(status, 200, "{undone}");
    assert_eq!(undone["data"]["deleted"], 20);
    expect_error(
        api.post(&format!("/pipeline/batches/{batch_id}/rollback")),
        409,
        "refused",
        "rolled_back",
    )
    .await;
    let (_, list) = read(api.get("/pipeline/batches?pipeline=daily")).await;
    assert_eq!(list["data"]["batches"][0]["status"], "rolled_back");
}
