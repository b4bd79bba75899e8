use std::time::Duration;

use queue_core::Services;
use sqlx::PgPool;
use test_support::{TestRedis, eventually, register_site};
use tokio_util::sync::CancellationToken;
use trawl_scheduler::Scheduler;
use url::Url;

const TTL: Duration = Duration::from_millis(600);

fn scheduler(services: &Services, id: &str) -> Scheduler {
    Scheduler {
        services: services.clone(),
        id: id.into(),
        interval: Duration::from_millis(50),
        batch: 100,
        leader_ttl: TTL,
        alerts: Default::default(),
    }
}

async fn leader(services: &Services) -> Option<String> {
    services
        .locks
        .holder_of(&services.keys().scheduler_leader())
        .await
        .unwrap()
}

async fn last_origin(services: &Services) -> Option<String> {
    trawl_scheduler::status(services)
        .await
        .ok()?
        .last_pass
        .map(|p| p.origin)
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn one_of_three_schedulers_leads_and_another_takes_over_when_it_dies(
    db: PgPool,
) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    for n in 0..5 {
        register_site(
            &db,
            &format!("site-{n}"),
            &Url::parse("http://127.0.0.1:9/")?,
            0,
        )
        .await;
    }
    let stop = CancellationToken::new();
    let mut handles = std::collections::HashMap::new();
    for id in ["a", "b", "c"] {
        handles.insert(
            id.to_owned(),
            tokio::spawn(scheduler(&services, id).run(stop.clone())),
        );
    }
    let first = eventually(Duration::from_secs(5), "a leader", || leader(&services)).await;
    eventually(Duration::from_secs(5), "the leader's first pass", || {
        last_origin(&services)
    })
    .await;
    for _ in 0..10 {
        assert_eq!(
            last_origin(&services).await,
            Some(format!("daemon:{first}")),
            "only the leader passes"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }

    // Kill the leader: no release, its lease must run out.
    handles.remove(&first).unwrap().abort();
    let killed_at = std::time::Instant::now();
    let second = eventually(Duration::from_secs(5), "a new leader", || async {
        leader(&services).await.filter(|l| *l != first)
    })
    .await;
    assert!(
        killed_at.elapsed() < TTL + Duration::from_millis(700),
        "taken over within the lease TTL: {:?}",
        killed_at.elapsed()
    );
    sqlx::query("UPDATE site_schedules SET next_run_at = now() - interval '1 minute'")
        .execute(&db)
        .await?;
    eventually(
        Duration::from_secs(5),
        "passes by the new leader",
        || async {
            (last_origin(&services).await == Some(format!("daemon:{second}"))).then_some(())
        },
    )
    .await;

    // Whatever happened, never two active runs of one site.
    let most: i64 = sqlx::query_scalar(
        "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM scrape_runs WHERE status IN ('queued','running') GROUP BY site_name) c",
    )
    .fetch_one(&db)
    .await?;
    assert_eq!(most, 1);
    stop.cancel();
    for (_, handle) in handles {
        handle.await?;
    }
    assert_eq!(
        leader(&services).await,
        None,
        "a scheduler stopping cleanly gives the lease up"
    );
    Ok(())
}

/// A pass that cannot reach PostgreSQL is counted as failed (the alert on no successful pass
/// reads this), and the leader keeps trying.
#[tokio::test]
async fn failed_passes_are_counted() {
    let metrics = telemetry::metric::install();
    let redis = TestRedis::new();
    let unreachable = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(200))
        .connect_lazy("postgres://postgres@127.0.0.1:9/nowhere")
        .unwrap();
    let services = redis.services(&unreachable);
    let stop = CancellationToken::new();
    let running = tokio::spawn(scheduler(&services, "lonely").run(stop.clone()));
    let failed = eventually(Duration::from_secs(15), "two failed passes", || async {
        let text = telemetry::metric::render(&metrics);
        let failed = test_support::prometheus::sample(
            &text,
            r#"trawl_scheduler_passes_total{result="failed"}"#,
        )?;
        (failed >= 2.0).then_some(text)
    })
    .await;
    assert_eq!(
        test_support::prometheus::sample(&failed, r#"trawl_scheduler_passes_total{result="ok"}"#),
        None
    );
    stop.cancel();
    running.await.unwrap();
}
