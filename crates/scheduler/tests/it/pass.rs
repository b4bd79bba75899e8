use chrono::Utc;
use queue_core::{Task, Trigger};
use sqlx::PgPool;
use test_support::{TestRedis, redis_cmd, register_site};
use trawl_scheduler::run_pass;
use url::Url;

fn board() -> Url {
    // The scheduler never fetches; any http URL is a valid definition.
    Url::parse("http://127.0.0.1:9/").unwrap()
}

async fn make_due(db: &PgPool, site: &str) {
    sqlx::query(
        "UPDATE site_schedules SET next_run_at = now() - interval '1 minute' WHERE site_name = $1",
    )
    .bind(site)
    .execute(db)
    .await
    .unwrap();
}

async fn pending(redis: &TestRedis) -> Vec<Task> {
    let keys = queue_core::Keys::new(&redis.prefix, "scraping");
    let raw: Vec<String> = redis_cmd(
        &redis.pool,
        redis::cmd("LRANGE").arg(keys.pending()).arg(0).arg(-1),
    )
    .await;
    raw.iter().map(|r| Task::parse(r).unwrap()).collect()
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_due_site_is_enqueued_exactly_once(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let site = register_site(&db, "demo", &board(), 3).await;

    let before = Utc::now();
    let stats = run_pass(&services, "test", 100).await?;
    assert_eq!((stats.due, stats.enqueued, stats.skipped_locked), (1, 1, 0));

    let tasks = pending(&redis).await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].payload["site_name"], "demo");
    assert_eq!(tasks[0].kind.as_deref(), Some("scrape"));
    assert_eq!(tasks[0].trigger, Some(Trigger::Schedule));
    let run_id = tasks[0].run_id.clone().unwrap();
    assert_eq!(stats.run_ids, vec![run_id.clone()]);

    let run = queue_core::store::get_run(&db, &run_id).await?.unwrap();
    assert_eq!(
        (run.status.as_str(), run.trigger.as_str()),
        ("queued", "schedule")
    );
    assert_eq!(run.task_id, tasks[0].task_id);
    assert_eq!(
        services.locks.holder("demo").await?,
        Some(run_id),
        "the run holds the site lock"
    );

    let site = trawl_scrape_runs::sites::get_site(&db, &site.site_name)
        .await?
        .unwrap();
    let minutes = (site.next_run_at.unwrap() - before).num_seconds() as f64 / 60.0;
    assert!(
        (54.0..=66.1).contains(&minutes),
        "next run in 60 min ± 10%, got {minutes}"
    );
    assert!(site.last_run_at.unwrap() >= before);

    let again = run_pass(&services, "test", 100).await?;
    assert_eq!((again.due, again.enqueued), (0, 0), "not due any more");
    assert_eq!(pending(&redis).await.len(), 1);
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_site_whose_lock_is_held_is_skipped(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    register_site(&db, "demo", &board(), 3).await;
    run_pass(&services, "test", 100).await?;

    // Due again while the first run still holds the lock: skipped, twice.
    for _ in 0..2 {
        make_due(&db, "demo").await;
        let stats = run_pass(&services, "test", 100).await?;
        assert_eq!((stats.due, stats.enqueued, stats.skipped_locked), (1, 0, 1));
    }
    assert_eq!(pending(&redis).await.len(), 1);
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM scrape_runs")
        .fetch_one(&db)
        .await?;
    assert_eq!(runs, 1);

    let status = trawl_scheduler::status(&services).await?;
    assert_eq!(status.last_pass.unwrap().skipped_locked, 1);
    assert_eq!(status.totals.get("passes"), Some(&3));
    assert_eq!(status.totals.get("skipped_locked"), Some(&2));
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn racing_passes_create_one_run_per_site(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let sites: Vec<String> = (0..8).map(|n| format!("site-{n}")).collect();
    for site in &sites {
        register_site(&db, site, &board(), 3).await;
    }
    let (a, b, c) = tokio::join!(
        run_pass(&services, "a", 100),
        run_pass(&services, "b", 100),
        run_pass(&services, "c", 100)
    );
    let enqueued = a?.enqueued + b?.enqueued + c?.enqueued;
    assert_eq!(enqueued, 8);
    let runs: Vec<(String, i64)> = sqlx::query_as(
        "SELECT site_name, count(*) FROM scrape_runs GROUP BY site_name ORDER BY site_name",
    )
    .fetch_all(&db)
    .await?;
    assert_eq!(
        runs,
        sites.iter().map(|s| (s.clone(), 1)).collect::<Vec<_>>()
    );
    assert_eq!(pending(&redis).await.len(), 8);
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn disabled_sites_are_not_scheduled(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    register_site(&db, "demo", &board(), 3).await;
    sqlx::query("UPDATE site_schedules SET enabled = false")
        .execute(&db)
        .await?;
    let stats = run_pass(&services, "test", 100).await?;
    assert_eq!((stats.due, stats.enqueued), (0, 0));
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_pass_recovers_dead_workers_and_fails_poisoned_runs(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let mut config = redis.config("postgres://unused");
    config.max_deliveries = 1;
    let services = queue_core::Services::new(db.clone(), redis.pool.clone(), &config);
    register_site(&db, "demo", &board(), 3).await;
    let stats = run_pass(&services, "test", 100).await?;
    let run_id = stats.run_ids[0].clone();
    queue_core::store::start_run(&db, &run_id, "task", "doomed").await?;

    // The worker takes the task and dies.
    redis.take_and_die(&services.queue, "doomed", 1).await;

    let stats = run_pass(&services, "test", 100).await?;
    assert_eq!(
        (stats.recovered_workers, stats.requeued, stats.poisoned),
        (1, 0, 1)
    );
    let run = queue_core::store::get_run(&db, &run_id).await?.unwrap();
    assert_eq!(run.status.as_str(), "failed");
    assert!(
        run.message.unwrap().starts_with("poison task"),
        "the run says what happened"
    );
    assert_eq!(services.queue.dead_letters(10).await?.len(), 1);
    Ok(())
}
