//! `trawl pipeline …` and `trawl model …`: the batch pipeline and its TF-IDF models.
use anyhow::{Context, bail};
use queue_core::{Services, Trigger};
use serde_json::json;
use trawl_pipeline::{Stage, models, monitor, store};
use uuid::Uuid;

#[derive(Debug, clap::Subcommand)]
pub enum PipelineCommand {
    /// Insert or replace a pipeline from a JSON definition file (its schedule follows its cron).
    Upsert {
        name: String,
        #[arg(long)]
        file: String,
    },
    List,
    /// Start a batch now.
    Run {
        name: String,
    },
    /// Batches, newest first.
    Batches {
        #[arg(long)]
        pipeline: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// One batch and its batch_runs rows.
    Show {
        batch_id: Uuid,
    },
    /// Re-run a failed or stopped batch from a stage on (Airflow's "clear task").
    Rerun {
        batch_id: Uuid,
        #[arg(long, value_parser = parse_stage)]
        from: Stage,
    },
    /// Undo what a batch's export changed in `jobs` (audited).
    Rollback {
        batch_id: Uuid,
    },
    /// Seed 002's monitoring: the latest batch, 7-day success rate, time per stage, recent errors.
    Status {
        #[arg(long)]
        pipeline: Option<String>,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum ModelCommand {
    /// TF-IDF model versions, newest first.
    List,
    /// Make a version the active one (roll back to an earlier model in one step).
    Activate { version: String },
}

fn parse_stage(text: &str) -> Result<Stage, String> {
    Stage::parse(text)
        .ok_or_else(|| format!("one of collect, validate, enrich, vectorize, export; got {text:?}"))
}

pub async fn execute(
    services: &Services,
    command: PipelineCommand,
) -> anyhow::Result<serde_json::Value> {
    let db = &services.db;
    Ok(match command {
        PipelineCommand::Upsert { name, file } => {
            let text =
                std::fs::read_to_string(&file).with_context(|| format!("cannot read {file}"))?;
            let definition: serde_json::Value =
                serde_json::from_str(&text).with_context(|| format!("{file} is not JSON"))?;
            json!({"pipeline": trawl_pipeline::upsert_pipeline(services, &name, definition).await?})
        }
        PipelineCommand::List => json!({"pipelines": store::list_pipelines(db).await?}),
        PipelineCommand::Run { name } => {
            let batch_id = trawl_pipeline::submit_batch(services, &name, Trigger::Manual).await?;
            json!({"batch_id": batch_id, "pipeline": name, "status": "queued"})
        }
        PipelineCommand::Batches { pipeline, limit } => {
            json!({"batches": store::list_batches(db, pipeline.as_deref(), limit.clamp(1, 200)).await?})
        }
        PipelineCommand::Show { batch_id } => {
            let Some(batch) = store::get_batch(db, batch_id).await? else {
                bail!("no batch {batch_id}");
            };
            json!({"batch": batch, "stages": store::batch_runs(db, batch_id).await?})
        }
        PipelineCommand::Rerun { batch_id, from } => {
            trawl_pipeline::rerun_from(services, batch_id, from).await?;
            json!({"batch_id": batch_id, "from": from, "status": "queued"})
        }
        PipelineCommand::Rollback { batch_id } => {
            json!(trawl_pipeline::rollback(db, batch_id).await?)
        }
        PipelineCommand::Status { pipeline } => json!({
            "latest": monitor::latest_batch(db, pipeline.as_deref()).await?,
            "success_rate": monitor::success_rate(db).await?,
            "stage_times": monitor::stage_times(db).await?,
            "recent_errors": monitor::recent_errors(db).await?,
        }),
    })
}

pub async fn execute_model(
    services: &Services,
    command: ModelCommand,
) -> anyhow::Result<serde_json::Value> {
    Ok(match command {
        ModelCommand::List => json!({"models": models::list_models(&services.db).await?}),
        ModelCommand::Activate { version } => {
            json!({"model": models::activate(&services.db, &version).await?})
        }
    })
}
