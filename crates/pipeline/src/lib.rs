//! The daily batch pipeline (seed 002) on trawl's own queue: a pipeline is data
//! ([`PipelineDefinition`]); a batch is five stage tasks (collect → validate → enrich →
//! vectorize → export) run in order by any worker, each stage's output kept in `batch_records`
//! so a retried or redelivered stage is idempotent, each audited in `batch_runs`. Validation and
//! enrichment are the scrape path's own code (`trawl_scrape::validate`, `RawPosting::enrich`).
pub mod alerts;
mod collect;
pub mod definition;
mod error;
pub mod export;
mod handler;
pub mod models;
pub mod monitor;
pub mod records;
mod runner;
pub mod similarity;
pub mod stage;
mod stop_words;
pub mod store;
mod sweep;
pub mod tfidf;
pub mod transform;
mod vectorize;

pub use alerts::{Alert, AlertKind, Alerts};
pub use definition::{DefinitionError, PipelineDefinition, SourceFit, SourceSpec};
pub use error::{PipelineError, StageError};
pub use export::{RolledBack, rollback};
pub use handler::{
    BATCH_KIND, BatchTask, PipelineBatches, PipelineKinds, PipelineStages, QUEUE, STAGE_KIND,
    StageTask, submit_batch, submit_stage,
};
pub use stage::Stage;
pub use sweep::{Swept, sweep};

use queue_core::Services;

/// Checks and stores a pipeline, and keeps its schedule (`schedules` row `pipeline-<name>`,
/// kind `pipeline_batch`) in step with its cron.
pub async fn upsert_pipeline(
    services: &Services,
    name: &str,
    definition: serde_json::Value,
) -> Result<store::Pipeline, PipelineError> {
    let name_ok = !name.is_empty()
        && name.len() <= 55
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric());
    if !name_ok {
        return Err(DefinitionError {
            field: "name".into(),
            reason: "1 to 55 of a-z, 0-9, - and _, starting with a letter or digit".into(),
        }
        .into());
    }
    let definition = PipelineDefinition::from_json(definition)?;
    let sites = trawl_scrape_runs::sites::list_sites(&services.db).await?;
    definition.check(|wanted| {
        let Some(site) = sites.iter().find(|s| s.site_name == wanted) else {
            return SourceFit::Unknown;
        };
        match site.spec() {
            Err(err) => SourceFit::Unfit(err.to_string()),
            // The collect stage fetches over HTTP: pages that need a browser are scraped by
            // the scrape kind only.
            Ok(trawl_scrape::SiteSpec::Definition(d))
                if d.fetch != trawl_scrape::FetchMode::Http =>
            {
                SourceFit::Unfit("its pages need a browser; the pipeline collects over HTTP".into())
            }
            Ok(spec) => match spec.kind() {
                trawl_scrape::SourceKind::Adzuna
                | trawl_scrape::SourceKind::DemoBoard
                | trawl_scrape::SourceKind::Definition => SourceFit::Search,
                _ => SourceFit::NoSearch,
            },
        }
    })?;
    let mut stored = store::upsert_pipeline(&services.db, name, &definition).await?;
    let schedule = queue_core::store::NewRecurringTask {
        name: schedule_name(name),
        kind: BATCH_KIND.into(),
        queue: QUEUE.into(),
        payload: queue_core::payload_of(&BatchTask {
            pipeline: name.to_owned(),
        }),
        enabled: definition.enabled,
        interval_minutes: None,
        cron: Some(definition.cron.clone()),
        time_zone: definition.time_zone.clone(),
        max_retries: 3,
    };
    queue_core::store::upsert_recurring(&services.db, &schedule).await?;
    stored.definition = definition;
    Ok(stored)
}

/// Re-runs a failed or stopped batch from `stage` on (Airflow's "clear task"): that stage and
/// the later ones are queued again; the earlier ones keep their output.
pub async fn rerun_from(
    services: &Services,
    batch_id: uuid::Uuid,
    stage: Stage,
) -> Result<(), PipelineError> {
    if !store::clear_from(&services.db, batch_id, stage).await? {
        return Err(PipelineError::Refused(format!(
            "batch {batch_id} cannot be re-run from {stage}: it must be failed or stopped, and every stage before {stage} must have succeeded"
        )));
    }
    let batch = store::get_batch(&services.db, batch_id)
        .await?
        .ok_or_else(|| PipelineError::Refused(format!("no batch {batch_id}")))?;
    let run_id = store::assign_run(&services.db, batch_id, stage, &handler::stage_run_id()).await?;
    handler::submit_stage(
        services,
        batch_id,
        stage,
        &run_id,
        batch.definition.retry.tries,
    )
    .await
}

/// The `schedules` row that fires a pipeline.
pub fn schedule_name(pipeline: &str) -> String {
    format!("pipeline-{pipeline}")
}
