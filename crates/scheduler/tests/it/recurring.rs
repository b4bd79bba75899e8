//! Recurring work of another kind (`schedules`) on a controlled clock: the daily pipeline at
//! 00:30 UTC and a digest at 08:00 Paris time, registered the way sites are, caught up once,
//! one run at a time.
use chrono::{DateTime, Utc};
use queue_core::store::{self, NewRecurringTask};
use sqlx::PgPool;
use test_support::TestRedis;
use trawl_scheduler::run_pass_at;

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn recurring(name: &str, cron: &str, time_zone: Option<&str>) -> NewRecurringTask {
    serde_json::from_value(serde_json::json!({
        "name": name, "kind": "pipeline", "queue": "pipeline",
        "payload": {"stages": ["collect", "export"]},
        "cron": cron, "time_zone": time_zone,
    }))
    .unwrap()
}

async fn next_run_at(db: &PgPool, name: &str) -> DateTime<Utc> {
    let all = store::list_recurring(db).await.unwrap();
    let found = all
        .into_iter()
        .find(|r| r.name == name)
        .expect("registered");
    found.next_run_at.expect("scheduled")
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_nightly_pipeline_runs_at_0030_utc_and_catches_up_once(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    store::upsert_recurring(&db, &recurring("nightly", "30 0 * * *", None)).await?;
    assert!(next_run_at(&db, "nightly").await > Utc::now());

    // No scheduler ran for three nights.
    sqlx::query("UPDATE schedules SET next_run_at = $1")
        .bind(at("2026-11-26T00:30:00Z"))
        .execute(&db)
        .await?;
    let stats = run_pass_at(&services, "test", 100, at("2026-11-29T09:00:00Z")).await?;
    assert_eq!(stats.enqueued, 1, "caught up once, not three times");
    assert_eq!(
        next_run_at(&db, "nightly").await,
        at("2026-11-30T00:30:00Z")
    );

    // The run is of its kind, on its queue, with its payload, linked to its schedule.
    let run = store::get_run(&db, &stats.run_ids[0]).await?.expect("run");
    assert_eq!(
        (run.kind.as_str(), run.queue.as_str(), run.trigger.as_str()),
        ("pipeline", "pipeline", "schedule")
    );
    assert_eq!(run.payload["stages"][1], "export");
    assert_eq!(run.lock_key.as_deref(), Some("schedule:nightly"));
    let queued = services.queue_named("pipeline").metrics().await?;
    assert_eq!(queued.pending, 1);

    // Still running at the next fire: skipped, not doubled; once it ends, on time again.
    let stats = run_pass_at(&services, "test", 100, at("2026-11-30T00:30:00Z")).await?;
    assert_eq!((stats.enqueued, stats.skipped_locked), (0, 1));
    queue_core::fail_run(&services, &run.run_id, "testing").await?;
    sqlx::query("UPDATE schedules SET next_run_at = $1")
        .bind(at("2026-11-30T00:30:00Z"))
        .execute(&db)
        .await?;
    let stats = run_pass_at(&services, "test", 100, at("2026-11-30T00:30:00Z")).await?;
    assert_eq!(stats.enqueued, 1);
    assert_eq!(
        next_run_at(&db, "nightly").await,
        at("2026-12-01T00:30:00Z")
    );
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_digest_follows_paris_time_and_bad_schedules_are_refused(
    db: PgPool,
) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    store::upsert_recurring(&db, &recurring("digest", "0 8 * * *", Some("Europe/Paris"))).await?;
    sqlx::query("UPDATE schedules SET next_run_at = $1")
        .bind(at("2026-11-29T07:00:00Z"))
        .execute(&db)
        .await?;
    let before = run_pass_at(&services, "test", 100, at("2026-11-29T06:59:00Z")).await?;
    assert_eq!(before.enqueued, 0);
    let on_time = run_pass_at(&services, "test", 100, at("2026-11-29T07:00:00Z")).await?;
    assert_eq!(on_time.enqueued, 1);
    assert_eq!(next_run_at(&db, "digest").await, at("2026-11-30T07:00:00Z"));

    for (change, says) in [
        (
            serde_json::json!({"cron": "0 25 * * *"}),
            "invalid schedule: cron: \"0 25 * * *\" is not valid",
        ),
        (
            serde_json::json!({"time_zone": "Paris"}),
            "invalid schedule: time_zone: unknown time zone",
        ),
        (
            serde_json::json!({"cron": null}),
            "give either interval_minutes or cron",
        ),
        (
            serde_json::json!({"interval_minutes": 5}),
            "give either interval_minutes or cron",
        ),
        (
            serde_json::json!({"kind": "Pipeline"}),
            "kind \"Pipeline\" must be lowercase",
        ),
        (
            serde_json::json!({"kind": "my-kind"}),
            "kind \"my-kind\" must be lowercase",
        ),
        (
            serde_json::json!({"queue": "a{b}"}),
            "queue \"a{b}\" must be lowercase",
        ),
        (
            serde_json::json!({"name": "x\u{0}"}),
            "name contains a NUL character",
        ),
        (
            serde_json::json!({"max_retries": 101}),
            "max_retries must be between 0 and 100",
        ),
    ] {
        let mut value = serde_json::to_value(recurring("bad", "0 8 * * *", None))?;
        for (key, v) in change.as_object().unwrap() {
            value[key] = v.clone();
        }
        let new: NewRecurringTask = serde_json::from_value(value)?;
        let err = store::upsert_recurring(&db, &new)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{change}: {err}");
    }
    let every = serde_json::from_value::<NewRecurringTask>(serde_json::json!({
        "name": "sweep", "kind": "pipeline", "queue": "pipeline", "interval_minutes": 60
    }))?;
    let row = store::upsert_recurring(&db, &every).await?;
    let wait = row.next_run_at.unwrap() - Utc::now();
    assert!(wait > chrono::Duration::minutes(53) && wait < chrono::Duration::minutes(67));
    assert_eq!(store::list_recurring(&db).await?.len(), 2);
    assert!(store::delete_recurring(&db, "sweep").await?);
    Ok(())
}
