//! One attempt of one stage: marked running (the attempt is the fencing token), its work done
//! from the previous stage's records, its output and audit row written in one transaction
//! that first checks the attempt still owns the stage, then the next stage queued. A failure
//! is retried by the pipeline's policy when transient, else it ends the batch.
use std::time::Instant;

use queue_core::store::RunReport;
use trawl_scrape::Posting;
use trawl_scrape::validate::Rules;
use trawl_tasks::{HandlerError, RunContext};

use crate::alerts::{Alert, AlertKind};
use crate::error::StageError;
use crate::handler::{PipelineKinds, StageTask, stage_run_id, submit_stage, succeeded};
use crate::stage::Stage;
use crate::store::{self, Batch, StageCounts};
use crate::vectorize::Fitted;
use crate::{collect, export, models, records, transform, vectorize};
use telemetry::metric;

/// What a stage produced, written when its attempt commits.
struct Done {
    records: Option<Vec<String>>,
    counts: StageCounts,
    report: serde_json::Value,
    write: Write,
}

enum Write {
    Nothing,
    Model(Box<Fitted>),
    Export(Vec<Posting>),
}

pub async fn run_stage(
    kinds: &PipelineKinds,
    ctx: RunContext,
    task: StageTask,
) -> Result<RunReport, HandlerError> {
    let db = &ctx.services.db;
    let (batch_id, stage) = (task.batch_id, task.stage);
    let batch = store::get_batch(db, batch_id)
        .await
        .map_err(HandlerError::retryable)?
        .ok_or_else(|| HandlerError::fatal(format!("no batch {batch_id}")))?;
    let skipped = |why: String| Ok(succeeded(why, serde_json::json!({"skipped": true})));
    if batch.status != "running" {
        return skipped(format!(
            "batch {batch_id} is {}: {stage} not run",
            batch.status
        ));
    }
    let begun = store::begin_stage(db, batch_id, stage, &ctx.run_id, ctx.attempt)
        .await
        .map_err(HandlerError::retryable)?;
    if begun.is_none() {
        // Ended already: a redelivery after the end was committed. Make sure the next stage
        // was queued (the commit may have been the last thing the previous worker did).
        if let Some((status, _)) = store::stage_status(db, batch_id, stage)
            .await
            .map_err(HandlerError::retryable)?
            && status == "success"
        {
            queue_next(&ctx, &batch, stage)
                .await
                .map_err(HandlerError::retryable)?;
        }
        return skipped(format!("{stage} of batch {batch_id} has ended already"));
    }
    tracing::info!(%batch_id, stage = %stage, attempt = ctx.attempt, "stage started");
    let started = Instant::now();
    let outcome = tokio::select! {
        done = work(kinds, db, &batch, stage) => done,
        () = ctx.cancel.cancelled() => Err(StageError::permanent("stopped: the run was cancelled")),
    };
    let outcome = match outcome {
        Ok(done) => commit(db, &batch, stage, &ctx, done).await,
        Err(err) => Err(err),
    };
    let elapsed = started.elapsed();
    let labels = [
        ("pipeline", batch.pipeline.clone()),
        ("stage", stage.as_str().to_owned()),
    ];
    metrics::histogram!(metric::PIPELINE_STAGE_DURATION, &labels).record(elapsed.as_secs_f64());
    match outcome {
        Ok(Some(result)) => {
            metrics::counter!(metric::PIPELINE_STAGES, "pipeline" => batch.pipeline.clone(), "stage" => stage.as_str(), "status" => "success").increment(1);
            crate::alerts::after_success(&kinds.alerts, db, &batch, stage, elapsed, &result).await;
            queue_next(&ctx, &batch, stage)
                .await
                .map_err(HandlerError::retryable)?;
            tracing::info!(%batch_id, stage = %stage, seconds = elapsed.as_secs_f64(), "stage succeeded");
            Ok(succeeded(
                format!("{stage} of batch {batch_id} succeeded"),
                result,
            ))
        }
        Ok(None) => skipped(format!(
            "{stage} of batch {batch_id}: a newer attempt or a stop owns it"
        )),
        Err(err) => fail(kinds, &ctx, &batch, stage, err).await,
    }
}

