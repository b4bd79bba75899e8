//! What no stage can see about itself, checked by the scheduler each pass: a stage past its
//! alert threshold (alert once), a batch past its alert threshold (alert once) or past its SLA
//! (stopped: the active stage's run cancelled, later stages upstream_failed, alert), and a stage
//! whose run ended outside its attempt (its workers killed until the run was failed) — the
//! batch ends there too, never left `running` in silence.
use chrono::Utc;
use queue_core::Services;
use serde::{Deserialize, Serialize};

use crate::alerts::{Alert, AlertKind, Alerts};
use crate::definition::PipelineDefinition;
use crate::stage::Stage;
use crate::{PipelineError, store};

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[schema(as = PipelineSwept)]
pub struct Swept {
    pub slow_stages: u32,
    pub slow_batches: u32,
    pub stopped: u32,
    pub failed: u32,
}

pub async fn sweep(services: &Services, alerts: &Alerts) -> Result<Swept, PipelineError> {
    let db = &services.db;
    let rows = sqlx::query!(
        "SELECT b.batch_id, b.pipeline, b.definition, b.started_at AS batch_started, b.sla_alerted, \
                r.stage, r.status, r.run_id, r.started_at AS stage_started, r.slow_alerted, \
                t.status AS \"run_status?\", t.message AS \"run_message?\" \
         FROM batches b JOIN batch_runs r USING (batch_id) \
         LEFT JOIN task_runs t ON t.run_id = r.run_id \
         WHERE b.status = 'running' AND r.status IN ('queued', 'running') \
         ORDER BY b.batch_id, \
                  array_position(ARRAY['collect','validate','enrich','vectorize','export'], r.stage)"
    )
    .fetch_all(db)
    .await?;
    let mut swept = Swept::default();
    let now = Utc::now();
    let mut handled_batches = std::collections::HashSet::new();
    for row in rows {
        let Some(stage) = Stage::parse(&row.stage) else {
            continue;
        };
        let Ok(definition) = PipelineDefinition::from_json(row.definition.clone()) else {
            continue;
        };
        let alert = |kind, text: String| {
            alerts.raise(Alert {
                text,
                alert: kind,
                pipeline: row.pipeline.clone(),
                batch_id: row.batch_id,
                stage: Some(stage.as_str().to_owned()),
            })
        };
        // A run that ended failed or cancelled while its stage row still says active.
        if matches!(
            row.run_status.as_deref(),
            Some("failed") | Some("cancelled")
        ) {
            let message = format!(
                "its run {} ended {} outside the stage: {}",
                row.run_id.as_deref().unwrap_or("?"),
                row.run_status.as_deref().unwrap_or("?"),
                row.run_message.as_deref().unwrap_or("no message")
            );
            if store::end_batch_at(db, row.batch_id, stage, "failed", "transient", &message).await?
            {
                swept.failed += 1;
                alert(
                    AlertKind::StageFailed,
                    format!("Stage {} failed: {message}", stage.as_str().to_uppercase()),
                );
            }
            continue;
        }
        let batch_seconds = (now - row.batch_started).as_seconds_f64();
        if batch_seconds > definition.total_sla_seconds && handled_batches.insert(row.batch_id) {
            let message = format!(
                "batch exceeded its {:.0}s SLA ({batch_seconds:.0}s): stopped",
                definition.total_sla_seconds
            );
            if store::end_batch_at(db, row.batch_id, stage, "stopped", "permanent", &message)
                .await?
            {
                swept.stopped += 1;
                if let Some(run_id) = &row.run_id
                    && let Err(err) = queue_core::cancel_run(services, run_id).await
                {
                    tracing::warn!(run_id = %run_id, error = %err, "could not cancel the stopped stage's run");
                }
                alert(
                    AlertKind::BatchTimeout,
                    format!(
                        "Batch pipeline {} exceeded its {:.0}-second SLA at stage {}: stopped",
                        row.pipeline,
                        definition.total_sla_seconds,
                        stage.as_str().to_uppercase()
                    ),
                );
            }
            continue;
        }
        if !row.sla_alerted
            && batch_seconds > definition.total_alert_seconds
            && store::claim_batch_alert(db, row.batch_id).await?
        {
            swept.slow_batches += 1;
            alert(
                AlertKind::SlowStage,
                format!(
                    "Batch pipeline {} past its {:.0}s alert threshold ({batch_seconds:.0}s)",
                    row.pipeline, definition.total_alert_seconds
                ),
            );
        }
        let limit = definition.stages.of(stage);
        if row.status == "running"
            && !row.slow_alerted
            && let Some(started) = row.stage_started
            && (now - started).as_seconds_f64() > limit.alert_seconds
            && store::claim_stage_alert(db, row.batch_id, stage).await?
        {
            swept.slow_stages += 1;
            alert(
                AlertKind::SlowStage,
                format!(
                    "Stage {} exceeded its alert threshold ({:.0}s > {:.0}s; SLA {:.0}s)",
                    stage.as_str().to_uppercase(),
                    (now - started).as_seconds_f64(),
                    limit.alert_seconds,
                    limit.sla_seconds
                ),
            );
        }
    }
    Ok(swept)
}
