//! Career pages and subscribers through the API: companies added, imported and checked, the
//! snapshots listed, subscribers confirmed and unsubscribed by their links, the mails and the
//! dashboard panel — and every bad request a 4xx naming what is wrong.
use sqlx::PgPool;
use test_support::TestRedis;

use crate::helpers::{expect_error, read, spawn_api};

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn companies_are_added_imported_listed_and_checked(db: PgPool) {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let api = spawn_api(&services).await;
    let company = serde_json::json!({"name": "Acme", "url": "https://acme.example/careers",
        "next_page": "a.next", "cron": "0 7 * * 1-5", "time_zone": "Europe/Paris"});
    let (status, body) = read(api.post("/careers/companies").json(&company)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["company"]["slug"], "acme");
    assert_eq!(body["data"]["company"]["cron"], "0 7 * * 1-5");
    let csv = serde_json::json!({"csv": "company,url\nGlobex,https://globex.example/jobs\n"});
    let (status, body) = read(api.post("/careers/companies/import").json(&csv)).await;
    assert_eq!(
        (status, body["data"]["imported"][0].clone()),
        (201, "globex".into()),
        "{body}"
    );
    let (_, body) = read(api.get("/careers/companies")).await;
    assert_eq!(body["data"]["companies"].as_array().unwrap().len(), 2);

    let (status, body) = read(api.post("/careers/companies/acme/snapshot")).await;
    assert_eq!(status, 202, "{body}");
    assert!(
        body["data"]["run_id"]
            .as_str()
            .unwrap()
            .starts_with("manual_")
    );
    expect_error(
        api.post("/careers/companies/acme/snapshot"),
        409,
        "busy",
        "career:acme",
    )
    .await;
    expect_error(
        api.post("/careers/companies/nobody/snapshot"),
        404,
        "company_not_found",
        "nobody",
    )
    .await;
    let (status, body) = read(api.post("/careers/companies/globex/disable")).await;
    assert_eq!(
        (status, body["data"]["enabled"].clone()),
        (200, false.into())
    );
    let (status, body) = read(api.get("/careers/snapshots?company=acme&limit=5")).await;
    assert_eq!(
        (status, body["data"]["snapshots"].as_array().unwrap().len()),
        (200, 0)
    );

    let bad = serde_json::json!({"name": "Local", "url": "http://10.0.0.1/careers"});
    // The test API allows private addresses (CAREERS_ALLOW_PRIVATE); the scheme is still checked.
    let ftp = serde_json::json!({"name": "Ftp", "url": "ftp://acme.example/jobs"});
    expect_error(
        api.post("/careers/companies").json(&ftp),
        400,
        "invalid_request",
        "http or https",
    )
    .await;
    let (status, _) = read(api.post("/careers/companies").json(&bad)).await;
    assert_eq!(status, 201, "allowed on this deployment");
    let broken = serde_json::json!({"csv": "company,url\nA,https://a.example\nB,gopher://b\n"});
    expect_error(
        api.post("/careers/companies/import").json(&broken),
        400,
        "invalid_request",
        "line 3",
    )
    .await;
    let unknown = serde_json::json!({"name": "A", "url": "https://a.example", "colour": "red"});
    expect_error(
        api.post("/careers/companies").json(&unknown),
        422,
        "invalid_json",
        "colour",
    )
    .await;
    expect_error(
        api.get("/careers/snapshots?limit=0"),
        400,
        "invalid_request",
        "limit",
    )
    .await;
    expect_error(
        api.post("/careers/companies/acme/explode"),
        404,
        "not_found",
        "enable or disable",
    )
    .await;
    let page = api.text("/ui/careers/panel").await;
    assert!(
        page.contains("acme") && page.contains("0 7 * * 1-5"),
        "{page}"
    );
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn subscribers_follow_their_links(db: PgPool) {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let api = spawn_api(&services).await;
    let new =
        serde_json::json!({"email": "ada@example.com", "keywords": ["rust"], "remote_only": true});
    let (status, body) = read(
        api.client
            .post(format!("{}/careers/subscribers", api.base))
            .json(&new),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["subscriber"]["status"], "pending");
    assert!(body["data"]["confirmation_run_id"].is_string());
    let token: uuid::Uuid = sqlx::query_scalar("SELECT token FROM subscribers")
        .fetch_one(&db)
        .await
        .unwrap();
    let confirmed = api
        .text(&format!("/careers/subscribers/confirm?token={token}"))
        .await;
    assert!(
        confirmed.contains("Job alerts for ada@example.com"),
        "{confirmed}"
    );
    expect_error(
        api.client
            .post(format!("{}/careers/subscribers", api.base))
            .json(&new),
        409,
        "conflict",
        "already subscribed",
    )
    .await;
    let (status, body) = read(api.get("/careers/subscribers")).await;
    assert_eq!(status, 401, "addresses need the key: {body}");
    let (_, body) = read(
        api.get("/careers/subscribers")
            .bearer_auth(crate::helpers::KEY),
    )
    .await;
    assert_eq!(
        body["data"]["subscribers"][0]["status"], "confirmed",
        "{body}"
    );
    let one_click = api
        .client
        .post(format!("{}/careers/unsubscribe?token={token}", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(one_click.status(), 200);
    let status: String = sqlx::query_scalar("SELECT status FROM subscribers")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(status, "unsubscribed");

    for bad in ["nobody", "a@b@c", ""] {
        let body = serde_json::json!({"email": bad});
        expect_error(
            api.client
                .post(format!("{}/careers/subscribers", api.base))
                .json(&body),
            400,
            "invalid_request",
            "email",
        )
        .await;
    }
    expect_error(
        api.get("/careers/unsubscribe?token=nope"),
        400,
        "invalid_request",
        "token",
    )
    .await;
    expect_error(
        api.get("/careers/unsubscribe"),
        400,
        "invalid_request",
        "token: required",
    )
    .await;
    let stranger = uuid::Uuid::new_v4();
    expect_error(
        api.get(&format!("/careers/subscribers/confirm?token={stranger}")),
        404,
        "subscriber_not_found",
        "no subscription",
    )
    .await;
    expect_error(
        api.post("/careers/subscribers/999/digest"),
        404,
        "subscriber_not_found",
        "999",
    )
    .await;
    let (status, body) = read(api.get("/careers/mails").bearer_auth(crate::helpers::KEY)).await;
    assert_eq!(
        (status, body["data"]["mails"].as_array().unwrap().len()),
        (200, 0)
    );
}
