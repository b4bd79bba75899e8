use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use test_support::embeddings::{Answer, EmbeddingsFixture};
use trawl_embedder::{HttpEmbedder, HttpSettings};

use crate::helpers::{World, count, coverage, insert_postings};

pub fn fixture_embedder(fixture: &EmbeddingsFixture, batch_size: usize) -> Arc<HttpEmbedder> {
    Arc::new(
        HttpEmbedder::new(HttpSettings {
            url: fixture.url.parse().unwrap(),
            model: "fixture-model".into(),
            api_key: None,
            batch_size,
            concurrency: 2,
            timeout: Duration::from_secs(5),
            // The worker's ledger retries, not the client: each failure is seen and counted.
            retries: 0,
            retry_base: Duration::from_millis(10),
        })
        .unwrap(),
    )
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn provider_failures_are_counted_with_reasons_and_nothing_is_written_half(db: PgPool) {
    let fixture = EmbeddingsFixture::start().await;
    insert_postings(
        &db,
        &[
            ("Rust engineer", "Services in Rust"),
            ("Data engineer", "Pipelines in Python"),
            ("Nurse", "Night shifts"),
            ("WRONGDIM analyst", "x"),
            ("NANVEC developer", "y"),
            ("", ""),
        ],
    )
    .await;
    // The first answer is a 500: the whole batch goes back with the reason and a retry time.
    fixture.then(Answer::ServerError);
    let world = World::new(&db, fixture_embedder(&fixture, 16)).await;
    // One pass queues the batch, and none follows until the 500 is seen: the postings then wait,
    // pending with its reason, for a pass to queue their retry. (A pass per poll could queue the
    // retry, 50 ms later, and have it answered before the poll read the reason it replaces.)
    world.pass().await;
    test_support::eventually(Duration::from_secs(30), "the 500 recorded", || async {
        let c = coverage(&db).await;
        let m = c.models.into_iter().find(|m| m.model == "fixture-model")?;
        m.top_failures
            .iter()
            .any(|f| f.reason.contains("HTTP 500"))
            .then_some(())
    })
    .await;
    let model = world.settled("fixture-model").await;
    assert_eq!((model.embedded, model.failed), (3, 3), "{model:?}");
    let reasons: Vec<&str> = model
        .top_failures
        .iter()
        .map(|f| f.reason.as_str())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("wrong dimension: 3") && r.ends_with("(attempt 5 of 5)")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("non-finite value at 5")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.starts_with("no text to embed")),
        "{reasons:?}"
    );
    // Only the good ones have vectors; the bad ones were tried five times each.
    assert_eq!(
        count(&db, "SELECT count(*) FROM posting_embeddings").await,
        3
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM embedding_queue WHERE status = 'failed' AND attempts = 5"
        )
        .await,
        2
    );
    // Runs that met failures say so: none ended `succeeded` while postings failed in it.
    let failed_or_partial = count(
        &db,
        "SELECT count(*) FROM task_runs WHERE kind = 'embed_batch' AND status IN ('failed', 'partial')",
    )
    .await;
    assert!(failed_or_partial >= 1);
    // A backfill puts the failed ones back with their attempts reset.
    let backfill = trawl_embeddings::backfill(&world.services, Some("fixture-model"))
        .await
        .unwrap();
    assert_eq!(backfill.queued, 3);
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn an_answer_that_is_not_json_fails_only_the_posting_that_causes_it(db: PgPool) {
    let fixture = EmbeddingsFixture::start().await;
    insert_postings(
        &db,
        &[
            ("Rust engineer", "a"),
            ("Go engineer", "b"),
            ("Java engineer", "c"),
        ],
    )
    .await;
    // The batch's answer is garbage; the one-by-one retry then gets good answers.
    fixture.then(Answer::NotJson);
    let world = World::new(&db, fixture_embedder(&fixture, 16)).await;
    let model = world.settled("fixture-model").await;
    assert_eq!((model.embedded, model.failed), (3, 0));
    let sizes: Vec<usize> = fixture.requests().iter().map(Vec::len).collect();
    assert_eq!(sizes[..4], [3, 1, 1, 1], "{sizes:?}");
}