/// CPU-heavy work off the async threads (it uses every core itself).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StageError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| StageError::permanent(format!("the stage's work panicked: {err}")))
}

/// The enriched records as postings; one that is not is a schema mismatch (permanent).
fn postings(input: &[String]) -> Result<Vec<Posting>, StageError> {
    records::decode_all(input)
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|err| {
            StageError::permanent(format!("schema mismatch in the enriched records: {err}"))
        })
}

/// The stage's work, reading the previous stage's records.
async fn work(
    kinds: &PipelineKinds,
    db: &sqlx::PgPool,
    batch: &Batch,
    stage: Stage,
) -> Result<Done, StageError> {
    let definition = &batch.definition;
    let input = match stage.input() {
        Some(input) => store::records(db, batch.batch_id, input).await?,
        None => Vec::new(),
    };
    Ok(match stage {
        Stage::Collect => {
            let collection =
                collect::collect(db, &kinds.fetchers, definition, kinds.page_retry_base).await?;
            if collection.records.is_empty() {
                return Err(StageError::permanent("the sources gave no posting at all"));
            }
            let n = collection.records.len() as i32;
            Done {
                records: Some(records::encode_all(&collection.records)),
                counts: StageCounts {
                    collected: Some(n),
                    failed: Some(0),
                    ..Default::default()
                },
                report: serde_json::json!({"searches": collection.searches, "failed_pages": collection.failed_pages}),
                write: Write::Nothing,
            }
        }
        Stage::Validate => {
            let rules = Rules {
                title_chars: definition.min_title_chars..=500,
            };
            let date = batch.batch_date;
            let (valid, checked) =
                blocking(move || transform::validate_records(&input, &rules, date)).await?;
            if checked.total > 0 && checked.valid == 0 {
                return Err(StageError::permanent(format!(
                    "no record passed validation:\n{checked}"
                )));
            }
            let mut report = serde_json::to_value(&checked).expect("serializes");
            report["text"] = checked.to_string().into();
            report["pass_rate"] = checked.pass_rate().into();
            Done {
                records: Some(valid),
                counts: StageCounts {
                    validated: Some(checked.valid as i32),
                    failed: Some(checked.failed as i32),
                    ..Default::default()
                },
                report,
                write: Write::Nothing,
            }
        }
        Stage::Enrich => {
            let (postings, enriched) = blocking(move || {
                let (postings, report) = transform::enrich_records(&input);
                (records::encode_all(&postings), report)
            })
            .await?;
            Done {
                records: Some(postings),
                counts: StageCounts {
                    enriched: Some(enriched.enriched as i32),
                    failed: Some(enriched.malformed as i32),
                    ..Default::default()
                },
                report: serde_json::to_value(&enriched).expect("serializes"),
                write: Write::Nothing,
            }
        }
        Stage::Vectorize => {
            let postings = blocking(move || postings(&input)).await??;
            let fitted = vectorize::fit(db, &postings).await?;
            Done {
                records: None,
                counts: StageCounts {
                    vectorized: Some(fitted.from_batch as i32),
                    failed: Some(0),
                    ..Default::default()
                },
                report: serde_json::json!({"trained_on": fitted.vectors.len(), "features": fitted.model.terms.len()}),
                write: Write::Model(Box::new(fitted)),
            }
        }
        Stage::Export => {
            let postings = blocking(move || postings(&input)).await??;
            export::stage_rows(db, batch.batch_id, &postings).await?;
            Done {
                records: None,
                counts: StageCounts::default(),
                report: serde_json::json!({}),
                write: Write::Export(postings),
            }
        }
    })
}

