use std::sync::Arc;

use sqlx::PgPool;
use test_support::embeddings::EmbeddingsFixture;
use trawl_embedder::HashingEmbedder;
use trawl_embeddings::{search, store};

use crate::helpers::{World, count, coverage, insert_postings};
use crate::provider::fixture_embedder;

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_new_model_fills_in_gradually_and_searches_switch_when_it_is_activated(db: PgPool) {
    let ids = insert_postings(
        &db,
        &[
            ("Rust engineer", "Rust services"),
            ("Nurse", "Hospital night shifts"),
            ("Chef", "Kitchen"),
        ],
    )
    .await;
    let mut world = World::new(&db, Arc::new(HashingEmbedder { batch_size: 16 })).await;
    world.settled("hashing-384").await;
    assert_eq!(
        store::active_model(&db).await.unwrap().as_deref(),
        Some("hashing-384")
    );

    // A worker with another model starts: every posting is queued for it; searches stay on
    // the active model meanwhile.
    let fixture = EmbeddingsFixture::start().await;
    world.start_worker(fixture_embedder(&fixture, 2)).await;
    let c = coverage(&db).await;
    let new = c
        .models
        .iter()
        .find(|m| m.model == "fixture-model")
        .unwrap();
    assert!(
        !new.active && new.embedded == 0 && new.pending == 3,
        "{new:?}"
    );
    let query = HashingEmbedder::vector("Rust engineer Rust services");
    let nearest = search::semantic_ranked(&db, "hashing-384", &query, 3)
        .await
        .unwrap();
    assert_eq!(nearest[0].0, ids[0]);
    assert!(nearest[0].1 > 0.9 && nearest[1].1 < 0.5, "{nearest:?}");
    world.settled("fixture-model").await;

    store::activate(&db, "fixture-model").await.unwrap();
    let c = coverage(&db).await;
    assert_eq!(c.active_model.as_deref(), Some("fixture-model"));
    let old = c.models.iter().find(|m| m.model == "hashing-384").unwrap();
    assert!(old.retired && !old.active);
    // A posting added now is queued for the active model only.
    insert_postings(&db, &[("Baker", "Bread")]).await;
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM embedding_queue WHERE status = 'pending'"
        )
        .await,
        1
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM embedding_queue WHERE status = 'pending' AND model = 'fixture-model'").await,
        1
    );
    // The similar-postings lookup uses the vectors of the model it is given.
    let similar = search::similar(&db, "fixture-model", ids[0], 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(similar.len(), 2);
    assert!(similar.iter().all(|(id, _)| *id != ids[0]));
    assert!(matches!(
        store::activate(&db, "no-such-model").await,
        Err(trawl_embeddings::EmbeddingsError::UnknownModel(_))
    ));
}
