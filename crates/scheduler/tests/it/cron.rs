//! Cron schedules on a controlled clock: passes run "at" chosen instants, nothing sleeps.
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use test_support::TestRedis;
use trawl_scheduler::run_pass_at;
use trawl_scrape_runs::sites::NewSite;

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn cron_site(name: &str, cron: &str, time_zone: Option<&str>) -> NewSite {
    let mut site = test_support::unpaused_site(
        name,
        serde_json::json!({"source": "demo_board", "base_url": "http://127.0.0.1:9/"}),
        0,
    );
    site.cron = Some(cron.to_owned());
    site.time_zone = time_zone.map(str::to_owned);
    site
}

async fn next_run_at(db: &PgPool, site: &str) -> DateTime<Utc> {
    trawl_scrape_runs::sites::get_site(db, site)
        .await
        .unwrap()
        .unwrap()
        .next_run_at
        .expect("scheduled")
}

/// A site on "0 8 * * *" in Paris: not run at registration, run at 08:00 Paris time, once
/// however many fires a scheduler outage missed, then at the next 08:00.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_cron_site_runs_on_its_wall_clock_and_catches_up_once(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    trawl_scrape_runs::sites::upsert_site(
        &db,
        &cron_site("digest", "0 8 * * *", Some("Europe/Paris")),
    )
    .await?;
    let first = next_run_at(&db, "digest").await;
    assert!(first > Utc::now(), "waits for its first fire: {first}");

    // The scheduler was down from 2026-11-20 to 2026-11-29 10:00 UTC: nine fires missed.
    sqlx::query("UPDATE site_schedules SET next_run_at = $1")
        .bind(at("2026-11-20T07:00:00Z"))
        .execute(&db)
        .await?;
    let now = at("2026-11-29T10:00:00Z");
    let stats = run_pass_at(&services, "test", 100, now).await?;
    assert_eq!(stats.enqueued, 1, "caught up once, not nine times");
    assert_eq!(
        next_run_at(&db, "digest").await,
        at("2026-11-30T07:00:00Z"),
        "the next 08:00 in Paris (UTC+1 in winter)"
    );
    // The run ends; passes before the next fire queue nothing.
    queue_core::fail_run(&services, &stats.run_ids[0], "testing").await?;
    for later in ["2026-11-29T10:01:00Z", "2026-11-30T06:59:59Z"] {
        let stats = run_pass_at(&services, "test", 100, at(later)).await?;
        assert_eq!(stats.enqueued, 0, "{later}");
    }
    let stats = run_pass_at(&services, "test", 100, at("2026-11-30T07:00:00Z")).await?;
    assert_eq!(stats.enqueued, 1, "on time");
    assert_eq!(next_run_at(&db, "digest").await, at("2026-12-01T07:00:00Z"));
    Ok(())
}

/// A bad cron expression or time zone is refused at upsert, naming the field; a valid site
/// changed to a cron schedule is rescheduled by it.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn bad_schedules_are_refused_at_upsert(db: PgPool) -> anyhow::Result<()> {
    for (cron, zone, field) in [
        ("0 8 * *", None, "cron: expected 5 fields"),
        ("0 25 * * *", None, "cron: \"0 25 * * *\" is not valid"),
        ("0 8 * * *", Some("Paris"), "time_zone: unknown time zone"),
    ] {
        let err = trawl_scrape_runs::sites::upsert_site(&db, &cron_site("bad", cron, zone))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(field), "{cron} {zone:?}: {err}");
    }
    let mut site = cron_site("ok", "30 0 * * *", None);
    site.cron = None;
    trawl_scrape_runs::sites::upsert_site(&db, &site).await?;
    assert!(
        trawl_scrape_runs::sites::get_site(&db, "ok")
            .await?
            .unwrap()
            .next_run_at
            .is_none(),
        "runs at once"
    );
    site.cron = Some("30 0 * * *".into());
    trawl_scrape_runs::sites::upsert_site(&db, &site).await?;
    let next = next_run_at(&db, "ok").await;
    assert_eq!(next.format("%H:%M").to_string(), "00:30");
    Ok(())
}
