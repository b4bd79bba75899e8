//! Which ledger rows a claim takes: a run's first claim takes over lapsed claims (a killed
//! worker's) and its own earlier attempt's before pending postings; its later claims take
//! pending postings only.
use std::time::Duration;

use sqlx::PgPool;
use trawl_embeddings::store::{self, ClaimToken, Claims};

const MODEL: &str = "claims-test";
const LEASE: Duration = Duration::from_secs(300);

async fn posting(db: &PgPool, n: i32) -> uuid::Uuid {
    sqlx::query_scalar(
        "INSERT INTO jobs (job_id, site, external_id, job_title, company_name, location, \
                           job_description, url, source, content_hash) \
         VALUES (gen_random_uuid(), 'claims', $1::text, 'Engineer ' || $1, 'Acme', 'Berlin', \
                 'Build services', 'http://127.0.0.1/', 'test', 'h') RETURNING job_id",
    )
    .bind(n)
    .fetch_one(db)
    .await
    .unwrap()
}

fn token(run_id: &str, attempt: i32) -> ClaimToken<'_> {
    ClaimToken { run_id, attempt }
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_first_claim_takes_over_lapsed_claims_and_a_later_one_takes_pending_only(db: PgPool) {
    store::register_model(&db, MODEL, 384).await.unwrap();
    // Queued by the jobs trigger for the registered model.
    let lapsed = posting(&db, 1).await;
    let earlier_attempt = posting(&db, 2).await;
    let held = posting(&db, 3).await;
    let pending = posting(&db, 4).await;
    let claim_as = |run: &'static str, attempt: i32, until: &'static str, job: uuid::Uuid| {
        let db = db.clone();
        async move {
            sqlx::query(&format!(
                "UPDATE embedding_queue SET status = 'processing', claimed_run = $1, \
                 claimed_attempt = $2, claimed_until = now() + interval '{until}' \
                 WHERE job_id = $3"
            ))
            .bind(run)
            .bind(attempt)
            .bind(job)
            .execute(&db)
            .await
            .unwrap();
        }
    };
    // A killed worker's claim whose lease ran out; run-b's first attempt's claim (still
    // within its lease); a live claim of another run.
    claim_as("run-dead", 1, "-1 second", lapsed).await;
    claim_as("run-b", 1, "5 minutes", earlier_attempt).await;
    claim_as("run-live", 1, "5 minutes", held).await;

    let ids = |claimed: Vec<store::Claimed>| {
        let mut ids: Vec<_> = claimed.into_iter().map(|c| c.job_id).collect();
        ids.sort();
        ids
    };
    let sorted = |mut ids: Vec<uuid::Uuid>| {
        ids.sort();
        ids
    };
    // A later claim of run-a: the pending posting only.
    let later = store::claim(
        &db,
        MODEL,
        token("run-a", 1),
        10,
        LEASE,
        Claims::PendingOnly,
    )
    .await
    .unwrap();
    assert_eq!(ids(later), vec![pending]);
    // Run-b's second attempt, first claim: the lapsed claim and its own earlier attempt's,
    // never another run's live claim.
    let first = store::claim(
        &db,
        MODEL,
        token("run-b", 2),
        10,
        LEASE,
        Claims::TakeOverFirst,
    )
    .await
    .unwrap();
    assert_eq!(ids(first), sorted(vec![lapsed, earlier_attempt]));
    let holders: Vec<(String, i32)> = sqlx::query_as(
        "SELECT claimed_run, claimed_attempt FROM embedding_queue \
         WHERE job_id = ANY($1) ORDER BY job_id",
    )
    .bind(vec![lapsed, earlier_attempt])
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(holders, vec![("run-b".to_owned(), 2); 2]);
    let live: String =
        sqlx::query_scalar("SELECT claimed_run FROM embedding_queue WHERE job_id = $1")
            .bind(held)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(live, "run-live");
}
