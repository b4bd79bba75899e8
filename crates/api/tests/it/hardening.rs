//! Issue 7 at the API's door: bad input is a 4xx naming the field, every error is the JSON
//! envelope, one rule for defaults, and a fuzz over hostile inputs that must never see a 5xx.
use reqwest::Method;
use serde_json::Value;
use sqlx::PgPool;
use test_support::{TestBoard, TestRedis, register_site, unpaused_site};

use crate::helpers::*;

/// Finding 1: a NUL anywhere is a 400 naming the field, not a 503 from PostgreSQL.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_nul_is_a_400_naming_the_field(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 0).await;
    let api = spawn_api(&services).await;
    for (body, field) in [
        (r#"{"site_name":"demo\u0000"}"#, "site_name"),
        (
            r#"{"site_name":"demo","search_term":"a\u0000"}"#,
            "search_term",
        ),
        (r#"{"site_name":"demo","location":"\u0000"}"#, "location"),
    ] {
        let request = api
            .post("/jobs/scrape")
            .header("content-type", "application/json")
            .body(body);
        expect_error(
            request,
            400,
            "invalid_request",
            &format!("{field} contains a NUL"),
        )
        .await;
    }
    expect_error(
        api.get("/jobs/scrape/abc%00def"),
        400,
        "invalid_request",
        "run_id",
    )
    .await;
    expect_error(
        api.post("/jobs/scrape/abc%00def/cancel"),
        400,
        "invalid_request",
        "run_id",
    )
    .await;
    expect_error(
        api.post("/jobs/queue/dead/x%00/retry"),
        400,
        "invalid_request",
        "id",
    )
    .await;
    Ok(())
}

/// Finding 1, second half: a database error that is not an outage is trawl's fault: a 500, not
/// a 503 blaming a dependency, and nothing internal in the answer.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_database_error_is_a_500_not_a_503(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let api = spawn_api(&services).await;
    sqlx::query("ALTER TABLE task_runs RENAME TO gone")
        .execute(&db)
        .await?;
    let (status, body) = read(api.get("/jobs/scrape/some_run")).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["code"], "internal");
    assert!(!body.to_string().contains("gone"), "no internals: {body}");
    Ok(())
}

/// Finding 9: `POST /jobs/scrape` without `results_wanted` takes the site's default, like the
/// CLI, the scheduler and hand-written tasks.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_request_without_results_wanted_takes_the_sites_default(
    db: PgPool,
) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    let payload = serde_json::json!({"source": "demo_board", "base_url": board.url.as_str(),
        "results_wanted": 5, "search_term": "rust"});
    trawl_scrape_runs::sites::upsert_site(&db, &unpaused_site("demo5", payload, 0)).await?;
    let api = spawn_api(&services).await;
    let (status, body) = read(
        api.post("/jobs/scrape")
            .json(&serde_json::json!({"site_name": "demo5"})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let run = trawl_scrape_runs::get_scrape_run(&db, body["data"]["run_id"].as_str().unwrap())
        .await?
        .unwrap();
    assert_eq!(
        (run.results_wanted, run.search_term.as_deref()),
        (Some(5), Some("rust"))
    );
    Ok(())
}

/// Finding 10: wrong methods are 405 with the envelope and an `Allow` header (before any key
/// check), and every error axum itself produces (404, 413, 415, 422, bad path) is enveloped.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn every_error_uses_the_envelope(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let api = spawn_api(&services).await;
    let url = |path: &str| format!("{}{path}", api.base);
    for (method, path) in [
        (Method::PUT, "/jobs/scrape"),
        (Method::GET, "/jobs/scrape"),
        (Method::DELETE, "/health"),
        (Method::POST, "/jobs/queue/status"),
    ] {
        let response = api.client.request(method.clone(), url(path)).send().await?;
        assert_eq!(response.status().as_u16(), 405, "{method} {path}");
        assert!(response.headers().contains_key("allow"), "{method} {path}");
        let body: Value = response.json().await?;
        assert_eq!(
            body["error"]["code"], "method_not_allowed",
            "{method} {path}: {body}"
        );
    }
    expect_error(api.get("/nowhere"), 404, "not_found", "no such endpoint").await;
    expect_error(
        api.post("/jobs/scrape")
            .header("content-type", "application/json")
            .body("x".repeat(20_000)),
        413,
        "body_too_large",
        "",
    )
    .await;
    expect_error(
        api.post("/jobs/scrape").body("{}"),
        415,
        "unsupported_media_type",
        "",
    )
    .await;
    expect_error(
        api.post("/jobs/scrape")
            .json(&serde_json::json!({"site": "demo"})),
        422,
        "invalid_json",
        "site",
    )
    .await;
    expect_error(api.get("/jobs/scrape/%FF"), 400, "invalid_request", "").await;
    Ok(())
}

