//! Snapshots and diffs: exactly one diff and one detail task per added link, however often the
//! snapshot task arrives; removed links deactivate their postings; an empty page warns.
use queue_core::store::RunStatus;
use sqlx::PgPool;
use test_support::redis_cmd;

use crate::helpers::{World, count};

/// The first check lists every posting across the page's "next" links, diffs against nothing
/// (all added, one diff) and queues a detail run per link; each stores a posting in `jobs`
/// with its years of experience read by the rules.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_first_check_stores_every_posting_with_its_experience(db: PgPool) {
    let world = World::with_worker(&db).await;
    world.add_company("globex").await;
    let run = world.snapshot("globex").await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.message);
    let result = run.result.clone();
    assert_eq!(result["links"], 6, "{result}");
    assert_eq!(result["pages"], 2, "{result}");
    assert_eq!(result["added"], 6);
    assert_eq!(result["diff_enqueued"], true);
    assert_eq!(world.details_settled().await, 6);
    let stored = count(
        &db,
        "SELECT count(*) FROM jobs j JOIN career_links l ON l.job_id = j.job_id \
         WHERE j.site = 'career:globex' AND j.is_active",
    )
    .await;
    assert_eq!(stored, 6);
    // The demo's requirement sentences all carry a number but one; the "founded 12 years ago"
    // and "4 years of runway" on every page never do.
    let by_rules = count(
        &db,
        "SELECT count(*) FROM posting_experience WHERE method = 'rules' \
         AND phrase NOT LIKE '%ago%' AND phrase NOT LIKE '%runway%'",
    )
    .await;
    let none = count(
        &db,
        "SELECT count(*) FROM posting_experience WHERE method = 'none'",
    )
    .await;
    assert_eq!(by_rules + none, 6);
    assert!(by_rules >= 4, "{by_rules} read by the rules");
}

/// One added posting, with its snapshot task delivered twice (the same message pushed again
/// before any worker takes it): one diff, one detail run, one new posting.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn an_added_link_makes_one_diff_and_one_detail_task_even_delivered_twice(db: PgPool) {
    let mut world = World::with_worker(&db).await;
    world.add_company("initech").await;
    world.snapshot("initech").await;
    world.details_settled().await;
    world.stop_worker();

    let added = world
        .board
        .board
        .careers
        .add("initech", Some("Rust Engineer".into()));
    let run_id = trawl_careers::submit(&world.services, "initech")
        .await
        .unwrap();
    let queue = world.services.queue_named(trawl_careers::QUEUE);
    let pending = queue.keys().pending();
    let message: String = redis_cmd(
        &world.services.redis,
        redis::cmd("LINDEX").arg(&pending).arg(0),
    )
    .await;
    let _: i64 = redis_cmd(
        &world.services.redis,
        redis::cmd("LPUSH").arg(&pending).arg(&message),
    )
    .await;
    world.start_worker(|_| {});
    let run = world.ended(&run_id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.message);
    assert_eq!(world.details_settled().await, 7);
    let snapshot_runs = count(
        &db,
        "SELECT count(*) FROM career_snapshots WHERE company_id = \
         (SELECT id FROM companies WHERE slug = 'initech')",
    )
    .await;
    // The second delivery either found its run ended or recorded a check with nothing new.
    assert!(
        (2..=3).contains(&snapshot_runs),
        "{snapshot_runs} snapshots"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM career_diffs").await, 2);
    let url = format!("{}careers/initech/jobs/{}", world.board.url, added.id);
    let detail_runs: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM task_runs WHERE kind = 'career_detail' AND payload->>'url' = $1",
    )
    .bind(&url)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(detail_runs, 1);
    let title: String = sqlx::query_scalar(
        "SELECT j.job_title FROM jobs j JOIN career_links l ON l.job_id = j.job_id WHERE l.url = $1",
    )
    .bind(&url)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(title, "Rust Engineer");

    // A check with nothing new records a snapshot without a diff.
    let again = world.snapshot("initech").await;
    let result = again.result.clone();
    assert_eq!(
        (result["added"].clone(), result["diff_enqueued"].clone()),
        (0.into(), false.into())
    );
    assert_eq!(count(&db, "SELECT count(*) FROM career_diffs").await, 2);
}

/// A removed link marks its posting inactive; a page that suddenly lists nothing warns (a
/// `partial` run) and removes nothing; the next good page is diffed against the last good one.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn removed_links_deactivate_and_an_empty_page_only_warns(db: PgPool) {
    let world = World::with_worker(&db).await;
    world.add_company("umbrella").await;
    world.snapshot("umbrella").await;
    world.details_settled().await;
    let careers = &world.board.board.careers;
    let gone = careers.listed("umbrella")[2].clone();
    assert!(careers.remove("umbrella", gone.id));
    let run = world.snapshot("umbrella").await;
    assert_eq!(run.result["removed"], 1, "{:?}", run.result);
    let url = format!("{}careers/umbrella/jobs/{}", world.board.url, gone.id);
    let active: bool = sqlx::query_scalar(
        "SELECT j.is_active FROM jobs j JOIN career_links l ON l.job_id = j.job_id WHERE l.url = $1",
    )
    .bind(&url)
    .fetch_one(&db)
    .await
    .unwrap();
    assert!(!active, "the removed posting is inactive");

    careers.set_empty("umbrella", true);
    let run = world.snapshot("umbrella").await;
    assert_eq!(run.status, RunStatus::Partial);
    let message = run.message.clone().unwrap_or_default();
    assert!(message.contains("no job links where it had 5"), "{message}");
    let inactive = count(
        &db,
        "SELECT count(*) FROM jobs WHERE site = 'career:umbrella' AND NOT is_active",
    )
    .await;
    assert_eq!(inactive, 1, "nothing else was removed");

    careers.set_empty("umbrella", false);
    let run = world.snapshot("umbrella").await;
    let result = run.result.clone();
    assert_eq!(
        (result["added"].clone(), result["removed"].clone()),
        (0.into(), 0.into())
    );
}

/// A link to the company's Greenhouse board makes a site read through Greenhouse's API (the
/// scrape kind's source), scraped once at once and then on its own schedule; the next check
/// finds the site and queues nothing.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn an_ats_board_is_read_through_its_api(db: PgPool) {
    let mut world = World::new(&db).await;
    let board_url = world.board.url.clone();
    world.start_worker(|settings| settings.careers_ats_base_url = Some(board_url));
    let url = format!("{}careers/acme?ats=greenhouse", world.board.url);
    trawl_careers::companies::add(&db, crate::helpers::new_company("Acme", &url), true)
        .await
        .unwrap();
    let run = world.snapshot("acme").await;
    let boards = run.result["boards"].clone();
    assert_eq!(
        boards[0]["site_name"], "ats-greenhouse-acme",
        "{}",
        run.result
    );
    let scrape = boards[0]["run_id"]
        .as_str()
        .expect("a scrape queued")
        .to_owned();
    assert_eq!(world.ended(&scrape).await.status, RunStatus::Succeeded);
    let from_api = count(
        &db,
        "SELECT count(*) FROM jobs WHERE site = 'ats-greenhouse-acme'",
    )
    .await;
    assert!(from_api > 0, "postings read through the Greenhouse API");
    let again = world.snapshot("acme").await;
    assert!(
        again.result["boards"][0]["run_id"].is_null(),
        "{}",
        again.result
    );
}
