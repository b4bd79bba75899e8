//! A career-page check whose worker is `kill -9`'d mid-run (its pages slowed down so the kill
//! lands while it reads them), then recovered by the scheduler and redelivered: the added link
//! still makes exactly one diff, one detail run and one posting.
use std::time::Duration;

use queue_core::store::RunStatus;
use sqlx::PgPool;
use test_support::{
    FaultAction, FaultRule, FaultTarget, TestBoard, TestRedis, database_url, eventually,
};

use crate::fleet::*;

async fn count(db: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db).await.unwrap()
}

async fn status(db: &PgPool, run_id: &str) -> Option<RunStatus> {
    queue_core::store::get_run(db, run_id)
        .await
        .unwrap()
        .map(|r| r.status)
}

async fn ended(db: &PgPool, run_id: &str) -> RunStatus {
    test_support::run_ended(db, run_id).await.status
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_check_killed_mid_run_still_makes_one_diff_and_one_detail_task(db: PgPool) {
    let redis = TestRedis::new();
    let board = TestBoard::start().await;
    let services = redis.services(&db);
    let env = [
        ("CAREERS_ALLOW_PRIVATE", "true"),
        ("WORKER_QUEUES", "careers"),
    ];
    let mut fleet = Fleet::new(&database_url(&db), &redis.url, &redis.prefix, &env);
    fleet.spawn_loop(1);
    let mut company = trawl_careers::NewCompany {
        name: "Hooli".into(),
        url: format!("{}careers/hooli", board.url),
        fetch: trawl_scrape::FetchMode::Http,
        wait_for: None,
        load_more: None,
        next_page: Some("a.next".into()),
        max_pages: None,
        interval_minutes: None,
        cron: None,
        time_zone: None,
    };
    company.max_pages = Some(5);
    trawl_careers::companies::add(&db, company, true)
        .await
        .unwrap();
    let first = trawl_careers::submit(&services, "hooli").await.unwrap();
    assert_eq!(
        ended(&db, &first).await,
        RunStatus::Succeeded,
        "{}",
        fleet.logs()
    );

    // One posting added; every page of the list now takes 1.5 s.
    board
        .board
        .careers
        .add("hooli", Some("Kill-Proof Engineer".into()));
    board.fail(vec![FaultRule {
        target: FaultTarget::AnyListing,
        action: FaultAction::Delay { millis: 1500 },
        times: None,
    }]);
    // The first check's lock is released just after its end is committed: a submit in between
    // is refused as busy (nothing recorded), so it is asked again.
    let second = eventually(
        Duration::from_secs(10),
        "the first check's lock released",
        || async {
            match trawl_careers::submit(&services, "hooli").await {
                Ok(run_id) => Some(run_id),
                Err(trawl_careers::CareersError::Submit(queue_core::SubmitError::Busy {
                    ..
                })) => None,
                Err(err) => panic!("{err}"),
            }
        },
    )
    .await;
    eventually(Duration::from_secs(30), "the check running", || async {
        (status(&db, &second).await == Some(RunStatus::Running)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    fleet.workers.remove(0).kill9();
    fleet.spawn_worker();
    assert_eq!(
        ended(&db, &second).await,
        RunStatus::Succeeded,
        "{}",
        fleet.logs()
    );
    let attempts: i32 = sqlx::query_scalar("SELECT attempt FROM task_runs WHERE run_id = $1")
        .bind(&second)
        .fetch_one(&db)
        .await
        .unwrap();
    assert!(
        attempts >= 2,
        "the killed attempt was redelivered ({attempts} attempts)"
    );

    eventually(Duration::from_secs(60), "detail runs to end", || async {
        let active = count(
            &db,
            "SELECT count(*) FROM task_runs WHERE kind = 'career_detail' AND status IN ('queued', 'running')",
        )
        .await;
        (active == 0).then_some(())
    })
    .await;
    assert_eq!(
        count(&db, "SELECT count(*) FROM career_diffs").await,
        2,
        "baseline + the added link"
    );
    let added: Vec<String> = sqlx::query_scalar(
        "SELECT unnest(added) FROM career_diffs ORDER BY created_at DESC LIMIT 1",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(added.len(), 1, "{added:?}");
    let detail_runs: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM task_runs WHERE kind = 'career_detail' AND payload->>'url' = $1",
    )
    .bind(&added[0])
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(detail_runs, 1);
    let details = count(
        &db,
        "SELECT count(*) FROM task_runs WHERE kind = 'career_detail'",
    )
    .await;
    let postings = count(&db, "SELECT count(*) FROM jobs WHERE site = 'career:hooli'").await;
    assert_eq!(
        (details, postings),
        (7, 7),
        "one detail run and one posting per link"
    );
}
