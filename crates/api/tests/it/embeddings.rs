//! Embeddings through the API: coverage, backfill, semantic / full-text / hybrid search with
//! filters, similar postings by vector, the metrics — with a real worker process embedding
//! (feature hashing) — and every bad request a 4xx naming what is wrong.
use std::time::Duration;

use serde_json::Value;
use sqlx::PgPool;
use test_support::{TestRedis, eventually};

use crate::helpers::{expect_error, read, spawn_api};

const POSTINGS: &[(&str, &str, &str)] = &[
    ("Rust engineer", "Paris", "Services in Rust and PostgreSQL"),
    (
        "Registered nurse",
        "Lyon",
        "Night shifts on a hospital ward",
    ),
    ("Pastry chef", "Paris", "Croissants and bread at dawn"),
    ("Data engineer", "Berlin", "Pipelines in Python and Airflow"),
];

async fn insert(db: &PgPool) -> Vec<uuid::Uuid> {
    let mut ids = Vec::new();
    for (n, (title, location, description)) in POSTINGS.iter().enumerate() {
        let id = uuid::Uuid::new_v4();
        sqlx::query(
            "INSERT INTO jobs (job_id, site, external_id, job_title, location, job_description, \
                               url, source, content_hash) \
             VALUES ($1, 'fixture', $2, $3, $4, $5, 'http://127.0.0.1/', 'fixture', 'h')",
        )
        .bind(id)
        .bind(n.to_string())
        .bind(title)
        .bind(location)
        .bind(description)
        .execute(db)
        .await
        .unwrap();
        ids.push(id);
    }
    ids
}

fn titles(body: &Value) -> Vec<String> {
    body["data"]["postings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["posting"]["job_title"].as_str().unwrap().to_owned())
        .collect()
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn postings_are_embedded_covered_and_searched_by_meaning_words_or_both(db: PgPool) {
    let ids = insert(&db).await;
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let api = spawn_api(&services).await;

    // No worker has registered a model yet: nothing to search by meaning, and it says so.
    expect_error(
        api.get("/jobs/postings/search?q=rust&mode=semantic"),
        409,
        "refused",
        "no active embedding model",
    )
    .await;
    let (status, body) = read(api.get("/embeddings/coverage")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["active_postings"], 4);
    assert_eq!(body["data"]["active_model"], Value::Null);

    let _worker =
        test_support::procs::WorkerProcess::start(&test_support::database_url(&db), &redis);
    let covered = eventually(
        Duration::from_secs(60),
        "every posting embedded",
        || async {
            // The backfill (what `trawl embed backfill` does) queues the runs; refused until the
            // worker has registered its model.
            let (status, _) = read(api.post("/embeddings/backfill")).await;
            let (_, body) = read(api.get("/embeddings/coverage")).await;
            let model = body["data"]["models"].get(0).cloned()?;
            (status == 202 && model["embedded"] == 4).then_some(model)
        },
    )
    .await;
    assert_eq!(covered["model"], "hashing-384");
    assert_eq!(covered["percent"], 100.0);
    assert_eq!(covered["failed"], 0);

    let (status, body) = read(
        api.get("/jobs/postings/search?q=Rust%20engineer%20Paris%20Rust%20services&mode=semantic"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["mode"], "semantic");
    assert_eq!(body["data"]["model"], "hashing-384");
    assert_eq!(titles(&body)[0], "Rust engineer");
    let (_, body) = read(api.get("/jobs/postings/search?q=nurse&mode=fulltext")).await;
    assert_eq!(titles(&body), ["Registered nurse"]);
    let (_, body) = read(api.get("/jobs/postings/search?q=engineer")).await;
    assert_eq!(body["data"]["mode"], "hybrid");
    let hybrid = titles(&body);
    assert!(
        hybrid[..2].contains(&"Rust engineer".to_owned())
            && hybrid[..2].contains(&"Data engineer".to_owned()),
        "{hybrid:?}"
    );
    // The postings API's filters apply.
    let (_, body) = read(api.get("/jobs/postings/search?q=engineer&location=Berlin&limit=5")).await;
    assert_eq!(titles(&body), ["Data engineer"]);

    let (status, body) = read(api.get(&format!(
        "/jobs/postings/{}/similar/semantic?limit=2",
        ids[0]
    )))
    .await;
    assert_eq!(status, 200, "{body}");
    let similar = body["data"]["similar"].as_array().unwrap();
    assert_eq!(similar.len(), 2);
    assert!(
        similar
            .iter()
            .all(|s| s["posting"]["job_id"] != ids[0].to_string())
    );

    // The dashboard's panel shows the same ledger.
    let panel = api.text("/ui/embeddings/coverage").await;
    for expected in ["hashing-384", "active", "4 / 4", "100.0%"] {
        assert!(panel.contains(expected), "{expected} in {panel}");
    }
    let metrics = api.text("/metrics").await;
    assert!(
        metrics.contains("trawl_embeddings_active_postings 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"trawl_embeddings_postings{model="hashing-384",state="embedded"} 4"#),
        "{metrics}"
    );

    // Bad requests.
    expect_error(
        api.get("/jobs/postings/search"),
        400,
        "invalid_request",
        "q: required",
    )
    .await;
    expect_error(
        api.get("/jobs/postings/search?q=%20"),
        400,
        "invalid_request",
        "q: required",
    )
    .await;
    expect_error(
        api.get("/jobs/postings/search?q=x&mode=magic"),
        400,
        "invalid_request",
        "mode: expected",
    )
    .await;
    expect_error(
        api.get("/jobs/postings/search?q=x&limit=0"),
        400,
        "invalid_request",
        "limit",
    )
    .await;
    expect_error(
        api.get("/jobs/postings/search?q=x&cursor=1.2"),
        400,
        "invalid_request",
        "cursor",
    )
    .await;
    expect_error(
        api.get("/embeddings/coverage?hours=0"),
        400,
        "invalid_request",
        "hours",
    )
    .await;
    expect_error(
        api.get(&format!(
            "/jobs/postings/{}/similar/semantic",
            uuid::Uuid::new_v4()
        )),
        404,
        "not_embedded",
        "no vector",
    )
    .await;
    expect_error(
        api.get("/jobs/postings/nope/similar/semantic"),
        400,
        "invalid_request",
        "job_id",
    )
    .await;
    expect_error(
        api.post("/embeddings/models/nope/activate"),
        404,
        "model_not_found",
        "nope",
    )
    .await;
    expect_error(
        api.post("/embeddings/backfill?model=nope"),
        404,
        "model_not_found",
        "nope",
    )
    .await;
    let unauthorised = api.client.post(format!("{}/embeddings/backfill", api.base));
    let (status, _) = read(unauthorised).await;
    assert_eq!(status, 401);

    // Another model made active: this API embeds queries with hashing, so semantic search
    // refuses rather than comparing vectors of two models.
    sqlx::query("INSERT INTO embedding_models (model, dimensions) VALUES ('other-model', 384)")
        .execute(&db)
        .await
        .unwrap();
    let (status, _) = read(api.post("/embeddings/models/other-model/activate")).await;
    assert_eq!(status, 200);
    expect_error(
        api.get("/jobs/postings/search?q=rust"),
        409,
        "model_mismatch",
        "other-model",
    )
    .await;
    let (_, body) = read(api.get("/jobs/postings/search?q=rust&mode=fulltext")).await;
    assert_eq!(titles(&body), ["Rust engineer"]);
}
