//! How much of the catalogue has a current vector, read from the ledger (never from a
//! process's own counter): `GET /embeddings/coverage`, `trawl embed status`, the backfill's
//! progress bar, the dashboard panel and the API's gauges all call [`coverage`].
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::EmbeddingsError;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Coverage {
    /// The model searches use (None until a worker has registered one).
    pub active_model: Option<String>,
    /// Postings still advertised (`jobs.is_active`): the denominator.
    pub active_postings: i64,
    pub models: Vec<ModelCoverage>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelCoverage {
    pub model: String,
    pub active: bool,
    pub retired: bool,
    /// Active postings with a vector of this model for their current text.
    pub embedded: i64,
    /// Active postings without one.
    pub without: i64,
    /// embedded / active postings × 100 (100 when there are none).
    pub percent: f64,
    /// Waiting in the ledger (a failed attempt waiting for its retry included).
    pub pending: i64,
    /// Claimed by a run right now.
    pub processing: i64,
    /// Given up on after every attempt failed; `trawl embed backfill` queues them again.
    pub failed: i64,
    /// Pending postings whose last attempt failed and that will be tried again.
    pub retrying: i64,
    /// Postings embedded per second over the last 5 minutes.
    pub rate_per_second: f64,
    /// The most frequent reasons of failed and retrying postings.
    pub top_failures: Vec<FailureReason>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FailureReason {
    pub reason: String,
    pub postings: i64,
}

pub async fn coverage(db: &PgPool) -> Result<Coverage, EmbeddingsError> {
    let active_postings =
        sqlx::query_scalar!("SELECT count(*) AS \"n!\" FROM jobs WHERE is_active")
            .fetch_one(db)
            .await?;
    let rows = sqlx::query!(
        "SELECT m.model, m.active, m.retired, \
            count(*) FILTER (WHERE q.status = 'completed') AS \"embedded!\", \
            count(*) FILTER (WHERE q.status = 'pending') AS \"pending!\", \
            count(*) FILTER (WHERE q.status = 'processing') AS \"processing!\", \
            count(*) FILTER (WHERE q.status = 'failed') AS \"failed!\", \
            count(*) FILTER (WHERE q.status = 'pending' AND q.last_error IS NOT NULL) AS \"retrying!\", \
            count(*) FILTER (WHERE q.status = 'completed' \
                             AND q.updated_at > now() - interval '5 minutes') AS \"recent!\" \
         FROM embedding_models m \
         LEFT JOIN (embedding_queue q JOIN jobs j ON j.job_id = q.job_id AND j.is_active) \
                ON q.model = m.model \
         GROUP BY m.model, m.active, m.retired \
         ORDER BY m.active DESC, m.registered_at DESC"
    )
    .fetch_all(db)
    .await?;
    let reasons = sqlx::query!(
        "SELECT q.model, q.last_error AS \"reason!\", count(*) AS \"postings!\" \
         FROM embedding_queue q JOIN jobs j ON j.job_id = q.job_id AND j.is_active \
         WHERE q.last_error IS NOT NULL AND q.status IN ('failed', 'pending') \
         GROUP BY q.model, q.last_error ORDER BY count(*) DESC LIMIT 50"
    )
    .fetch_all(db)
    .await?;
    let models = rows
        .into_iter()
        .map(|r| {
            let top_failures = reasons
                .iter()
                .filter(|f| f.model == r.model)
                .take(5)
                .map(|f| FailureReason {
                    reason: f.reason.clone(),
                    postings: f.postings,
                })
                .collect();
            ModelCoverage {
                percent: percent(r.embedded, active_postings),
                without: (active_postings - r.embedded).max(0),
                rate_per_second: r.recent as f64 / 300.0,
                model: r.model,
                active: r.active,
                retired: r.retired,
                embedded: r.embedded,
                pending: r.pending,
                processing: r.processing,
                failed: r.failed,
                retrying: r.retrying,
                top_failures,
            }
        })
        .collect();
    let active_model = sqlx::query_scalar!("SELECT model FROM embedding_models WHERE active")
        .fetch_optional(db)
        .await?;
    Ok(Coverage {
        active_model,
        active_postings,
        models,
    })
}

fn percent(embedded: i64, total: i64) -> f64 {
    if total == 0 {
        100.0
    } else {
        (embedded as f64 * 10_000.0 / total as f64).round() / 100.0
    }
}

/// One point of a model's coverage line.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CoverageSample {
    pub model: String,
    pub sampled_at: DateTime<Utc>,
    pub active_postings: i64,
    pub embedded: i64,
    pub pending: i64,
    pub failed: i64,
}

/// Records this minute's coverage of every current model (once per minute, whoever calls
/// first) and forgets samples older than 7 days. Returns whether it sampled.
pub async fn sample(db: &PgPool) -> Result<bool, EmbeddingsError> {
    // Passes come every few seconds; the coverage query is worth running once a minute.
    let taken = sqlx::query_scalar!(
        "SELECT EXISTS (SELECT 1 FROM embedding_coverage_samples \
                        WHERE sampled_at = date_trunc('minute', now())) AS \"taken!\""
    )
    .fetch_one(db)
    .await?;
    if taken {
        return Ok(false);
    }
    let current = coverage(db).await?;
    let mut sampled = false;
    for model in current.models.iter().filter(|m| !m.retired) {
        let inserted = sqlx::query!(
            "INSERT INTO embedding_coverage_samples \
                (model, sampled_at, active_postings, embedded, pending, failed) \
             VALUES ($1, date_trunc('minute', now()), $2, $3, $4, $5) \
             ON CONFLICT DO NOTHING",
            model.model,
            current.active_postings,
            model.embedded,
            model.pending + model.processing,
            model.failed,
        )
        .execute(db)
        .await?;
        sampled |= inserted.rows_affected() > 0;
    }
    if sampled {
        sqlx::query!(
            "DELETE FROM embedding_coverage_samples WHERE sampled_at < now() - interval '7 days'"
        )
        .execute(db)
        .await?;
    }
    Ok(sampled)
}

/// The samples of the last `hours`, oldest first.
pub async fn history(db: &PgPool, hours: i32) -> Result<Vec<CoverageSample>, EmbeddingsError> {
    Ok(sqlx::query_as!(
        CoverageSample,
        "SELECT model, sampled_at, active_postings, embedded, pending, failed \
         FROM embedding_coverage_samples \
         WHERE sampled_at > now() - make_interval(hours => $1) ORDER BY sampled_at",
        hours,
    )
    .fetch_all(db)
    .await?)
}
