//! The ledger of every kind (`GET /runs`, `GET /runs/{run_id}`) and dead letters on any queue,
//! one by id or the whole list.
use serde_json::{Value, json};
use sqlx::PgPool;
use test_support::TestRedis;
use test_support::nap::submit_nap;

use crate::helpers::*;

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn runs_of_every_kind_are_listed_newest_first_a_page_at_a_time(
    db: PgPool,
) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let api = spawn_api(&services).await;
    let mut submitted = Vec::new();
    for _ in 0..5 {
        submitted.push(submit_nap(&services, 10, 0).await);
    }
    queue_core::fail_run(&services, &submitted[1], "stopped by hand").await?;
    let submitted: Vec<Value> = submitted.into_iter().rev().map(Value::from).collect();

    let mut listed = Vec::new();
    let mut path = "/runs?kind=nap&limit=2".to_owned();
    for expected_len in [2, 2, 1] {
        let (status, body) = read(api.get(&path)).await;
        assert_eq!(status, 200, "{body}");
        let runs = body["data"]["runs"].as_array().unwrap();
        assert_eq!(runs.len(), expected_len, "{body}");
        listed.extend(runs.iter().map(|run| run["run_id"].clone()));
        assert_eq!(
            (&runs[0]["kind"], &runs[0]["queue"]),
            (&json!("nap"), &json!("naps"))
        );
        match body["data"]["next"].as_str() {
            Some(next) => path = format!("/runs?kind=nap&limit=2&cursor={next}"),
            None => assert_eq!(expected_len, 1, "only the last page has no next"),
        }
    }
    assert_eq!(listed, submitted, "every run once, newest first");

    let (_, body) = read(api.get("/runs?status=failed")).await;
    let failed = &body["data"]["runs"];
    assert_eq!(failed.as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(
        (&failed[0]["run_id"], &failed[0]["message"]),
        (&submitted[3], &json!("stopped by hand"))
    );
    let (_, body) = read(api.get("/runs?kind=scrape")).await;
    assert_eq!(body["data"], json!({"runs": [], "next": null}));

    let (status, body) = read(api.get(&format!("/runs/{}", submitted[0].as_str().unwrap()))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["data"]["run"]["kind"], &body["data"]["status"]),
        (&json!("nap"), &json!("queued"))
    );
    expect_error(api.get("/runs/nope"), 404, "unknown_run", "nope").await;
    for (query, field) in [
        ("status=done", "status"),
        ("status=", "status"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("cursor=nope", "cursor"),
        ("colour=red", "colour"),
    ] {
        expect_error(
            api.get(&format!("/runs?{query}")),
            400,
            "invalid_request",
            field,
        )
        .await;
    }
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn dead_letters_of_any_queue_are_retried_or_deleted_by_id_or_all_at_once(
    db: PgPool,
) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let api = spawn_api(&services).await;
    let naps = services.queue_named("naps");
    for n in 0..3 {
        let task = format!(r#"{{"kind":"nap","payload":{{"millis":{n}}}}}"#);
        naps.dead_letter("w1", task.as_bytes(), "handler panicked")
            .await?;
    }
    let (_, body) = read(api.get("/jobs/queue/dead?queue=naps")).await;
    let ids: Vec<String> = body["data"]["dead"]
        .as_array()
        .unwrap()
        .iter()
        .map(|letter| letter["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 3, "{body}");

    // An id listed on the naps queue is not on the home queue's list: the 404 says where it
    // looked; `?queue=` finds it.
    let one = &ids[0];
    expect_error(
        api.post(&format!("/jobs/queue/dead/{one}/retry")),
        404,
        "unknown_dead_letter",
        "on queue scraping",
    )
    .await;
    let (status, body) = read(api.post(&format!("/jobs/queue/dead/{one}/retry?queue=naps"))).await;
    assert_eq!(
        (status, &body["data"]["requeued"]),
        (200, &json!(true)),
        "{body}"
    );
    let delete = format!("{}/jobs/queue/dead/{}?queue=naps", api.base, ids[1]);
    let (status, _) = read(api.client.delete(&delete).bearer_auth(KEY)).await;
    assert_eq!(status, 200);

    // The rest at once: the key is needed, the figures say what happened.
    for n in 3..6 {
        naps.dead_letter(
            "w1",
            format!("not JSON {n}").as_bytes(),
            "malformed task JSON",
        )
        .await?;
    }
    let retry_all = format!("{}/jobs/queue/dead/retry?queue=naps", api.base);
    expect_error(api.client.post(&retry_all), 401, "unauthorized", "Bearer").await;
    let (status, body) = read(api.post("/jobs/queue/dead/retry?queue=naps")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"],
        json!({"queue": "naps", "taken": 4, "skipped": 0})
    );
    let metrics = naps.metrics().await?;
    assert_eq!(
        (metrics.dead, metrics.pending),
        (0, 5),
        "every task queued again"
    );

    naps.dead_letter("w1", b"{}", "unknown kind").await?;
    let delete_all = format!("{}/jobs/queue/dead?queue=naps", api.base);
    expect_error(
        api.client.delete(&delete_all),
        401,
        "unauthorized",
        "Bearer",
    )
    .await;
    let (status, body) = read(api.client.delete(&delete_all).bearer_auth(KEY)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["taken"], json!(1));
    assert_eq!(naps.metrics().await?.dead, 0);
    let (_, body) = read(api.post("/jobs/queue/dead/retry?queue=Bad!")).await;
    assert_eq!(body["error"]["code"], "invalid_request", "{body}");
    Ok(())
}
