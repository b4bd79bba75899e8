use std::ops::Not;

use demo_board::catalog;
use queue_core::store::{AttemptStatus, RunStatus};
use sqlx::PgPool;
use test_support::{TestBoard, TestRedis, register_site};
use trawl_worker::Processed;

use crate::helpers::*;

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_run_stores_every_posting_with_exact_counts(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 2).await;
    let worker = worker(&services);

    let expected = catalog::search(Some("engineer"), None);
    let wanted = 50;
    let stored = expected.len().min(wanted);
    let task = queue_run(&services, "demo", Some("engineer"), wanted as u32).await;
    let run_id = task.run_id.clone().unwrap();
    assert_eq!(
        process_next(&worker).await,
        Processed::Finished {
            run_id: run_id.clone(),
            status: RunStatus::Succeeded
        }
    );

    let run = run(&db, &run_id).await;
    let pages = listing_pages(expected.len(), wanted) + stored as u32;
    assert_eq!(run.status.as_str(), "succeeded");
    assert_eq!(run.requested_pages, Some(pages as i32));
    assert_eq!(run.completed_pages, Some(pages as i32));
    assert_eq!(run.errors_count, Some(0));
    assert_eq!(
        (
            run.jobs_found,
            run.jobs_inserted,
            run.jobs_updated,
            run.jobs_unchanged
        ),
        (stored as i32, stored as i32, 0, 0)
    );
    assert_eq!(run.attempt, 1);
    assert_eq!(run.worker_id.as_deref(), Some(worker.id()));
    assert!(run.started_at.is_some() && run.finished_at.is_some());
    assert_eq!(job_count(&db).await, stored as i64);

    // The stored rows are the board's postings, with the detail page's JSON-LD applied.
    let first = &expected[0];
    let row: (String, String, Option<f64>, Option<String>, Option<String>, Option<chrono::NaiveDate>) = sqlx::query_as(
        "SELECT job_title, company_name, salary_min, job_description, skills_required, posted_date FROM jobs WHERE external_id = $1",
    )
    .bind(first.id.to_string())
    .fetch_one(&db)
    .await?;
    assert_eq!(row.0, first.title);
    assert_eq!(row.1, first.company);
    assert_eq!(row.2, first.salary.map(|(min, _)| f64::from(min)));
    assert!(
        row.3.unwrap().contains(&format!("Posting #{}", first.id)),
        "description from the detail page"
    );
    assert!(row.4.is_some(), "skills extracted");
    assert_eq!(row.5, Some(first.posted));

    assert_eq!(services.locks.holder("demo").await?, None, "lock released");
    assert!(
        services.queue.inflight(worker.id()).await?.is_empty(),
        "task acked"
    );
    let result = services
        .queue
        .get_json(&services.keys().result(task.task_id.as_deref().unwrap()))
        .await?;
    assert_eq!(result.unwrap()["status"], "succeeded");
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn the_same_run_again_inserts_nothing_new(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 2).await;
    let worker = worker(&services);

    queue_run(&services, "demo", None, 30).await;
    process_next(&worker).await;
    let again = queue_run(&services, "demo", None, 30).await;
    process_next(&worker).await;

    let run = run(&db, again.run_id.as_deref().unwrap()).await;
    assert_eq!(run.status.as_str(), "succeeded");
    assert_eq!(
        (
            run.jobs_found,
            run.jobs_inserted,
            run.jobs_updated,
            run.jobs_unchanged
        ),
        (30, 0, 0, 30)
    );
    assert_eq!(job_count(&db).await, 30, "no duplicate rows");
    let seen_twice: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE last_run_id = $1")
        .bind(again.run_id.as_deref().unwrap())
        .fetch_one(&db)
        .await?;
    assert_eq!(
        seen_twice, 30,
        "last_seen bookkeeping follows the newest run"
    );
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_redelivered_task_does_not_run_or_count_twice(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 2).await;
    let worker = worker(&services);

    let task = queue_run(&services, "demo", None, 10).await;
    process_next(&worker).await;
    let requests = board.board.requests();
    services.queue.enqueue(&task).await?; // the same task delivered again
    let run_id = task.run_id.clone().unwrap();
    assert_eq!(
        process_next(&worker).await,
        Processed::Duplicate {
            run_id: run_id.clone(),
            status: queue_core::store::RunStatus::Succeeded
        }
    );
    assert_eq!(board.board.requests(), requests, "no page fetched again");
    let run = run(&db, &run_id).await;
    assert_eq!(
        (run.jobs_found, run.jobs_inserted, run.attempt),
        (10, 10, 1)
    );
    assert_eq!(services.locks.holder("demo").await?, None);
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn an_ats_site_stores_department_remote_and_salary(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    let payload = serde_json::json!({"source": "greenhouse", "board": "acme", "company": "Acme",
                                     "base_url": board.url.join("greenhouse")?.as_str()});
    let site = test_support::unpaused_site("acme-greenhouse", payload, 1);
    trawl_scrape_runs::sites::upsert_site(&db, &site).await?;
    let worker = worker(&services);
    let task = queue_run(&services, "acme-greenhouse", None, 100).await;
    assert!(matches!(
        process_next(&worker).await,
        Processed::Finished {
            status: RunStatus::Succeeded,
            ..
        }
    ));
    let run = run(&db, task.run_id.as_deref().unwrap()).await;
    assert_eq!((run.jobs_found, run.jobs_inserted), (30, 30));
    let (remote, departments, salaried): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE is_remote), count(*) FILTER (WHERE department = 'Engineering'), \
         count(*) FILTER (WHERE has_salary) FROM jobs WHERE source = 'greenhouse'",
    )
    .fetch_one(&db)
    .await?;
    let expected_remote = (1..=30)
        .filter_map(catalog::posting)
        .filter(|p| p.is_remote())
        .count() as i64;
    let expected_salaried = (1..=30)
        .filter_map(catalog::posting)
        .filter(|p| p.salary.is_some())
        .count() as i64;
    assert_eq!(
        (remote, departments, salaried),
        (expected_remote, 30, expected_salaried)
    );
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_stale_attempt_cannot_overwrite_the_current_one(db: PgPool) -> anyhow::Result<()> {
    use queue_core::store::{self, RunReport, StartOutcome};
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = TestBoard::start().await;
    register_site(&db, "demo", &board.url, 0).await;
    let task = queue_run(&services, "demo", Some("engineer"), 20).await;
    let run_id = task.run_id.clone().unwrap();
    // A worker started the run and stalled; its task was recovered and delivered again.
    let StartOutcome::Started { attempt: stale } =
        store::start_run(&db, &run_id, "task", "stalled-worker").await?
    else {
        panic!("the run starts");
    };
    assert_eq!(stale, 1);
    let worker = worker(&services);
    assert_eq!(
        process_next(&worker).await,
        Processed::Finished {
            run_id: run_id.clone(),
            status: RunStatus::Succeeded
        }
    );
    let done = run(&db, &run_id).await;
    assert_eq!(done.attempt, 2);
    assert!(done.jobs_found > 0);

    // The stalled worker wakes up and reports its own attempt: refused, nothing changes.
    let stale_report = RunReport {
        result: serde_json::json!({"requested_pages": 9, "errors_count": 9}),
        ..RunReport::failed("stale")
    };
    assert!(!store::finish_run(&db, &run_id, stale, &stale_report).await?);
    assert!(
        store::requeue_run(&db, &run_id, Some(stale), "stale requeue")
            .await?
            .not(),
        "a stale attempt cannot requeue the run either"
    );
    let after = run(&db, &run_id).await;
    assert_eq!(
        (after.status.as_str(), after.jobs_found, after.message),
        ("succeeded", done.jobs_found, done.message)
    );
    let attempts: Vec<_> = store::run_attempts(&db, &run_id)
        .await?
        .into_iter()
        .map(|a| (a.attempt, a.status, a.worker_id))
        .collect();
    assert_eq!(
        attempts,
        vec![
            (1, AttemptStatus::Abandoned, Some("stalled-worker".into())),
            (2, AttemptStatus::Succeeded, Some(worker.id().to_owned())),
        ]
    );
    Ok(())
}
