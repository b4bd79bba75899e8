use queue_core::store::RunStatus;
use sqlx::PgPool;
use test_support::{FaultAction, FaultRule, FaultTarget, TestBoard, TestRedis, register_site};
use trawl_worker::Processed;

use crate::helpers::*;

fn rule(target: FaultTarget, action: FaultAction, times: Option<u32>) -> FaultRule {
    FaultRule {
        target,
        action,
        times,
    }
}

fn http(status: u16) -> FaultAction {
    FaultAction::Status {
        status,
        retry_after: None,
    }
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_failing_page_makes_a_partial_run_with_the_error_recorded(
    db: PgPool,
) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 1).await;
    board.fail(vec![rule(
        FaultTarget::Listing { page: 2 },
        http(500),
        None,
    )]);
    let worker = worker(&services);

    let task = queue_run(&services, "demo", None, 60).await;
    let run_id = task.run_id.unwrap();
    assert_eq!(
        process_next(&worker).await,
        Processed::Finished {
            run_id: run_id.clone(),
            status: RunStatus::Partial
        }
    );
    let run = run(&db, &run_id).await;
    // Pages 1 and 3 with 20 details each; page 2 failed after 1 retry.
    assert_eq!(
        (run.requested_pages, run.completed_pages, run.errors_count),
        (Some(43), Some(42), Some(1))
    );
    assert_eq!((run.jobs_found, run.jobs_inserted), (40, 40));
    let page = &run.error_detail["pages"][0];
    assert!(page["url"].as_str().unwrap().contains("page=2"), "{page}");
    assert_eq!(page["attempts"], 2);
    assert!(
        page["error"].as_str().unwrap().contains("HTTP 500"),
        "{page}"
    );
    assert!(run.message.unwrap().contains("1 pages failed"));
    assert_eq!(
        services.locks.holder("demo").await?,
        None,
        "lock released after a partial run"
    );
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_transient_failure_is_retried_from_the_delayed_set_until_max_retries(
    db: PgPool,
) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 2).await;
    board.fail(vec![rule(FaultTarget::AnyListing, http(503), None)]);
    let worker = worker(&services);

    let task = queue_run(&services, "demo", None, 40).await;
    let run_id = task.run_id.unwrap();
    for retry in 1..=2 {
        match process_next(&worker).await {
            Processed::Retrying {
                run_id: id,
                retry: n,
                ..
            } => assert_eq!((id.as_str(), n), (run_id.as_str(), retry)),
            other => panic!("expected retry {retry}, got {other:?}"),
        }
        let waiting = run(&db, &run_id).await;
        assert_eq!(
            (waiting.status.as_str(), waiting.retries),
            ("queued", retry)
        );
        assert!(waiting.retry_at.is_some());
        let message = waiting.message.unwrap();
        assert!(
            message.contains(&format!("attempt {retry} failed, retry {retry} of 2")),
            "{message}"
        );
        let metrics = services.queue.metrics().await?;
        assert_eq!(
            (metrics.pending, metrics.delayed, metrics.in_flight),
            (0, 1, 0),
            "the task waits in the delayed set, not in the queue"
        );
        assert_eq!(
            services.locks.holder("demo").await?,
            None,
            "no lock held while waiting"
        );
        until_retry_due(&services).await;
    }
    assert_eq!(
        process_next(&worker).await,
        Processed::Finished {
            run_id: run_id.clone(),
            status: RunStatus::Failed
        },
        "out of retries: the run fails"
    );
    let run = run(&db, &run_id).await;
    assert_eq!((run.attempt, run.retries), (3, 2));
    assert_eq!(
        (run.requested_pages, run.completed_pages, run.errors_count),
        (Some(2), Some(0), Some(2))
    );
    assert_eq!(run.jobs_found, 0);
    let attempts = queue_core::store::run_attempts(&db, &run_id).await?;
    let summary: Vec<_> = attempts
        .iter()
        .map(|a| (a.attempt, a.status.as_str(), a.retried))
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, "failed", true),
            (2, "failed", true),
            (3, "failed", false)
        ],
        "every attempt is recorded"
    );
    assert!(attempts.iter().all(|a| a.finished_at.is_some()));
    assert_eq!(
        board.board.requests().listing,
        18,
        "3 attempts x 2 pages x (1 + 2 page retries)"
    );
    assert_eq!(
        services.locks.holder("demo").await?,
        None,
        "lock released after a failed run"
    );
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_permanent_failure_is_not_retried(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 3).await;
    board.fail(vec![rule(FaultTarget::AnyListing, http(404), None)]);
    let worker = worker(&services);

    let task = queue_run(&services, "demo", None, 20).await;
    let run_id = task.run_id.unwrap();
    assert_eq!(
        process_next(&worker).await,
        Processed::Finished {
            run_id: run_id.clone(),
            status: RunStatus::Failed
        }
    );
    let run = run(&db, &run_id).await;
    assert_eq!((run.attempt, run.retries), (1, 0));
    assert_eq!(services.queue.metrics().await?.delayed, 0);
    assert_eq!(board.board.requests().listing, 1, "a 404 is asked once");
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn malformed_pages_and_404s_are_not_retried(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 3).await;
    board.fail(vec![
        rule(
            FaultTarget::Listing { page: 1 },
            FaultAction::Malformed,
            None,
        ),
        rule(FaultTarget::AnyDetail, http(404), None),
    ]);
    let worker = worker(&services);

    let task = queue_run(&services, "demo", None, 40).await;
    let run_id = task.run_id.unwrap();
    assert_eq!(
        process_next(&worker).await,
        Processed::Finished {
            run_id: run_id.clone(),
            status: RunStatus::Failed
        }
    );
    let run = run(&db, &run_id).await;
    // Page 1 unreadable, page 2 fine but all 20 detail pages 404: 21 of 22 pages failed.
    assert_eq!(
        (run.requested_pages, run.errors_count),
        (Some(22), Some(21))
    );
    assert!(
        run.error_detail["pages"][0]["error"]
            .as_str()
            .unwrap()
            .contains("main#results")
    );
    assert_eq!(
        board.board.requests().listing,
        2,
        "no retry of an unreadable page"
    );
    assert_eq!(board.board.requests().detail, 20, "no retry of a 404");
    assert_eq!(
        run.jobs_found, 20,
        "postings are kept with what the listing said"
    );
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_transient_error_is_retried_away(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 2).await;
    board.fail(vec![
        rule(FaultTarget::Listing { page: 1 }, http(500), Some(1)),
        rule(
            FaultTarget::Detail { id: 1 },
            FaultAction::Status {
                status: 429,
                retry_after: Some(0),
            },
            Some(2),
        ),
    ]);
    let worker = worker(&services);

    let task = queue_run(&services, "demo", None, 20).await;
    let run_id = task.run_id.unwrap();
    assert_eq!(
        process_next(&worker).await,
        Processed::Finished {
            run_id: run_id.clone(),
            status: RunStatus::Succeeded
        }
    );
    let run = run(&db, &run_id).await;
    assert_eq!((run.errors_count, run.jobs_found), (Some(0), 20));
    assert_eq!(board.board.requests().listing, 2);
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_run_past_job_timeout_fails_with_that_reason(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = services_with_timeout(&redis, &db, 1);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 0).await;
    board.fail(vec![rule(
        FaultTarget::Listing { page: 2 },
        FaultAction::Delay { millis: 3_000 },
        None,
    )]);
    let worker = worker(&services);

    let task = queue_run(&services, "demo", None, 40).await;
    let run_id = task.run_id.unwrap();
    assert_eq!(
        process_next(&worker).await,
        Processed::Finished {
            run_id: run_id.clone(),
            status: RunStatus::Failed
        }
    );
    let run = run(&db, &run_id).await;
    assert!(
        run.message
            .as_deref()
            .unwrap()
            .starts_with("timed out after 1 s"),
        "{:?}",
        run.message
    );
    assert_eq!(
        run.jobs_found, 20,
        "what was stored before the limit is kept and counted"
    );
    assert_eq!(services.locks.holder("demo").await?, None);
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn robots_txt_is_obeyed(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 2).await;
    board
        .board
        .set_robots_txt("User-agent: *\nDisallow: /jobs/\n");
    let worker = worker(&services);

    let task = queue_run(&services, "demo", None, 5).await;
    process_next(&worker).await;
    let run = run(&db, task.run_id.as_deref().unwrap()).await;
    assert_eq!(
        board.board.requests().detail,
        0,
        "no disallowed page was requested"
    );
    assert_eq!(board.board.requests().listing, 1, "the listing is allowed");
    assert_eq!(run.errors_count, Some(5));
    assert!(
        run.error_detail["pages"][0]["error"]
            .as_str()
            .unwrap()
            .contains("disallowed by robots.txt")
    );
    assert_eq!(run.error_detail["pages"][0]["attempts"], 0, "not retried");
    Ok(())
}

