use std::sync::Arc;

use sqlx::PgPool;
use test_support::TestBoard;
use trawl_embedder::HashingEmbedder;

use crate::helpers::{World, count, coverage};

const MODEL: &str = "hashing-384";

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn scraped_postings_are_embedded_without_anyone_asking_and_again_when_they_change(
    db: PgPool,
) {
    let world = World::new(&db, Arc::new(HashingEmbedder { batch_size: 16 })).await;
    let board = TestBoard::start().await;
    test_support::register_site(&db, "demo", &board.url, 0).await;
    // Scheduler passes only: the first queues the scrape, later ones see the postings the
    // scrape stored (queued for embedding by the jobs trigger) and queue embed_batch runs.
    let done = test_support::eventually(
        std::time::Duration::from_secs(90),
        "scraped and embedded",
        || async {
            world.pass().await;
            let coverage = coverage(&db).await;
            let model = coverage.models.iter().find(|m| m.model == MODEL)?.clone();
            (coverage.active_postings > 0 && model.embedded == coverage.active_postings)
                .then_some((coverage.active_postings, model))
        },
    )
    .await;
    let (postings, model) = done;
    assert_eq!(model.percent, 100.0);
    assert_eq!((model.pending, model.processing, model.failed), (0, 0, 0));
    assert_eq!(
        count(&db, "SELECT count(*) FROM posting_embeddings").await,
        postings
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM posting_embeddings WHERE writes <> 1"
        )
        .await,
        0
    );
    // Stored vectors are the model's, for the posting's current text.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM posting_embeddings e JOIN jobs j USING (job_id) \
                    WHERE e.content_hash <> posting_embedding_hash(j.job_title, j.company_name, \
                          j.location, j.skills_required, j.job_description)"
        )
        .await,
        0
    );
    test_support::eventually(std::time::Duration::from_secs(10), "an embed_batch run succeeded", || async {
        (count(&db, "SELECT count(*) FROM task_runs WHERE kind = 'embed_batch' AND status = 'succeeded'").await >= 1)
            .then_some(())
    })
    .await;

    // Seen again unchanged: nothing to do. One description edited: that posting only.
    sqlx::query("UPDATE jobs SET last_seen_at = now()")
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM embedding_queue WHERE status <> 'completed'"
        )
        .await,
        0
    );
    let changed: uuid::Uuid = sqlx::query_scalar(
        "UPDATE jobs SET job_description = 'Now a Rust and Kafka role' \
         WHERE job_id = (SELECT min(job_id::text)::uuid FROM jobs) RETURNING job_id",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM embedding_queue WHERE status = 'pending'"
        )
        .await,
        1
    );
    world.settled(MODEL).await;
    let writes: i32 = sqlx::query_scalar("SELECT writes FROM posting_embeddings WHERE job_id = $1")
        .bind(changed)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(writes, 2);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM posting_embeddings WHERE writes > 1"
        )
        .await,
        1
    );
    test_support::assert_invariants(&world.services).await;
    // A deleted posting takes its ledger rows and vectors with it (a trigger: no foreign key).
    // Last, after the invariants: its scrape's links go with it too.
    sqlx::query("DELETE FROM jobs WHERE job_id = $1")
        .bind(changed)
        .execute(&db)
        .await
        .unwrap();
    for table in ["embedding_queue", "posting_embeddings"] {
        let left: i64 =
            sqlx::query_scalar(&format!("SELECT count(*) FROM {table} WHERE job_id = $1"))
                .bind(changed)
                .fetch_one(&db)
                .await
                .unwrap();
        assert_eq!(left, 0, "{table} rows of the deleted posting");
    }
    assert_eq!(
        count(&db, "SELECT count(*) FROM posting_embeddings").await,
        postings - 1
    );
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn empty_and_huge_postings_are_failed_or_embedded_never_stuck(db: PgPool) {
    let huge = "Rust ".repeat(200_000);
    let ids = crate::helpers::insert_postings(
        &db,
        &[
            ("", ""),
            ("Data engineer", huge.as_str()),
            ("Ingénieur 数据 مهندس", "多语言"),
        ],
    )
    .await;
    let world = World::new(&db, Arc::new(HashingEmbedder { batch_size: 16 })).await;
    let model = world.settled(MODEL).await;
    assert_eq!((model.embedded, model.failed), (2, 1));
    assert_eq!(model.top_failures.len(), 1);
    assert!(
        model.top_failures[0].reason.starts_with("no text to embed"),
        "{:?}",
        model.top_failures
    );
    let status: String = sqlx::query_scalar("SELECT status FROM embedding_queue WHERE job_id = $1")
        .bind(ids[0])
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(status, "failed");
}
