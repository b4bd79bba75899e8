//! The embedding ledger in PostgreSQL: models, the per-posting queue (`embedding_queue`) and
//! the vectors (`posting_embeddings`). Every write names only the embedding columns, in bulk.
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::EmbeddingsError;

/// A posting claimed for embedding, with the text fields `posting_text` reads.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub job_id: Uuid,
    pub content_hash: String,
    pub attempts: i32,
    pub title: String,
    pub company: Option<String>,
    pub location: String,
    pub skills: Option<String>,
    pub description: Option<String>,
}

/// Who holds a claim: a run's attempt (the fencing token).
#[derive(Debug, Clone, Copy)]
pub struct ClaimToken<'a> {
    pub run_id: &'a str,
    pub attempt: i32,
}

/// Records `model` (the first worker to run it does); queues every active posting for it, so a
/// new model fills in gradually; makes it active if no model is. Un-retires a model that comes
/// back. Returns whether it is the active model.
pub async fn register_model(
    db: &PgPool,
    model: &str,
    dimensions: i32,
) -> Result<bool, EmbeddingsError> {
    let mut tx = db.begin().await?;
    let row = sqlx::query!(
        "INSERT INTO embedding_models (model, dimensions) VALUES ($1, $2) \
         ON CONFLICT (model) DO UPDATE SET retired = false \
         RETURNING (xmax = 0) AS \"fresh!\", retired AS \"was_retired!\"",
        model,
        dimensions,
    )
    .fetch_one(&mut *tx)
    .await?;
    if row.fresh || row.was_retired {
        queue_missing(&mut tx, model).await?;
    }
    sqlx::query!(
        "UPDATE embedding_models SET active = true, activated_at = now() \
         WHERE model = $1 AND NOT EXISTS (SELECT 1 FROM embedding_models WHERE active)",
        model,
    )
    .execute(&mut *tx)
    .await?;
    let active = sqlx::query_scalar!(
        "SELECT active FROM embedding_models WHERE model = $1",
        model
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(active)
}

/// Queues every active posting that has no current vector of `model` and is not queued; puts
/// failed ones back to pending with their attempts reset. Returns how many were (re)queued.
/// The postings read are locked (FOR KEY SHARE) until the commit: one deleted meanwhile is
/// skipped, not queued after its delete trigger has run (the ledger has no foreign key to
/// `jobs`, see the migration `embeddings_without_posting_locks`).
async fn queue_missing(tx: &mut sqlx::PgConnection, model: &str) -> Result<u64, EmbeddingsError> {
    let queued = sqlx::query!(
        "INSERT INTO embedding_queue (job_id, model, content_hash) \
         SELECT j.job_id, $1, posting_embedding_hash(j.job_title, j.company_name, j.location, \
                                                     j.skills_required, j.job_description) \
         FROM jobs j WHERE j.is_active FOR KEY SHARE OF j \
         ON CONFLICT (job_id, model) DO UPDATE \
            SET status = 'pending', attempts = 0, last_error = NULL, next_attempt_at = now(), \
                updated_at = now() \
            WHERE embedding_queue.status = 'failed' \
               OR (embedding_queue.status = 'completed' AND NOT EXISTS ( \
                   SELECT 1 FROM posting_embeddings e WHERE e.job_id = embedding_queue.job_id \
                   AND e.model = embedding_queue.model \
                   AND e.content_hash = embedding_queue.content_hash))",
        model,
    )
    .execute(&mut *tx)
    .await?;
    Ok(queued.rows_affected())
}

/// `trawl embed backfill`: queues what `model` lacks (see [`queue_missing`]).
pub async fn backfill(db: &PgPool, model: &str) -> Result<u64, EmbeddingsError> {
    let mut tx = db.begin().await?;
    let known = sqlx::query_scalar!(
        "SELECT retired FROM embedding_models WHERE model = $1",
        model
    )
    .fetch_optional(&mut *tx)
    .await?;
    match known {
        None => return Err(EmbeddingsError::UnknownModel(model.to_owned())),
        Some(true) => {
            return Err(EmbeddingsError::Refused(format!(
                "model {model:?} is retired; activate it first"
            )));
        }
        Some(false) => {}
    }
    let queued = queue_missing(&mut tx, model).await?;
    tx.commit().await?;
    Ok(queued)
}

/// Makes `model` the one searches use; the others are retired (no longer queued; their vectors
/// stay until they are deleted with their model).
pub async fn activate(db: &PgPool, model: &str) -> Result<(), EmbeddingsError> {
    let mut tx = db.begin().await?;
    let known = sqlx::query_scalar!("SELECT 1 FROM embedding_models WHERE model = $1", model)
        .fetch_optional(&mut *tx)
        .await?;
    if known.is_none() {
        return Err(EmbeddingsError::UnknownModel(model.to_owned()));
    }
    sqlx::query!(
        "UPDATE embedding_models SET active = false, retired = true WHERE model <> $1",
        model
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE embedding_models SET active = true, retired = false, activated_at = now() \
         WHERE model = $1",
        model
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "DELETE FROM embedding_queue WHERE model <> $1 AND status <> 'completed'",
        model
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn active_model(db: &PgPool) -> Result<Option<String>, EmbeddingsError> {
    Ok(
        sqlx::query_scalar!("SELECT model FROM embedding_models WHERE active")
            .fetch_optional(db)
            .await?,
    )
}

/// The active model, or [`EmbeddingsError::NoActiveModel`].
pub async fn require_active_model(db: &PgPool) -> Result<String, EmbeddingsError> {
    active_model(db)
        .await?
        .ok_or(EmbeddingsError::NoActiveModel)
}

/// Which claims `claim` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claims {
    /// Processing postings whose claim lapsed (a killed worker's) or that an earlier attempt of
    /// the same run held, first; then pending ones. A run's first claim.
    TakeOverFirst,
    /// Pending postings only. A run's later claims: looking for lapsed claims scans every
    /// processing row, and a run started while some lapse takes them over at its first claim.
    PendingOnly,
}

/// Claims up to `limit` due postings of `model` for this attempt: pending ones whose time has
/// come, oldest first, after (with `Claims::TakeOverFirst`) processing ones whose claim lapsed
/// or that an earlier attempt of the same run held. `SKIP LOCKED`: parallel runs take disjoint
/// sets. The pending part follows the `embedding_queue_due` index in order and stops at
/// `limit`, so a claim costs the same with 100 postings waiting or 100,000.
pub async fn claim(
    db: &PgPool,
    model: &str,
    token: ClaimToken<'_>,
    limit: i64,
    lease: Duration,
    which: Claims,
) -> Result<Vec<Claimed>, EmbeddingsError> {
    let lease_ms = lease.as_millis() as f64;
    let rows = sqlx::query!(
        "WITH lapsed AS ( \
            SELECT job_id FROM embedding_queue \
            WHERE $6 AND model = $1 AND status = 'processing' \
              AND (claimed_until < now() OR (claimed_run = $2 AND claimed_attempt < $3)) \
            LIMIT $4 FOR UPDATE SKIP LOCKED), \
         pending AS ( \
            SELECT job_id FROM embedding_queue \
            WHERE model = $1 AND status = 'pending' AND next_attempt_at <= now() \
            ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED), \
         due AS ( \
            SELECT job_id FROM lapsed UNION ALL SELECT job_id FROM pending LIMIT $4), \
         claimed AS ( \
            UPDATE embedding_queue q SET status = 'processing', claimed_run = $2, \
                claimed_attempt = $3, attempts = q.attempts + 1, updated_at = now(), \
                claimed_until = now() + make_interval(secs => $5::float8 / 1000.0) \
            FROM due WHERE q.job_id = due.job_id AND q.model = $1 \
            RETURNING q.job_id, q.content_hash, q.attempts) \
         SELECT c.job_id, c.content_hash, c.attempts, j.job_title, j.company_name, j.location, \
                j.skills_required, j.job_description \
         FROM claimed c JOIN jobs j USING (job_id)",
        model,
        token.run_id,
        token.attempt,
        limit,
        lease_ms,
        which == Claims::TakeOverFirst,
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Claimed {
            job_id: r.job_id,
            content_hash: r.content_hash,
            attempts: r.attempts,
            title: r.job_title,
            company: r.company_name,
            location: r.location,
            skills: r.skills_required,
            description: r.job_description,
        })
        .collect())
}

/// A transaction for one statement that joins a batch (arrays of a thousand postings) with
/// the ledger rows its run holds, planned for this batch (send it unnamed) and with no nested
/// loop. The planner guesses one `processing` row (there are few, and the statistics were
/// often taken with none) and then joined the batch by reading it whole once per posting: 136
/// ms a batch in `trawl-bench embed` where a hash join takes 5.
async fn batch_plan(
    db: &PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, EmbeddingsError> {
    let mut tx = db.begin().await?;
    sqlx::query!("SET LOCAL enable_nestloop = off")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Stores the vectors of claimed postings and marks them completed, in one statement: only
/// rows this attempt still holds with the content they were computed from (a posting changed
/// meanwhile stays pending for its new text; a lapsed claim taken over writes nothing).
/// `vectors` is the vectors one after the other, `dimensions` floats each. Returns how many
/// were written.
///
/// Planned for each call with the batch in hand and without nested loops (see `batch_plan`).
pub async fn complete(
    db: &PgPool,
    model: &str,
    token: ClaimToken<'_>,
    done: &[(Uuid, String)],
    vectors: &[f32],
    dimensions: usize,
) -> Result<u64, EmbeddingsError> {
    if done.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = done.iter().map(|(id, _)| *id).collect();
    let hashes: Vec<String> = done.iter().map(|(_, h)| h.clone()).collect();
    let mut tx = batch_plan(db).await?;
    let written = sqlx::query!(
        "WITH held AS ( \
            UPDATE embedding_queue q SET status = 'completed', last_error = NULL, \
                claimed_run = NULL, claimed_attempt = NULL, claimed_until = NULL, \
                updated_at = now() \
            FROM unnest($2::uuid[], $3::text[]) WITH ORDINALITY AS d(job_id, hash, n) \
            WHERE q.model = $1 AND q.job_id = d.job_id AND q.content_hash = d.hash \
              AND q.status = 'processing' AND q.claimed_run = $4 AND q.claimed_attempt = $5 \
            RETURNING q.job_id, q.content_hash, d.n) \
         INSERT INTO posting_embeddings AS e (job_id, model, embedding, content_hash) \
         SELECT held.job_id, $1, \
                ($6::float4[])[(held.n - 1) * $7 + 1 : held.n * $7]::vector, held.content_hash \
         FROM held \
         ON CONFLICT (job_id, model) DO UPDATE \
            SET embedding = EXCLUDED.embedding, content_hash = EXCLUDED.content_hash, \
                embedded_at = now(), writes = e.writes + 1",
        model,
        &ids,
        &hashes,
        token.run_id,
        token.attempt,
        vectors,
        dimensions as i32,
    )
    .persistent(false)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(written.rows_affected())
}

/// A posting this attempt could not embed, and why: back to pending after `retry_in`, or
/// `failed` for good when `retry_in` is None.
#[derive(Debug, Clone)]
pub struct Failure {
    pub job_id: Uuid,
    pub reason: String,
    pub retry_in: Option<Duration>,
}

/// Records failures of postings this attempt holds. Returns how many rows changed.
pub async fn fail(
    db: &PgPool,
    model: &str,
    token: ClaimToken<'_>,
    failures: &[Failure],
) -> Result<u64, EmbeddingsError> {
    if failures.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = failures.iter().map(|f| f.job_id).collect();
    let reasons: Vec<String> = failures.iter().map(|f| f.reason.clone()).collect();
    let retry_ms: Vec<Option<i64>> = failures
        .iter()
        .map(|f| f.retry_in.map(|d| d.as_millis() as i64))
        .collect();
    let mut tx = batch_plan(db).await?;
    let changed = sqlx::query!(
        "UPDATE embedding_queue q SET \
            status = CASE WHEN f.retry_ms IS NULL THEN 'failed' ELSE 'pending' END, \
            last_error = f.reason, updated_at = now(), \
            next_attempt_at = now() + make_interval(secs => coalesce(f.retry_ms, 0) / 1000.0), \
            claimed_run = NULL, claimed_attempt = NULL, claimed_until = NULL \
         FROM unnest($2::uuid[], $3::text[], $4::int8[]) AS f(job_id, reason, retry_ms) \
         WHERE q.model = $1 AND q.job_id = f.job_id AND q.status = 'processing' \
           AND q.claimed_run = $5 AND q.claimed_attempt = $6",
        model,
        &ids,
        &reasons,
        &retry_ms as &[Option<i64>],
        token.run_id,
        token.attempt,
    )
    .persistent(false)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(changed.rows_affected())
}

/// Gives back what this attempt still holds (it is stopping: cancelled, out of time), due now.
pub async fn release(
    db: &PgPool,
    model: &str,
    token: ClaimToken<'_>,
) -> Result<u64, EmbeddingsError> {
    let released = sqlx::query!(
        "UPDATE embedding_queue SET status = 'pending', attempts = greatest(attempts - 1, 0), \
            claimed_run = NULL, claimed_attempt = NULL, claimed_until = NULL, updated_at = now() \
         WHERE model = $1 AND status = 'processing' AND claimed_run = $2 AND claimed_attempt = $3",
        model,
        token.run_id,
        token.attempt,
    )
    .execute(db)
    .await?;
    Ok(released.rows_affected())
}

/// Postings of each current model waiting now (pending and due, or a lapsed claim).
pub async fn due_by_model(db: &PgPool) -> Result<Vec<(String, i64)>, EmbeddingsError> {
    let rows = sqlx::query!(
        "SELECT m.model, count(q.job_id) AS \"due!\" FROM embedding_models m \
         JOIN embedding_queue q ON q.model = m.model \
         WHERE NOT m.retired AND ((q.status = 'pending' AND q.next_attempt_at <= now()) \
               OR (q.status = 'processing' AND q.claimed_until < now())) \
         GROUP BY m.model"
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.model, r.due)).collect())
}

/// When the next pending posting of a current model becomes due, if any is waiting.
pub async fn next_due(db: &PgPool) -> Result<Option<DateTime<Utc>>, EmbeddingsError> {
    Ok(sqlx::query_scalar!(
        "SELECT min(q.next_attempt_at) FROM embedding_queue q \
         JOIN embedding_models m USING (model) WHERE NOT m.retired AND q.status = 'pending'"
    )
    .fetch_one(db)
    .await?)
}
