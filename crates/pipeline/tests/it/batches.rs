use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use test_support::FaultAction;
use trawl_pipeline::{models, store};

use crate::helpers::{
    count, fail_listings, finished, seed_definition, stage, start, status, world,
};

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_full_batch_collects_validates_enriches_vectorizes_and_exports(db: PgPool) {
    let world = world(&db).await;
    let batch_id = start(&world, "daily", seed_definition(30)).await;
    let (batch, runs) = finished(&db, batch_id).await;
    assert_eq!(batch.status, "success", "{runs:#?}");
    let statuses: Vec<(&str, &str)> = runs
        .iter()
        .map(|r| (r.stage.as_str(), r.status.as_str()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("collect", "success"),
            ("validate", "success"),
            ("enrich", "success"),
            ("vectorize", "success"),
            ("export", "success")
        ]
    );
    let collected = stage(&runs, "collect").jobs_collected.unwrap();
    // Adzuna: 30 for each of the three locations (the fixture ignores `where`: the same 30),
    // the demo board: up to 30 "engineer" postings.
    assert!(collected > 90 && collected <= 120, "{collected}");
    let validate = stage(&runs, "validate");
    assert_eq!(
        validate.jobs_validated.unwrap() + validate.jobs_failed.unwrap(),
        collected
    );
    let report = validate.report.as_ref().unwrap();
    assert!(
        report["text"].as_str().unwrap().contains("Pass rate:"),
        "{report}"
    );
    let enriched = stage(&runs, "enrich").jobs_enriched.unwrap();
    assert!(
        enriched < validate.jobs_validated.unwrap(),
        "the three Adzuna locations give the same postings: deduplicated"
    );
    assert_eq!(stage(&runs, "vectorize").jobs_vectorized.unwrap(), enriched);
    let export = stage(&runs, "export");
    assert_eq!(
        (
            export.jobs_inserted,
            export.jobs_updated,
            export.jobs_unchanged
        ),
        (Some(enriched), Some(0), Some(0))
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM jobs").await,
        i64::from(enriched)
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM jobs WHERE location = 'Unknown' OR location ~ '[0-9]'"
        )
        .await,
        0
    );
    for run in &runs {
        assert!(
            run.execution_time_seconds.is_some() && run.run_id.is_some() && run.attempt == 1,
            "{run:?}"
        );
    }

    // The model is active and scores its corpus: a posting's nearest neighbour is itself-like.
    let list = models::list_models(&db).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].status, "active");
    assert!(list[0].model_version.starts_with("tfidf_v"));
    assert_eq!(list[0].trained_on_jobs_count, enriched);
    let cache = trawl_pipeline::similarity::SimilarityCache::default();
    let active = cache.active(&db).await.unwrap().unwrap();
    let model = &active.model;
    let some_job: uuid::Uuid =
        sqlx::query_scalar("SELECT job_id FROM jobs WHERE site = 'demo' LIMIT 1")
            .fetch_one(&db)
            .await
            .unwrap();
    let vector = active.vector_of(some_job).unwrap().clone();
    let similar = active.nearest(&vector, Some(some_job), 5);
    for s in &similar {
        let dot = vector.dot(active.vector_of(s.job_id).unwrap());
        assert!(
            (s.score - dot).abs() < 1e-6,
            "the inverted index scores the dot product"
        );
    }
    assert!(!similar.is_empty() && similar.windows(2).all(|w| w[0].score >= w[1].score));
    assert!(similar.iter().all(|s| s.job_id != some_job));
    let text: (String, Option<String>) =
        sqlx::query_as("SELECT job_title, job_description FROM jobs WHERE job_id = $1")
            .bind(some_job)
            .fetch_one(&db)
            .await
            .unwrap();
    let again = model.transform(&trawl_pipeline::transform::posting_text(
        &text.0,
        text.1.as_deref(),
    ));
    assert_eq!(
        again.features, vector.features,
        "the stored model scores the stored text the same"
    );
    for (a, b) in again.weights.iter().zip(&vector.weights) {
        assert!((a - b).abs() < 1e-6);
    }

    // A second batch finds everything unchanged; then rolling it back changes nothing, and
    // rolling back the first deletes what it inserted.
    let second =
        trawl_pipeline::submit_batch(&world.services, "daily", queue_core::Trigger::Manual)
            .await
            .unwrap();
    let (_, runs) = finished(&db, second).await;
    let export = stage(&runs, "export");
    assert_eq!(
        (
            export.jobs_inserted,
            export.jobs_updated,
            export.jobs_unchanged
        ),
        (Some(0), Some(0), Some(enriched))
    );
    let models_now = models::list_models(&db).await.unwrap();
    assert_eq!(
        models_now.iter().filter(|m| m.status == "active").count(),
        1
    );
    assert_eq!(models_now[0].status, "active", "the newest model is active");

    // Model rollback: the first one again, in one step; the cache follows.
    let newest = cache.active(&db).await.unwrap().unwrap();
    assert_eq!(newest.version, models_now[0].model_version);
    let first_version = &models_now[1].model_version;
    models::activate(&db, first_version).await.unwrap();
    assert_eq!(
        models::active_model(&db).await.unwrap().unwrap().0,
        *first_version
    );
    assert_eq!(
        cache.active(&db).await.unwrap().unwrap().version,
        *first_version
    );

    sqlx::query("UPDATE jobs SET job_title = 'edited by hand' WHERE job_id = $1")
        .bind(some_job)
        .execute(&db)
        .await
        .unwrap();
    let undone = trawl_pipeline::rollback(&db, batch_id).await.unwrap();
    assert_eq!((undone.deleted, undone.restored), (enriched, 0));
    assert_eq!(count(&db, "SELECT count(*) FROM jobs").await, 0);
    let runs = store::batch_runs(&db, batch_id).await.unwrap();
    assert_eq!(
        stage(&runs, "rollback").status,
        "success",
        "the rollback is audited"
    );
    assert!(
        trawl_pipeline::rollback(&db, batch_id).await.is_err(),
        "twice is refused"
    );
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn rollback_restores_what_an_export_updated(db: PgPool) {
    let world = world(&db).await;
    let definition =
        json!({"sources": [{"site": "demo", "queries": ["engineer"], "max_per_query": 10}]});
    let first = start(&world, "demo-only", definition).await;
    assert_eq!(finished(&db, first).await.0.status, "success");
    let before: Vec<(uuid::Uuid, String, String)> =
        sqlx::query_as("SELECT job_id, job_title, content_hash FROM jobs ORDER BY job_id")
            .fetch_all(&db)
            .await
            .unwrap();
    // Change the stored rows so the next batch updates them.
    sqlx::query("UPDATE jobs SET job_title = job_title || ' (old)', content_hash = 'old'")
        .execute(&db)
        .await
        .unwrap();
    let stale: Vec<(uuid::Uuid, String, String)> =
        sqlx::query_as("SELECT job_id, job_title, content_hash FROM jobs ORDER BY job_id")
            .fetch_all(&db)
            .await
            .unwrap();
    let second =
        trawl_pipeline::submit_batch(&world.services, "demo-only", queue_core::Trigger::Manual)
            .await
            .unwrap();
    let (_, runs) = finished(&db, second).await;
    assert_eq!(
        stage(&runs, "export").jobs_updated,
        Some(before.len() as i32)
    );
    let after: Vec<(uuid::Uuid, String, String)> =
        sqlx::query_as("SELECT job_id, job_title, content_hash FROM jobs ORDER BY job_id")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(after, before);
    let undone = trawl_pipeline::rollback(&db, second).await.unwrap();
    assert_eq!((undone.deleted, undone.restored), (0, before.len() as i32));
    let restored: Vec<(uuid::Uuid, String, String)> =
        sqlx::query_as("SELECT job_id, job_title, content_hash FROM jobs ORDER BY job_id")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(
        restored, stale,
        "every row as it was before the second batch"
    );
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_transient_failure_is_retried_and_passes(db: PgPool) {
    let world = world(&db).await;
    fail_listings(&world, status(503), Some(1));
    let definition = json!({"sources": [{"site": "demo", "queries": ["engineer"], "max_per_query": 10}],
                            "retry": {"tries": 3, "delays_seconds": [0.2]}});
    let batch_id = start(&world, "flaky", definition).await;
    let (batch, runs) = finished(&db, batch_id).await;
    assert_eq!(batch.status, "success", "{runs:#?}");
    let collect = stage(&runs, "collect");
    assert_eq!(collect.attempt, 2, "the second try passed");
    let retries: i32 = sqlx::query_scalar("SELECT retries FROM task_runs WHERE run_id = $1")
        .bind(&collect.run_id)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(retries, 1);
    assert_eq!(
        count(&db, "SELECT count(*) FROM jobs").await,
        i64::from(stage(&runs, "export").jobs_inserted.unwrap())
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM jobs").await,
        10,
        "nothing doubled by the retry"
    );
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_permanent_failure_stops_the_batch_and_exports_nothing(db: PgPool) {
    let world = world(&db).await;
    fail_listings(&world, status(404), None);
    let definition =
        json!({"sources": [{"site": "demo", "queries": ["engineer"], "max_per_query": 10}]});
    let batch_id = start(&world, "broken", definition).await;
    let (batch, runs) = finished(&db, batch_id).await;
    assert_eq!(batch.status, "failed");
    let collect = stage(&runs, "collect");
    assert_eq!(
        (
            collect.status.as_str(),
            collect.error_kind.as_deref(),
            collect.attempt
        ),
        ("failed", Some("permanent"), 1),
        "never retried"
    );
    assert!(
        collect.error_message.as_deref().unwrap().contains("404"),
        "{collect:?}"
    );
    for later in ["validate", "enrich", "vectorize", "export"] {
        assert_eq!(stage(&runs, later).status, "upstream_failed");
    }
    assert_eq!(count(&db, "SELECT count(*) FROM jobs").await, 0);
    let hooks = &world.hooks;
    let alert = test_support::eventually(Duration::from_secs(10), "the failure alert", || async {
        hooks
            .alerts()
            .into_iter()
            .find(|a| a["alert"] == "stage_failed")
    })
    .await;
    assert!(
        alert["text"]
            .as_str()
            .unwrap()
            .starts_with("Stage COLLECT failed"),
        "{alert}"
    );

    // Validation rules broken: every record refused, nothing exported either.
    world.board.fail(vec![]);
    let strict = json!({"sources": [{"site": "demo", "queries": ["engineer"], "max_per_query": 10}], "min_title_chars": 400});
    let batch_id = start(&world, "strict", strict).await;
    let (batch, runs) = finished(&db, batch_id).await;
    assert_eq!(batch.status, "failed");
    let validate = stage(&runs, "validate");
    assert!(
        validate
            .error_message
            .as_deref()
            .unwrap()
            .contains("Invalid title length: 10"),
        "{validate:?}"
    );
    assert_eq!(stage(&runs, "export").status, "upstream_failed");
    assert_eq!(count(&db, "SELECT count(*) FROM jobs").await, 0);

    // Cleared from the failed stage on (Airflow's "clear task") with the rules fixed, it passes.
    let fixed =
        json!({"sources": [{"site": "demo", "queries": ["engineer"], "max_per_query": 10}]});
    sqlx::query("UPDATE batches SET definition = $2 WHERE batch_id = $1")
        .bind(batch_id)
        .bind(&fixed)
        .execute(&db)
        .await
        .unwrap();
    trawl_pipeline::rerun_from(&world.services, batch_id, trawl_pipeline::Stage::Validate)
        .await
        .unwrap();
    let (batch, runs) = finished(&db, batch_id).await;
    assert_eq!(batch.status, "success", "{runs:#?}");
    assert_eq!(
        stage(&runs, "collect").attempt,
        1,
        "collect was not run again"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM jobs").await, 10);
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn slow_stages_and_batches_past_their_sla_raise_alerts_and_stop(db: PgPool) {
    let world = world(&db).await;
    fail_listings(&world, FaultAction::Delay { millis: 600 }, Some(1));
    let mut slow =
        json!({"sources": [{"site": "demo", "queries": ["engineer"], "max_per_query": 5}]});
    let mut stages =
        serde_json::to_value(trawl_pipeline::definition::StageLimits::default()).unwrap();
    stages["collect"]["alert_seconds"] = json!(0.2);
    slow["stages"] = stages;
    let batch_id = start(&world, "slow", slow).await;
    assert_eq!(finished(&db, batch_id).await.0.status, "success");
    let hooks = world.hooks.clone();
    let alert = test_support::eventually(
        Duration::from_secs(10),
        "the slow-stage alert at the webhook",
        || async {
            hooks
                .alerts()
                .into_iter()
                .find(|a| a["alert"] == "slow_stage")
        },
    )
    .await;
    assert_eq!(alert["stage"], "collect");
    assert!(
        alert["text"]
            .as_str()
            .unwrap()
            .starts_with("Stage COLLECT exceeded its alert threshold"),
        "{alert}"
    );

    // Refused records above max_failure_rate (5%): the batch goes on, an alert says so.
    let picky = json!({"sources": [{"site": "demo", "queries": ["engineer"], "max_per_query": 20}],
                       "min_title_chars": 24});
    let batch_id = start(&world, "picky", picky).await;
    let (batch, runs) = finished(&db, batch_id).await;
    assert_eq!(batch.status, "success");
    let validate = stage(&runs, "validate");
    let (valid, failed) = (
        validate.jobs_validated.unwrap(),
        validate.jobs_failed.unwrap(),
    );
    assert!(
        valid > 0 && f64::from(failed) / f64::from(valid + failed) > 0.05,
        "{validate:?}"
    );
    let alert = test_support::eventually(
        Duration::from_secs(10),
        "the failure-rate alert",
        || async {
            hooks
                .alerts()
                .into_iter()
                .find(|a| a["alert"] == "high_failure_rate")
        },
    )
    .await;
    assert!(
        alert["text"]
            .as_str()
            .unwrap()
            .starts_with("Stage VALIDATE: "),
        "{alert}"
    );

    // A batch past its total SLA is stopped by the scheduler's sweep, the run cancelled.
    let jobs_before = count(&db, "SELECT count(*) FROM jobs").await;
    fail_listings(&world, FaultAction::Delay { millis: 20_000 }, None);
    let timed = json!({"sources": [{"site": "demo", "queries": ["engineer"], "max_per_query": 5}], "total_sla_seconds": 1, "total_alert_seconds": 0.5});
    let batch_id = start(&world, "timed", timed).await;
    let services = world.services.clone();
    test_support::eventually(Duration::from_secs(10), "collect running", || async {
        store::stage_status(&services.db, batch_id, trawl_pipeline::Stage::Collect)
            .await
            .unwrap()
            .filter(|(s, _)| s == "running")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let alerts = trawl_pipeline::Alerts::new(world.hooks.url.clone());
    let swept = trawl_pipeline::sweep(&world.services, &alerts)
        .await
        .unwrap();
    assert_eq!(swept.stopped, 1, "{swept:?}");
    let (batch, runs) = finished(&db, batch_id).await;
    assert_eq!(batch.status, "stopped");
    assert_eq!(stage(&runs, "collect").status, "stopped");
    assert_eq!(stage(&runs, "export").status, "upstream_failed");
    let run_id = stage(&runs, "collect").run_id.clone().unwrap();
    test_support::eventually(
        Duration::from_secs(15),
        "the stopped stage's run ends",
        || async {
            let run = queue_core::store::get_run(&db, &run_id)
                .await
                .unwrap()
                .unwrap();
            run.status.is_terminal().then_some(())
        },
    )
    .await;
    let hooks = world.hooks.clone();
    test_support::eventually(Duration::from_secs(10), "the timeout alert", || async {
        hooks
            .alerts()
            .into_iter()
            .find(|a| a["alert"] == "batch_timeout")
    })
    .await;
    assert_eq!(
        count(&db, "SELECT count(*) FROM jobs").await,
        jobs_before,
        "the stopped batch exported nothing"
    );
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn invalid_definitions_are_refused_naming_the_field(db: PgPool) {
    let world = world(&db).await;
    let js = test_support::js_listing_definition(&world.board.url, "browser");
    let js_site = test_support::unpaused_site("demo-js", js, 0);
    trawl_scrape_runs::sites::upsert_site(&db, &js_site)
        .await
        .unwrap();
    for (definition, field) in [
        (json!({"sources": [{"site": "nowhere"}]}), "sources[0].site"),
        (
            json!({"sources": [{"site": "demo"}, {"site": "demo-js"}]}),
            "sources[1].site",
        ),
        (
            json!({"sources": [{"site": "demo"}], "cron": "every day"}),
            "cron",
        ),
        (
            json!({"sources": [{"site": "demo"}], "total_sla_seconds": 0}),
            "total_sla_seconds",
        ),
        (json!({"sources": [{"site": "demo"}], "sla": 3}), "sla"),
    ] {
        match trawl_pipeline::upsert_pipeline(&world.services, "bad", definition).await {
            Err(trawl_pipeline::PipelineError::Definition(err)) => {
                assert_eq!(err.field, field, "{err}")
            }
            other => panic!("{field}: {other:?}"),
        }
    }
    assert!(store::list_pipelines(&db).await.unwrap().is_empty());
    // A good one is stored with its schedule (seed 002's cron by default).
    trawl_pipeline::upsert_pipeline(
        &world.services,
        "good",
        json!({"sources": [{"site": "demo"}]}),
    )
    .await
    .unwrap();
    let schedules = queue_core::store::list_recurring(&db).await.unwrap();
    assert_eq!(schedules.len(), 1);
    assert_eq!(
        (
            schedules[0].name.as_str(),
            schedules[0].kind.as_str(),
            schedules[0].cron.as_deref()
        ),
        ("pipeline-good", "pipeline_batch", Some("30 0 * * *"))
    );
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn rollback_keeps_rows_a_later_scrape_wrote(db: PgPool) {
    let world = world(&db).await;
    let definition =
        json!({"sources": [{"site": "demo", "queries": ["engineer"], "max_per_query": 10}]});
    let batch = start(&world, "demo-only", definition).await;
    assert_eq!(finished(&db, batch).await.0.status, "success");
    // A scrape of the same site sees 4 of the batch's postings again after it.
    let scrape = trawl_scrape_runs::ScrapeTask {
        search_term: Some("engineer".into()),
        results_wanted: Some(4),
        ..trawl_scrape_runs::ScrapeTask::new("demo")
    };
    let site = trawl_scrape_runs::sites::get_site(&db, "demo")
        .await
        .unwrap()
        .unwrap();
    let task = scrape.into_task(
        queue_core::new_run_id(queue_core::Trigger::Manual),
        queue_core::Trigger::Manual,
    );
    let run_id = task.run_id.clone().unwrap();
    queue_core::submit_run(&world.services, &task, &trawl_scrape_runs::plan_for(&site))
        .await
        .unwrap();
    test_support::eventually(Duration::from_secs(30), "the scrape ends", || async {
        let run = queue_core::store::get_run(&db, &run_id).await.unwrap()?;
        run.status.is_terminal().then_some(())
    })
    .await;
    let undone = trawl_pipeline::rollback(&db, batch).await.unwrap();
    assert_eq!(
        (undone.deleted, undone.restored, undone.kept),
        (6, 0, 4),
        "{undone:?}"
    );
    let left: i64 = count(&db, "SELECT count(*) FROM jobs").await;
    assert_eq!(left, 4, "what the scrape wrote since stays");
}
