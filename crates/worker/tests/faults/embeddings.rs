//! A backfill whose worker is `kill -9`'d half-way, then resumed the way an operator would
//! (run the backfill again): every posting ends embedded exactly once, and only the postings
//! in flight at the kill were sent to the provider twice.
use std::collections::HashMap;
use std::time::Duration;

use sqlx::PgPool;
use test_support::embeddings::EmbeddingsFixture;
use test_support::{TestRedis, database_url, eventually};

use crate::fleet::*;

const POSTINGS: i64 = 300;
const BATCH: usize = 10;

async fn count(db: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db).await.unwrap()
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_backfill_killed_half_way_resumes_and_embeds_nothing_twice(db: PgPool) {
    let redis = TestRedis::new();
    let fixture = EmbeddingsFixture::start().await;
    // A slow provider: 300 ms a request of 10, so the kill lands mid-backfill.
    fixture.slow_down(Duration::from_millis(300));
    sqlx::query(
        "INSERT INTO jobs (job_id, site, external_id, job_title, job_description, location, url, \
                           source, content_hash) \
         SELECT gen_random_uuid(), 'fixture', n::text, 'Engineer ' || n, 'Posting ' || n, \
                'Paris', 'http://127.0.0.1/', 'fixture', 'h' \
         FROM generate_series(1, $1) n",
    )
    .bind(POSTINGS)
    .execute(&db)
    .await
    .unwrap();
    let batch = BATCH.to_string();
    let env = [
        ("EMBEDDER", "openai"),
        ("EMBEDDINGS_URL", fixture.url.as_str()),
        ("EMBEDDINGS_MODEL", "fixture-model"),
        ("EMBEDDINGS_BATCH", batch.as_str()),
        ("EMBEDDINGS_RETRIES", "0"),
        ("WORKER_QUEUES", "embeddings"),
    ];
    let mut fleet = Fleet::new(&database_url(&db), &redis.url, &redis.prefix, &env);
    fleet.spawn_worker();
    let services = redis.services(&db);
    // The worker registers its model at start (and so queues every posting for it).
    eventually(Duration::from_secs(30), "the model registered", || async {
        (count(&db, "SELECT count(*) FROM embedding_models WHERE active").await == 1).then_some(())
    })
    .await;
    let started = trawl_embeddings::backfill(&services, None).await.unwrap();
    assert_eq!(started.due, POSTINGS);
    assert!(!started.run_ids.is_empty());
    let embedded = "SELECT count(*) FROM embedding_queue WHERE status = 'completed'";
    // Kill while a batch is claimed (the 300 ms request in flight), not between two batches.
    let processing = "SELECT count(*) FROM embedding_queue WHERE status = 'processing'";
    let at_kill = eventually(
        Duration::from_secs(60),
        "a third embedded, a batch claimed",
        || async {
            let n = count(&db, embedded).await;
            (n >= POSTINGS / 3 && count(&db, processing).await > 0).then_some(n)
        },
    )
    .await;
    let mut killed = fleet.workers.remove(0);
    killed.kill9();
    let after_kill = count(&db, embedded).await;
    assert!(
        after_kill < POSTINGS,
        "killed half-way: {at_kill}..{after_kill} of {POSTINGS}"
    );
    assert!(
        count(
            &db,
            "SELECT count(*) FROM embedding_queue WHERE status = 'processing'"
        )
        .await
            > 0
    );

    // Resume: a worker and a scheduler (which recovers the dead worker's run), and the
    // backfill run again.
    fleet.spawn_loop(1);
    let resumed = trawl_embeddings::backfill(&services, None).await.unwrap();
    assert_eq!(
        resumed.queued, 0,
        "nothing embedded or waiting is queued twice"
    );
    eventually(
        Duration::from_secs(90),
        "every posting embedded",
        || async { (count(&db, embedded).await == POSTINGS).then_some(()) },
    )
    .await;
    fleet.assert_all_running("after the backfill");
    assert_eq!(
        count(&db, "SELECT count(*) FROM posting_embeddings").await,
        POSTINGS
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM posting_embeddings WHERE writes <> 1"
        )
        .await,
        0
    );
    // Sent twice: at most what the killed worker's runs held when it died (RUNS_PER_WORKER
    // runs for its one live worker, a batch each).
    let mut sent: HashMap<String, u32> = HashMap::new();
    for text in fixture.requests().into_iter().flatten() {
        *sent.entry(text).or_default() += 1;
    }
    assert_eq!(sent.len() as i64, POSTINGS);
    let twice = sent.values().filter(|n| **n > 1).count();
    let in_flight_bound = trawl_embeddings::RUNS_PER_WORKER as usize * BATCH;
    assert!(
        twice <= in_flight_bound,
        "{twice} texts sent twice (bound {in_flight_bound})"
    );
    test_support::assert_invariants(&services).await;
}
