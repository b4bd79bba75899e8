//! Alerts: a log event, a metric, and a POST to `ALERT_WEBHOOK_URL` (Slack-style JSON:
//! `{"text": …}` plus the fields), retried with backoff in a task of its own so a slow or
//! broken receiver never holds a stage up.
use std::time::Duration;

use serde::Serialize;
use uuid::Uuid;

use crate::stage::Stage;
use crate::store::{self, Batch};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A stage past its alert threshold.
    SlowStage,
    StageFailed,
    /// Refused or failed records above the pipeline's max_failure_rate.
    HighFailureRate,
    /// The whole batch past its SLA: stopped.
    BatchTimeout,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::SlowStage => "slow_stage",
            AlertKind::StageFailed => "stage_failed",
            AlertKind::HighFailureRate => "high_failure_rate",
            AlertKind::BatchTimeout => "batch_timeout",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub text: String,
    pub alert: AlertKind,
    pub pipeline: String,
    pub batch_id: Uuid,
    pub stage: Option<String>,
}

/// Where alerts go besides the log and the metric.
#[derive(Clone, Default)]
pub struct Alerts {
    webhook: Option<(reqwest::Client, reqwest::Url)>,
    /// Tries per alert (1 + retries).
    tries: u32,
    first_backoff: Duration,
}

impl Alerts {
    /// `url`: ALERT_WEBHOOK_URL, None for log and metric only.
    pub fn new(url: Option<reqwest::Url>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("an HTTP client builds");
        Alerts {
            webhook: url.map(|url| (client, url)),
            tries: 5,
            first_backoff: Duration::from_millis(500),
        }
    }

    /// Raises `alert`: logged and counted now, posted in the background.
    pub fn raise(&self, alert: Alert) {
        tracing::warn!(
            alert = alert.alert.as_str(),
            pipeline = %alert.pipeline,
            batch_id = %alert.batch_id,
            stage = alert.stage.as_deref().unwrap_or(""),
            "{}",
            alert.text
        );
        metrics::counter!(telemetry::metric::PIPELINE_ALERTS, "pipeline" => alert.pipeline.clone(), "alert" => alert.alert.as_str())
            .increment(1);
        let Some((client, url)) = self.webhook.clone() else {
            return;
        };
        let (tries, mut backoff) = (self.tries, self.first_backoff);
        tokio::spawn(async move {
            for attempt in 1..=tries {
                match client.post(url.clone()).json(&alert).send().await {
                    Ok(response) if response.status().is_success() => return,
                    Ok(response) => {
                        tracing::warn!(status = %response.status(), attempt, "alert webhook refused the alert")
                    }
                    Err(err) => tracing::warn!(error = %err, attempt, "alert webhook unreachable"),
                }
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            tracing::error!(
                alert = alert.alert.as_str(),
                "alert not delivered to the webhook after {tries} tries"
            );
        });
    }
}

/// Alerts a successful stage may still raise: too slow, too many records refused.
pub(crate) async fn after_success(
    alerts: &Alerts,
    db: &sqlx::PgPool,
    batch: &Batch,
    stage: Stage,
    elapsed: std::time::Duration,
    result: &serde_json::Value,
) {
    let definition = &batch.definition;
    let alert = |kind, text: String| {
        alerts.raise(Alert {
            text,
            alert: kind,
            pipeline: batch.pipeline.clone(),
            batch_id: batch.batch_id,
            stage: Some(stage.as_str().to_owned()),
        })
    };
    let limit = definition.stages.of(stage);
    // Once per stage: the scheduler's sweep may have raised it while the stage ran.
    if elapsed.as_secs_f64() > limit.alert_seconds
        && store::claim_stage_alert(db, batch.batch_id, stage)
            .await
            .unwrap_or(true)
    {
        alert(
            AlertKind::SlowStage,
            format!(
                "Stage {} exceeded its alert threshold ({:.1}s > {:.1}s; SLA {:.1}s)",
                stage.as_str().to_uppercase(),
                elapsed.as_secs_f64(),
                limit.alert_seconds,
                limit.sla_seconds
            ),
        );
    }
    if stage == Stage::Validate {
        let total = result["total"].as_f64().unwrap_or(0.0);
        let failed = result["failed"].as_f64().unwrap_or(0.0);
        if total > 0.0 && failed / total > definition.max_failure_rate {
            alert(
                AlertKind::HighFailureRate,
                format!(
                    "Stage VALIDATE: {:.1}% records failed validation (threshold {:.1}%)",
                    failed * 100.0 / total,
                    definition.max_failure_rate * 100.0
                ),
            );
        }
    }
}
