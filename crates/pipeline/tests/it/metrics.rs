//! The pipeline's metrics, as a worker's /metrics exposes them, checked by promtool.
use serde_json::json;
use sqlx::PgPool;
use test_support::prometheus::{assert_samples, check_metrics};

use crate::helpers::{fail_listings, finished, start, status, world};

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn stages_durations_and_alerts_are_counted(db: PgPool) {
    let handle = telemetry::metric::install();
    let world = world(&db).await;
    let ok = start(
        &world,
        "good",
        json!({"sources": [{"site": "demo", "queries": ["engineer"], "max_per_query": 5}]}),
    )
    .await;
    assert_eq!(finished(&db, ok).await.0.status, "success");
    fail_listings(&world, status(404), None);
    let bad = start(
        &world,
        "bad",
        json!({"sources": [{"site": "demo", "max_per_query": 5}]}),
    )
    .await;
    assert_eq!(finished(&db, bad).await.0.status, "failed");
    // The stage counts its end right after committing it: the batch may read as failed a
    // moment before the counter moves.
    let failed_stage =
        r#"trawl_pipeline_stages_total{pipeline="bad",stage="collect",status="failed"}"#;
    let exposition = test_support::eventually(
        std::time::Duration::from_secs(10),
        "the failed stage counted",
        || async {
            let exposition = telemetry::metric::render(&handle);
            test_support::prometheus::sample(&exposition, failed_stage).map(|_| exposition)
        },
    )
    .await;
    check_metrics(&exposition);
    let mut expected = vec![
        (
            r#"trawl_pipeline_stages_total{pipeline="bad",stage="collect",status="failed"}"#,
            1.0,
        ),
        (
            r#"trawl_pipeline_alerts_total{pipeline="bad",alert="stage_failed"}"#,
            1.0,
        ),
        (
            r#"trawl_pipeline_stage_duration_seconds_count{pipeline="bad",stage="collect"}"#,
            1.0,
        ),
    ];
    let stages: Vec<String> = trawl_pipeline::Stage::ALL
        .iter()
        .map(|s| {
            format!(
                r#"trawl_pipeline_stages_total{{pipeline="good",stage="{s}",status="success"}}"#
            )
        })
        .collect();
    expected.extend(stages.iter().map(|s| (s.as_str(), 1.0)));
    assert_samples(&exposition, &expected);
}
