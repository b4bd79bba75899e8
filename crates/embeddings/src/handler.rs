//! The `embed_batch` kind on the `embeddings` queue: claims due postings of this worker's model
//! from the ledger, embeds them, stores the vectors — batch after batch until nothing is due,
//! the run's share is done, its time is up or it is cancelled.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use queue_core::store::{RunReport, RunStatus};
use queue_core::{Plan, Services, Task, Trigger};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use trawl_embedder::{DIMENSIONS, EmbedError, Embedder, PostingText, checked, posting_text};
use trawl_tasks::{Handler, HandlerError, RunContext};

use crate::EmbeddingsError;
use crate::store::{self, ClaimToken, Claimed, Claims, Failure};
use telemetry::metric;

pub const KIND: &str = "embed_batch";
/// Its own queue: a 30,000-posting backfill never delays a scheduled scrape.
pub const QUEUE: &str = "embeddings";
/// Tries per posting: the sixth failure is final (`failed`, with its reason).
pub const MAX_ATTEMPTS: i32 = 5;
/// Postings one run embeds before it ends and leaves the rest to the next run (so runs stay
/// short and a worker's slots turn over between queues).
pub const DEFAULT_RUN_LIMIT: u32 = 20_000;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedTask {
    /// Most postings this run embeds (default 20,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// The `embed_batch` kind: the database and this worker's embedder.
#[derive(Clone)]
pub struct EmbedBatches {
    pub db: PgPool,
    pub embedder: Arc<dyn Embedder>,
    /// How long a claim lasts before another run may take it over (a killed worker's).
    pub lease: Duration,
    /// First pause before a failed posting is tried again (doubles per attempt, ±20%).
    pub retry_base: Duration,
    registered: Arc<AtomicBool>,
}

impl EmbedBatches {
    /// The kind with `embedder`; its model is registered by [`EmbedBatches::register`].
    pub fn new(db: PgPool, embedder: Arc<dyn Embedder>) -> Self {
        Self {
            db,
            embedder,
            lease: Duration::from_secs(300),
            retry_base: Duration::from_secs(30),
            registered: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Records the embedder's model (queueing every posting for it when it is new); once per
    /// process, every later call is free.
    pub async fn register(&self) -> Result<(), EmbeddingsError> {
        if !self.registered.load(Ordering::Acquire) {
            store::register_model(&self.db, self.embedder.model(), DIMENSIONS as i32).await?;
            self.registered.store(true, Ordering::Release);
            tracing::info!(model = self.embedder.model(), "embedding model registered");
        }
        Ok(())
    }

    /// Registers the model, trying again every 5 s while PostgreSQL is away (a worker starts
    /// whatever the database does), until it succeeds or `stop` fires.
    pub async fn register_in_background(self, stop: tokio_util::sync::CancellationToken) {
        loop {
            match self.register().await {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(error = %error, model = self.embedder.model(), "cannot register the embedding model yet");
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }
}

/// Queues one `embed_batch` run (the scheduler's sweep, `trawl embed backfill`, the API).
pub async fn submit(services: &Services, trigger: Trigger) -> Result<String, EmbeddingsError> {
    let run_id = queue_core::new_run_id(trigger);
    let task = Task::new(
        KIND,
        queue_core::payload_of(&EmbedTask::default()),
        run_id.clone(),
        trigger,
    );
    let plan = Plan {
        queue: QUEUE.to_owned(),
        lock_key: None,
        max_retries: 3,
    };
    queue_core::submit_run(services, &task, &plan).await?;
    Ok(run_id)
}

#[derive(Debug, Default, Serialize)]
struct Tally {
    model: String,
    embedded: u64,
    retrying: u64,
    failed: u64,
    /// The first reasons seen, for the run's page.
    reasons: Vec<String>,
    last_error: Option<String>,
}

impl Tally {
    fn note(&mut self, failure: &Failure) {
        if failure.retry_in.is_some() {
            self.retrying += 1;
        } else {
            self.failed += 1;
        }
        if self.reasons.len() < 10 && !self.reasons.contains(&failure.reason) {
            self.reasons.push(failure.reason.clone());
        }
    }
}

impl Handler for EmbedBatches {
    type Payload = EmbedTask;
    const KIND: &'static str = KIND;
    const QUEUE: &'static str = QUEUE;

    async fn run(&self, ctx: RunContext, task: EmbedTask) -> Result<RunReport, HandlerError> {
        self.register().await.map_err(HandlerError::retryable)?;
        let model = self.embedder.model().to_owned();
        let token = ClaimToken {
            run_id: &ctx.run_id,
            attempt: ctx.attempt,
        };
        let limit = u64::from(task.limit.unwrap_or(DEFAULT_RUN_LIMIT));
        // Stop claiming with time to spare for the batch in hand.
        let deadline = Instant::now() + ctx.time_limit.saturating_sub(Duration::from_secs(15));
        let mut tally = Tally {
            model: model.clone(),
            ..Default::default()
        };
        let db_error = |e: EmbeddingsError| HandlerError::retryable(e);
        let mut first_claim = true;
        while tally.embedded + tally.retrying + tally.failed < limit
            && Instant::now() < deadline
            && !ctx.cancel.is_cancelled()
        {
            let size = self.embedder.batch_size() as i64;
            let which = if first_claim {
                Claims::TakeOverFirst
            } else {
                Claims::PendingOnly
            };
            first_claim = false;
            let claimed = store::claim(&self.db, &model, token, size, self.lease, which)
                .await
                .map_err(db_error)?;
            if claimed.is_empty() {
                break;
            }
            let (written, failures) = self.embed_and_store(&model, token, claimed).await?;
            tally.embedded += written;
            metrics::counter!(metric::EMBEDDINGS_EMBEDDED, "model" => model.clone())
                .increment(written);
            for failure in &failures {
                tally.note(failure);
                let outcome = if failure.retry_in.is_some() {
                    "retrying"
                } else {
                    "failed"
                };
                metrics::counter!(metric::EMBEDDINGS_FAILURES, "model" => model.clone(), "outcome" => outcome)
                    .increment(1);
            }
            if !failures.is_empty() && written == 0 && failures.len() as i64 == size {
                // The whole batch failed (the provider is down): stop here; the postings are
                // back in the ledger with their retry times and the next run takes them.
                tally.last_error = failures.first().map(|f| f.reason.clone());
                break;
            }
        }
        store::release(&self.db, &model, token)
            .await
            .map_err(db_error)?;
        Ok(report(tally))
    }
}

fn report(tally: Tally) -> RunReport {
    let status = match (tally.embedded, tally.retrying + tally.failed) {
        (_, 0) => RunStatus::Succeeded,
        (0, _) => RunStatus::Failed,
        _ => RunStatus::Partial,
    };
    let message = format!(
        "{}: {} embedded, {} to retry, {} failed{}",
        tally.model,
        tally.embedded,
        tally.retrying,
        tally.failed,
        tally
            .reasons
            .first()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
    RunReport {
        status,
        message,
        error_detail: serde_json::json!({ "reasons": tally.reasons }),
        result: serde_json::to_value(&tally).unwrap_or_default(),
    }
}

impl EmbedBatches {
    /// Embeds one claimed batch and writes what came of it: vectors for the good ones, a reason
    /// (and a retry time, or not) for each of the others.
    async fn embed_and_store(
        &self,
        model: &str,
        token: ClaimToken<'_>,
        claimed: Vec<Claimed>,
    ) -> Result<(u64, Vec<Failure>), HandlerError> {
        let mut failures = Vec::new();
        let mut texts = Vec::with_capacity(claimed.len());
        let mut keep = Vec::with_capacity(claimed.len());
        for posting in claimed {
            let text = posting_text(&PostingText {
                title: &posting.title,
                company: posting.company.as_deref().unwrap_or_default(),
                location: &posting.location,
                skills: posting.skills.as_deref().unwrap_or_default(),
                description: posting.description.as_deref().unwrap_or_default(),
            });
            if text.trim().is_empty() {
                failures.push(Failure {
                    job_id: posting.job_id,
                    reason: "no text to embed (empty title, company and description)".to_owned(),
                    retry_in: None,
                });
                continue;
            }
            texts.push(text);
            keep.push(posting);
        }
        let outcome = match self.embedder.embed(&texts).await {
            Ok(raw) => checked(raw, texts.len()),
            // An answer that is not embeddings at all: find the text that causes it, so one
            // bad posting does not fail its whole batch on every retry.
            Err(EmbedError::Malformed(reason)) if texts.len() > 1 => {
                tracing::warn!(model, %reason, "malformed answer for a batch; embedding its texts one by one");
                Ok(self.one_by_one(&texts).await)
            }
            Err(error) => Err(error),
        };
        let mut done = Vec::with_capacity(keep.len());
        let mut vectors = Vec::with_capacity(keep.len() * DIMENSIONS);
        match outcome {
            Ok(items) => {
                for (posting, item) in keep.into_iter().zip(items) {
                    match item {
                        Ok(vector) => {
                            vectors.extend_from_slice(&vector);
                            done.push((posting.job_id, posting.content_hash));
                        }
                        Err(reason) => failures.push(self.failure(&posting, reason)),
                    }
                }
            }
            Err(error) => {
                tracing::warn!(model, error = %error, postings = keep.len(), "embedding call failed");
                failures.extend(keep.iter().map(|p| self.failure(p, error.to_string())));
            }
        }
        let written = store::complete(&self.db, model, token, &done, &vectors, DIMENSIONS)
            .await
            .map_err(HandlerError::retryable)?;
        store::fail(&self.db, model, token, &failures)
            .await
            .map_err(HandlerError::retryable)?;
        Ok((written, failures))
    }

    async fn one_by_one(&self, texts: &[String]) -> Vec<Result<Vec<f32>, String>> {
        let mut items = Vec::with_capacity(texts.len());
        for text in texts {
            let one = std::slice::from_ref(text);
            let item = match self
                .embedder
                .embed(one)
                .await
                .and_then(|raw| checked(raw, 1))
            {
                Ok(mut checked) => checked.pop().unwrap_or_else(|| Err("no vector".to_owned())),
                Err(error) => Err(error.to_string()),
            };
            items.push(item);
        }
        items
    }

    /// The posting failed this attempt: try again after a doubling, jittered pause, or give up
    /// at the last attempt.
    fn failure(&self, posting: &Claimed, reason: String) -> Failure {
        let retry_in = (posting.attempts < MAX_ATTEMPTS).then(|| {
            let exponent = (posting.attempts - 1).clamp(0, 10) as u32;
            let pause = self
                .retry_base
                .saturating_mul(1 << exponent)
                .min(Duration::from_secs(3600));
            pause.mul_f64(rand::rng().random_range(0.8..1.2))
        });
        Failure {
            job_id: posting.job_id,
            reason: if retry_in.is_none() {
                format!("{reason} (attempt {MAX_ATTEMPTS} of {MAX_ATTEMPTS})")
            } else {
                reason
            },
            retry_in,
        }
    }
}
