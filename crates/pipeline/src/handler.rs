//! The pipeline's two kinds on trawl's queue: `pipeline_batch` starts a batch (its run id is
//! the batch id, so a redelivered start creates nothing twice) and queues its first stage;
//! `pipeline_stage` runs one stage of one batch and queues the next.
use std::time::Duration;

use queue_core::store::{RunReport, RunStatus};
use queue_core::{Plan, Services, Task, Trigger};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use trawl_scrape::Fetchers;
use trawl_tasks::{Handler, HandlerError, RunContext};
use uuid::Uuid;

use crate::alerts::Alerts;
use crate::stage::Stage;
use crate::{PipelineError, store};

pub const BATCH_KIND: &str = "pipeline_batch";
pub const STAGE_KIND: &str = "pipeline_stage";
/// Both kinds' queue: a 30,000-posting vectorize never waits behind scrapes, nor they behind it.
pub const QUEUE: &str = "pipeline";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchTask {
    pub pipeline: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageTask {
    pub batch_id: Uuid,
    pub stage: Stage,
}

/// What the pipeline's kinds share: the database, the fetchers the collect stage uses, where
/// alerts go.
#[derive(Clone)]
pub struct PipelineKinds {
    pub db: PgPool,
    pub fetchers: std::sync::Arc<Fetchers>,
    pub alerts: Alerts,
    /// First retry delay of a source's failing pages inside the collect stage.
    pub page_retry_base: Duration,
}

/// The `pipeline_batch` kind.
pub struct PipelineBatches(pub PipelineKinds);
/// The `pipeline_stage` kind.
pub struct PipelineStages(pub PipelineKinds);

/// Queues a batch of `pipeline` (CLI, API, the schedule): its run id is the batch id.
pub async fn submit_batch(
    services: &Services,
    pipeline: &str,
    trigger: Trigger,
) -> Result<Uuid, PipelineError> {
    if store::get_pipeline(&services.db, pipeline).await?.is_none() {
        return Err(PipelineError::Refused(format!("no pipeline {pipeline:?}")));
    }
    let batch_id = Uuid::new_v4();
    let task = Task::new(
        BATCH_KIND,
        queue_core::payload_of(&BatchTask {
            pipeline: pipeline.to_owned(),
        }),
        batch_id.to_string(),
        trigger,
    );
    let plan = Plan {
        queue: QUEUE.to_owned(),
        lock_key: None,
        max_retries: 3,
    };
    queue_core::submit_run(services, &task, &plan).await?;
    Ok(batch_id)
}

/// Queues `stage` of a batch as run `run_id`, unless that run exists already (a redelivered
/// stage queueing its successor again).
pub async fn submit_stage(
    services: &Services,
    batch_id: Uuid,
    stage: Stage,
    run_id: &str,
    tries: u32,
) -> Result<(), PipelineError> {
    if queue_core::store::get_run(&services.db, run_id)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let task = Task::new(
        STAGE_KIND,
        queue_core::payload_of(&StageTask { batch_id, stage }),
        run_id.to_owned(),
        Trigger::Schedule,
    );
    match queue_core::submit_run(services, &task, &stage_plan(batch_id, stage, tries)).await {
        Ok(()) | Err(queue_core::SubmitError::Busy { .. }) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

fn stage_plan(batch_id: Uuid, stage: Stage, tries: u32) -> Plan {
    Plan {
        queue: QUEUE.to_owned(),
        // One attempt of a batch's stage at a time, whoever queued it.
        lock_key: Some(format!("batch:{batch_id}:{stage}")),
        max_retries: tries.saturating_sub(1),
    }
}

/// A fresh run id for a stage's task.
pub fn stage_run_id() -> String {
    queue_core::new_run_id(Trigger::Schedule)
}

/// A succeeded run's report.
pub(crate) fn succeeded(message: String, result: serde_json::Value) -> RunReport {
    RunReport {
        status: RunStatus::Succeeded,
        message,
        error_detail: serde_json::json!({}),
        result,
    }
}

impl Handler for PipelineBatches {
    type Payload = BatchTask;
    const KIND: &'static str = BATCH_KIND;
    const QUEUE: &'static str = QUEUE;

    async fn run(&self, ctx: RunContext, task: BatchTask) -> Result<RunReport, HandlerError> {
        let db = &ctx.services.db;
        let batch_id: Uuid = ctx.run_id.parse().unwrap_or_else(|_| {
            // A hand-written task's run id is not a UUID: derive one, stable for the run.
            Uuid::new_v5(&Uuid::NAMESPACE_OID, ctx.run_id.as_bytes())
        });
        let transient = |err: PipelineError| HandlerError::retryable(err);
        let pipeline = store::get_pipeline(db, &task.pipeline)
            .await
            .map_err(transient)?
            .ok_or_else(|| HandlerError::fatal(format!("no pipeline {:?}", task.pipeline)))?;
        let run = queue_core::store::get_run(db, &ctx.run_id)
            .await
            .map_err(|e| transient(e.into()))?;
        let trigger = run.map_or(Trigger::Manual, |r| r.trigger);
        store::create_batch(db, batch_id, &pipeline, trigger)
            .await
            .map_err(transient)?;
        // The first stage's run id is recorded once; a redelivered start queues that same run.
        let first = Stage::Collect;
        let run_id = match store::stage_status(db, batch_id, first)
            .await
            .map_err(transient)?
        {
            Some((_, Some(run_id))) => run_id,
            _ => {
                let run_id = stage_run_id();
                store::assign_run(db, batch_id, first, &run_id)
                    .await
                    .map_err(transient)?
            }
        };
        submit_stage(
            &ctx.services,
            batch_id,
            first,
            &run_id,
            pipeline.definition.retry.tries,
        )
        .await
        .map_err(transient)?;
        tracing::info!(%batch_id, pipeline = %task.pipeline, "batch started");
        Ok(succeeded(
            format!("batch {batch_id} of {} started", task.pipeline),
            serde_json::json!({"batch_id": batch_id}),
        ))
    }
}

impl Handler for PipelineStages {
    type Payload = StageTask;
    const KIND: &'static str = STAGE_KIND;
    const QUEUE: &'static str = QUEUE;

    async fn plan(&self, task: &mut StageTask) -> Result<Plan, HandlerError> {
        let batch = store::get_batch(&self.0.db, task.batch_id)
            .await
            .map_err(HandlerError::retryable)?
            .ok_or_else(|| HandlerError::fatal(format!("no batch {}", task.batch_id)))?;
        Ok(stage_plan(
            task.batch_id,
            task.stage,
            batch.definition.retry.tries,
        ))
    }

    async fn run(&self, ctx: RunContext, task: StageTask) -> Result<RunReport, HandlerError> {
        crate::runner::run_stage(&self.0, ctx, task).await
    }
}