/// Writes the stage's output and ends it, if this attempt still owns it. None: it does not.
async fn commit(
    db: &sqlx::PgPool,
    batch: &Batch,
    stage: Stage,
    ctx: &RunContext,
    mut done: Done,
) -> Result<Option<serde_json::Value>, StageError> {
    let mut tx = db.begin().await?;
    if !store::lock_running(&mut tx, batch.batch_id, stage, ctx.attempt).await? {
        return Ok(None);
    }
    if let Some(records) = &done.records {
        store::write_records(&mut tx, batch.batch_id, stage, records).await?;
    }
    match done.write {
        Write::Nothing => {}
        Write::Model(fitted) => {
            let version =
                models::store_model(&mut tx, &fitted.model, &fitted.vectors, batch.batch_id)
                    .await?;
            done.report["model_version"] = version.into();
        }
        Write::Export(postings) => {
            let exported = export::export(&mut tx, batch.batch_id, &ctx.run_id, &postings).await?;
            done.counts = StageCounts {
                inserted: Some(exported.inserted),
                updated: Some(exported.updated),
                unchanged: Some(exported.unchanged),
                failed: Some(exported.failed),
                ..Default::default()
            };
            done.report = serde_json::to_value(&exported).expect("serializes");
        }
    }
    let next_run_id = stage.next().map(|_| stage_run_id());
    store::mark_succeeded(
        &mut tx,
        batch.batch_id,
        stage,
        &done.counts,
        &done.report,
        next_run_id.as_deref(),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(done.report))
}

/// Queues the stage after `stage` as the run its success named.
async fn queue_next(
    ctx: &RunContext,
    batch: &Batch,
    stage: Stage,
) -> Result<(), crate::PipelineError> {
    let Some(next) = stage.next() else {
        return Ok(());
    };
    match store::stage_status(&ctx.services.db, batch.batch_id, next).await? {
        Some((status, Some(run_id))) if status == "queued" => {
            submit_stage(
                &ctx.services,
                batch.batch_id,
                next,
                &run_id,
                batch.definition.retry.tries,
            )
            .await
        }
        _ => Ok(()),
    }
}

/// A failed attempt: retried by the pipeline's policy when transient and tries remain, else
/// the batch ends here (later stages upstream_failed, `jobs` untouched) with an alert.
async fn fail(
    kinds: &PipelineKinds,
    ctx: &RunContext,
    batch: &Batch,
    stage: Stage,
    err: StageError,
) -> Result<RunReport, HandlerError> {
    let db = &ctx.services.db;
    let message = err.to_string();
    let run = queue_core::store::get_run(db, &ctx.run_id)
        .await
        .ok()
        .flatten();
    let retries = run.as_ref().map_or(0, |r| r.retries);
    let tries_left = run.as_ref().is_some_and(|r| r.retries < r.max_retries);
    if matches!(err, StageError::Transient(_)) && tries_left {
        store::note_retry(db, batch.batch_id, stage, ctx.attempt, &message)
            .await
            .map_err(HandlerError::retryable)?;
        let delay = batch.definition.retry.delay_before(retries as u32 + 2);
        tracing::warn!(batch_id = %batch.batch_id, stage = %stage, error = %message, ?delay, "stage failed; retrying");
        return Err(HandlerError::retryable(message).with_delay(delay));
    }
    let ended = store::end_batch_at(db, batch.batch_id, stage, "failed", err.kind(), &message)
        .await
        .map_err(HandlerError::retryable)?;
    if ended {
        metrics::counter!(metric::PIPELINE_STAGES, "pipeline" => batch.pipeline.clone(), "stage" => stage.as_str(), "status" => "failed").increment(1);
        kinds.alerts.raise(Alert {
            text: format!(
                "Stage {} failed with error: {message}",
                stage.as_str().to_uppercase()
            ),
            alert: AlertKind::StageFailed,
            pipeline: batch.pipeline.clone(),
            batch_id: batch.batch_id,
            stage: Some(stage.as_str().to_owned()),
        });
    }
    Err(HandlerError::fatal(message))
}
