//! What makes embedding automatic: in every scheduler pass, postings waiting in the ledger get
//! `embed_batch` runs (one per live worker serving the embeddings queue, at most), and coverage
//! is sampled once a minute. Nobody has to ask.
use queue_core::{Services, Trigger};
use serde::{Deserialize, Serialize};

use crate::{EmbeddingsError, coverage, handler, store};

/// Postings waiting per `embed_batch` run worth queueing: below it one run takes them all.
/// Runs take disjoint postings (`SKIP LOCKED`); there are at most [`RUNS_PER_WORKER`] queued or
/// running per live worker serving the embeddings queue (counting at least one), so
/// `--scale worker=N` embeds 2N batches at once. Each worker's weighted picker still shares its
/// slots between its queues, so a backfill never starves the scrapes.
pub const POSTINGS_PER_RUN: i64 = 500;
/// `embed_batch` runs per live embeddings worker: two, so one run's database round trips
/// overlap another's embedding.
pub const RUNS_PER_WORKER: i64 = 2;

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[schema(as = EmbeddingsSwept)]
pub struct Swept {
    /// Postings waiting for a run.
    pub due: i64,
    /// The `embed_batch` runs this pass queued.
    pub run_ids: Vec<String>,
}

pub async fn sweep(services: &Services) -> Result<Swept, EmbeddingsError> {
    let db = &services.db;
    coverage::sample(db).await?;
    let due: i64 = store::due_by_model(db).await?.iter().map(|(_, n)| n).sum();
    let mut swept = Swept {
        due,
        run_ids: Vec::new(),
    };
    if due == 0 {
        return Ok(swept);
    }
    swept.run_ids = top_up(services, due, Trigger::Schedule).await?;
    Ok(swept)
}

/// Queues `embed_batch` runs until as many as `due` postings need (one per
/// [`POSTINGS_PER_RUN`], [`RUNS_PER_WORKER`] per live embeddings worker at most) are queued or
/// running.
/// Returns the runs it queued.
async fn top_up(
    services: &Services,
    due: i64,
    trigger: Trigger,
) -> Result<Vec<String>, EmbeddingsError> {
    let in_flight = sqlx::query_scalar!(
        "SELECT count(*) AS \"n!\" FROM task_runs \
         WHERE kind = $1 AND finished_at IS NULL",
        handler::KIND,
    )
    .fetch_one(&services.db)
    .await?;
    let workers = services
        .queue_named(handler::QUEUE)
        .live_workers()
        .await?
        .len() as i64;
    let wanted = (RUNS_PER_WORKER * workers.max(1))
        .min(((due + POSTINGS_PER_RUN - 1) / POSTINGS_PER_RUN).max(1));
    let mut run_ids = Vec::new();
    for _ in in_flight..wanted.max(in_flight) {
        let run_id = handler::submit(services, trigger).await?;
        tracing::info!(run_id = %run_id, due, event = "embed_queued", "postings waiting for embedding; run queued");
        run_ids.push(run_id);
    }
    Ok(run_ids)
}

/// What `trawl embed backfill` and `POST /embeddings/backfill` did.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Backfill {
    pub model: String,
    /// Postings put in the ledger as pending (new, or failed before).
    pub queued: u64,
    /// Postings of the model waiting now (queued by this call or earlier).
    pub due: i64,
    pub run_ids: Vec<String>,
}

/// Queues every active posting that lacks a current vector of `model` (default: the active
/// model) and the runs to embed them. Idempotent: what is embedded or queued stays as it is.
pub async fn backfill(
    services: &Services,
    model: Option<&str>,
) -> Result<Backfill, EmbeddingsError> {
    let model = match model {
        Some(model) => model.to_owned(),
        None => store::require_active_model(&services.db).await?,
    };
    let queued = store::backfill(&services.db, &model).await?;
    let due = store::due_by_model(&services.db)
        .await?
        .into_iter()
        .find(|(m, _)| *m == model)
        .map_or(0, |(_, n)| n);
    let run_ids = if due > 0 {
        top_up(services, due, Trigger::Manual).await?
    } else {
        Vec::new()
    };
    Ok(Backfill {
        model,
        queued,
        due,
        run_ids,
    })
}
