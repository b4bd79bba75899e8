//! Two and three scheduler processes over the same sites, and a recurring task of a second kind
//! (`nap`), for a minute, the leader killed midway: never two active runs of one site or of the
//! recurring task, and scheduling goes on within the lease TTL.
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use test_support::{TestBoard, TestRedis, database_url, redis_cmd};

use crate::fleet::*;

const LEASE_TTL: Duration = Duration::from_secs(2);
const INTERVAL: Duration = Duration::from_secs(1);

async fn schedulers_fail_over(db: PgPool, schedulers: usize) {
    let redis = TestRedis::new();
    let board = TestBoard::start().await;
    slow_details(&board, 20);
    register_sites(&db, &board, "busy", 6).await;
    let recurring = serde_json::json!({"name": "naps", "kind": "nap", "queue": "naps",
        "payload": {"millis": 300}, "interval_minutes": 1});
    queue_core::store::upsert_recurring(&db, &serde_json::from_value(recurring).unwrap())
        .await
        .unwrap();
    let mut fleet = Fleet::new(
        &database_url(&db),
        &redis.url,
        &redis.prefix,
        &[
            ("LEADER_TTL_MS", &LEASE_TTL.as_millis().to_string()),
            ("SCHEDULER_INTERVAL", &INTERVAL.as_secs().to_string()),
        ],
    );
    for _ in 0..schedulers {
        fleet.spawn_scheduler();
    }
    fleet.spawn_worker();
    fleet.spawn_worker();
    let leader_key = format!("{}{{scraping}}:scheduler:leader", redis.prefix);

    let started = tokio::time::Instant::now();
    let mut killed: Option<(DateTime<Utc>, u32)> = None;
    while started.elapsed() < Duration::from_secs(62) {
        // Every site is due all the time: each pass schedules every site whose last run ended.
        for table in ["site_schedules", "schedules"] {
            sqlx::query(&format!("UPDATE {table} SET next_run_at = NULL"))
                .execute(&db)
                .await
                .unwrap();
        }
        if killed.is_none() && started.elapsed() >= Duration::from_secs(30) {
            let leader: Option<String> =
                redis_cmd(&redis.pool, redis::cmd("GET").arg(&leader_key)).await;
            let pid: u32 = leader
                .expect("a leader after 30 s")
                .rsplit('-')
                .nth(1)
                .unwrap()
                .parse()
                .unwrap();
            let index = fleet
                .schedulers
                .iter()
                .position(|s| s.pid() == pid)
                .expect("the leader is one of ours");
            fleet.schedulers.remove(index).kill9();
            let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
                .fetch_one(&db)
                .await
                .unwrap();
            killed = Some((now, pid));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (killed_at, killed_pid) = killed.unwrap();
    fleet.assert_all_running("after the leader was killed");

    // Never two active runs of one site: per site, no two runs' [created, finished] overlap.
    let overlaps: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM scrape_runs a JOIN scrape_runs b \
             ON a.site_name = b.site_name AND a.run_id < b.run_id \
         WHERE a.created_at < COALESCE(b.finished_at, 'infinity') \
           AND b.created_at < COALESCE(a.finished_at, 'infinity')",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(overlaps, 0, "two runs of one site were active at once");
    // The recurring nap, likewise: one run at a time, on both sides of the kill, none failed.
    let (nap_overlaps, naps_before, naps_after, naps_failed): (i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT (SELECT count(*) FROM task_runs a JOIN task_runs b \
                       ON a.schedule_id = b.schedule_id AND a.run_id < b.run_id \
                     WHERE a.kind = 'nap' AND a.created_at < COALESCE(b.finished_at, 'infinity') \
                       AND b.created_at < COALESCE(a.finished_at, 'infinity')), \
                    count(*) FILTER (WHERE created_at < $1), \
                    count(*) FILTER (WHERE created_at >= $1), \
                    count(*) FILTER (WHERE status = 'failed') \
             FROM task_runs WHERE kind = 'nap'",
        )
        .bind(killed.unwrap().0)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(
        nap_overlaps, 0,
        "two runs of the recurring nap were active at once"
    );
    assert!(
        naps_before >= 10 && naps_after >= 10 && naps_failed == 0,
        "recurring naps: {naps_before} before the kill, {naps_after} after, {naps_failed} failed"
    );
    let (before, after): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE created_at < $1), count(*) FILTER (WHERE created_at >= $1) \
         FROM scrape_runs",
    )
    .bind(killed_at)
    .fetch_one(&db)
    .await
    .unwrap();
    assert!(
        before >= 30 && after >= 30,
        "scheduling went on on both sides of the kill: {before} runs before, {after} after"
    );
    let first_after: DateTime<Utc> =
        sqlx::query_scalar("SELECT min(created_at) FROM scrape_runs WHERE created_at >= $1")
            .bind(killed_at)
            .fetch_one(&db)
            .await
            .unwrap();
    let gap = (first_after - killed_at).to_std().unwrap();
    assert!(
        gap <= LEASE_TTL + INTERVAL + Duration::from_secs(2),
        "the next run came {gap:?} after the leader died (lease TTL {LEASE_TTL:?})"
    );
    let leader: Option<String> = redis_cmd(&redis.pool, redis::cmd("GET").arg(&leader_key)).await;
    assert!(
        !leader.unwrap().contains(&format!("-{killed_pid}-")),
        "another scheduler leads"
    );
    let failed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM scrape_runs WHERE status = 'failed'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(failed, 0, "logs:\n{}", fleet.logs());
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn two_schedulers_for_a_minute_with_the_leader_killed(db: PgPool) {
    schedulers_fail_over(db, 2).await;
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn three_schedulers_for_a_minute_with_the_leader_killed(db: PgPool) {
    schedulers_fail_over(db, 3).await;
}