/// RFC 9309: an unreachable robots.txt disallows the site, but only while it is unreachable —
/// the run fails transiently and its retry, once robots.txt answers, succeeds (the multi-host
/// test found a run failed for good by a robots.txt fetch lost to a cut network link).
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn an_unreachable_robots_txt_makes_a_retry_not_a_failure(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 2).await;
    board.board.set_robots_txt("User-agent: *\nAllow: /\n");
    board.fail(vec![rule(FaultTarget::Robots, http(503), Some(1))]);
    let worker = worker(&services);

    let task = queue_run(&services, "demo", None, 3).await;
    let run_id = task.run_id.unwrap();
    assert!(matches!(
        process_next(&worker).await,
        Processed::Retrying { retry: 1, .. }
    ));
    let waiting = run(&db, &run_id).await;
    let error = waiting.error_detail["pages"][0]["error"].as_str().unwrap();
    assert!(error.contains("robots.txt is unreachable"), "{error}");
    assert_eq!(waiting.error_detail["pages"][0]["transient"], true);
    assert_eq!(
        board.board.requests().listing,
        0,
        "nothing fetched meanwhile"
    );
    until_retry_due(&services).await;
    assert_eq!(
        process_next(&worker).await,
        Processed::Finished {
            run_id: run_id.clone(),
            status: RunStatus::Succeeded
        }
    );
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_robots_override_states_its_reason_on_the_run(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    board.board.set_robots_txt("User-agent: *\nDisallow: /\n");
    let reason = "our own demo board, scraped with its owner's consent";
    let payload = serde_json::json!({"source": "demo_board", "base_url": board.url.as_str(), "ignore_robots_txt": reason});
    let site = test_support::unpaused_site("demo", payload, 0);
    trawl_scrape_runs::sites::upsert_site(&db, &site).await?;
    let worker = worker(&services);

    let task = queue_run(&services, "demo", None, 3).await;
    assert!(matches!(
        process_next(&worker).await,
        Processed::Finished {
            status: RunStatus::Succeeded,
            ..
        }
    ));
    let run = run(&db, task.run_id.as_deref().unwrap()).await;
    assert!(
        run.message
            .unwrap()
            .contains(&format!("robots.txt ignored: {reason}"))
    );
    assert_eq!(
        run.error_detail["notes"][0],
        format!("robots.txt ignored: {reason}")
    );

    let payload = serde_json::json!({"source": "demo_board", "base_url": board.url.as_str(), "ignore_robots_txt": ""});
    let unexplained = test_support::unpaused_site("demo", payload, 0);
    let err = trawl_scrape_runs::sites::upsert_site(&db, &unexplained)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("`ignore_robots_txt`"), "{err}");
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_429_is_waited_out_for_its_retry_after(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 2).await;
    board.fail(vec![rule(
        FaultTarget::Listing { page: 1 },
        FaultAction::Status {
            status: 429,
            retry_after: Some(1),
        },
        Some(1),
    )]);
    let worker = worker(&services);

    let started = std::time::Instant::now();
    let task = queue_run(&services, "demo", None, 2).await;
    assert!(matches!(
        process_next(&worker).await,
        Processed::Finished {
            status: RunStatus::Succeeded,
            ..
        }
    ));
    // The retry base is 5 ms in tests: only Retry-After explains a wait of a second.
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(board.board.requests().listing, 2);
    assert_eq!(
        run(&db, task.run_id.as_deref().unwrap()).await.errors_count,
        Some(0)
    );
    Ok(())
}