/// Fuzz: hostile strings in every field, path and query parameter, and hostile bodies. No
/// answer is a 5xx, and every answer is JSON.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn hostile_input_never_gets_a_5xx(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 0).await;
    let api = spawn_api(&services).await;
    let long = "y".repeat(1 << 20);
    // As JSON string contents (already escaped where they must be).
    let strings: Vec<String> = vec![
        r"\u0000".into(),
        r"a\u0000b".into(),
        r"\ud800".into(),
        r"\udfff\ud800".into(),
        r"\uffff".into(),
        "💥".into(),
        "' OR 1=1 --".into(),
        "%00".into(),
        "../../etc/passwd".into(),
        " ".into(),
        "".into(),
        "x".repeat(5000),
    ];
    let numbers = [
        "0",
        "-1",
        "4294967296",
        "99999999999999999999999",
        "1e400",
        "-0",
        "1.5",
        "null",
        "\"5\"",
        "[]",
    ];
    let mut answers = Vec::new();
    let send = |request: reqwest::RequestBuilder| async move {
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, text)
    };
    for s in &strings {
        for field in ["site_name", "search_term", "location"] {
            let body = if field == "site_name" {
                format!(r#"{{"site_name":"{s}"}}"#)
            } else {
                format!(r#"{{"site_name":"demo","{field}":"{s}"}}"#)
            };
            answers.push((
                format!("POST {field}={s:.20}"),
                send(
                    api.post("/jobs/scrape")
                        .header("content-type", "application/json")
                        .body(body),
                )
                .await,
            ));
        }
    }
    for n in numbers {
        let body = format!(r#"{{"site_name":"demo","results_wanted":{n}}}"#);
        answers.push((
            format!("results_wanted={n}"),
            send(
                api.post("/jobs/scrape")
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await,
        ));
        answers.push((
            format!("limit={n}"),
            send(api.get(&format!("/jobs/scrape/r?limit={n}"))).await,
        ));
        answers.push((
            format!("dead limit={n}"),
            send(api.get(&format!("/jobs/queue/dead?limit={n}"))).await,
        ));
    }
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    for body in [
        deep.as_str(),
        "{",
        "null",
        "[]",
        "\"x\"",
        &format!(r#"{{"site_name":"{long}"}}"#),
    ] {
        answers.push((
            format!("body {body:.20}"),
            send(
                api.post("/jobs/scrape")
                    .header("content-type", "application/json")
                    .body(body.to_owned()),
            )
            .await,
        ));
    }
    for path in [
        "%00",
        "%FF%FE",
        "a%2Fb",
        "..%2F..",
        &"z".repeat(4000),
        "%F0%9F%92%A5",
        "%ED%A0%80",
    ] {
        for (method, route) in [
            ("GET", format!("/jobs/scrape/{path}")),
            ("POST", format!("/jobs/scrape/{path}/cancel")),
            ("POST", format!("/jobs/queue/dead/{path}/retry")),
            ("DELETE", format!("/jobs/queue/dead/{path}")),
        ] {
            let request = api
                .client
                .request(method.parse().unwrap(), format!("{}{route}", api.base))
                .bearer_auth(KEY);
            answers.push((format!("{method} {route:.40}"), send(request).await));
        }
    }
    assert!(answers.len() > 80);
    for (what, (status, text)) in &answers {
        assert!(*status < 500, "{what}: {status} {text:.200}");
        if *status >= 400 {
            let body: Value = serde_json::from_str(text)
                .unwrap_or_else(|_| panic!("{what}: not JSON: {text:.200}"));
            assert_eq!(body["status"], "error", "{what}: {body}");
        }
    }
    Ok(())
}

/// Issue 8, item 6: a client that hangs up in the middle of a sync-mode scrape leaves a run that
/// still finishes and gives its site back, never one stuck `running`.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_sync_scrape_outlives_a_client_that_hangs_up(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 0).await;
    board.fail(vec![test_support::FaultRule {
        target: test_support::FaultTarget::AnyListing,
        action: test_support::FaultAction::Delay { millis: 800 },
        times: None,
    }]);
    let api = spawn_api(&services).await;
    let hung_up = api
        .post("/jobs/scrape?mode=sync")
        .json(&serde_json::json!({"site_name": "demo", "results_wanted": 3}))
        .timeout(std::time::Duration::from_millis(200))
        .send()
        .await;
    assert!(hung_up.is_err(), "the client gave up first");
    let run = test_support::eventually(
        std::time::Duration::from_secs(10),
        "the run to finish without its client",
        || async {
            let runs: Vec<(String, String)> =
                sqlx::query_as("SELECT run_id, status FROM scrape_runs")
                    .fetch_all(&db)
                    .await
                    .unwrap();
            runs.into_iter().find(|(_, status)| status == "succeeded")
        },
    )
    .await;
    assert!(run.0.starts_with("manual_"));
    // The lock goes a moment after the status is written.
    test_support::eventually(
        std::time::Duration::from_secs(5),
        "the site's lock to be released",
        || async {
            services
                .locks
                .holder("demo")
                .await
                .unwrap()
                .is_none()
                .then_some(())
        },
    )
    .await;
    Ok(())
}

/// The dashboard's buttons with a live session and its CSRF token still refuse (403, nothing
/// done) a queue that is not a queue name and an action that does not exist.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn dashboard_buttons_refuse_unknown_queues_and_actions(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let api = spawn_api(&services).await;
    let id = "ab".repeat(32);
    services
        .queue
        .store_session(&id, "token", std::time::Duration::from_secs(60))
        .await?;
    let press = |path: &str| {
        api.client
            .post(format!("{}{path}", api.base))
            .header("Cookie", format!("trawl_session={id}"))
            .form(&[("csrf", "token")])
    };
    for (path, message) in [
        ("/ui/queues/Not%20A%20Queue/pause", "No such queue."),
        ("/ui/queues/scraping/explode", "No such action."),
        ("/ui/dead/Not%20A%20Queue/1/retry", "No such queue."),
        ("/ui/dead/scraping/1/explode", "No such action."),
    ] {
        let response = press(path).send().await?;
        assert_eq!(response.status().as_u16(), 403, "{path}");
        let page = response.text().await?;
        assert!(page.contains(message), "{path}: {page}");
    }
    // The same session and token do work on a real queue and action.
    let response = press("/ui/queues/scraping/pause").send().await?;
    assert_eq!(response.status().as_u16(), 200);
    assert!(services.queue.metrics().await?.paused);
    Ok(())
}
