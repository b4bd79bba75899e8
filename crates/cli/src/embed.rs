//! `trawl embed …`: coverage, the backfill with its progress bar, and the active model.
//! Progress is read from the ledger each second (what is embedded, what waits, what failed),
//! never counted here: Ctrl-C only stops the watching; the runs go on in the workers, and
//! running the command again picks up where they are.
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use queue_core::Services;
use serde_json::json;
use trawl_embeddings::{ModelCoverage, store};

#[derive(Debug, clap::Subcommand)]
pub enum EmbedCommand {
    /// Coverage per model: embedded, without, pending, failed with the top reasons.
    Status,
    /// Queue every active posting without a current vector (failed ones again) and follow
    /// the workers embedding them until nothing waits.
    Backfill {
        /// The model to fill in (default: the active one).
        #[arg(long)]
        model: Option<String>,
        /// Only follow what is already queued.
        #[arg(long)]
        watch: bool,
    },
    /// Make a model the one searches use (the others are retired).
    Activate { model: String },
}

pub async fn execute(
    services: &Services,
    command: EmbedCommand,
) -> anyhow::Result<serde_json::Value> {
    let db = &services.db;
    Ok(match command {
        EmbedCommand::Status => serde_json::to_value(trawl_embeddings::coverage(db).await?)?,
        EmbedCommand::Activate { model } => {
            store::activate(db, &model).await?;
            json!({"active_model": model})
        }
        EmbedCommand::Backfill { model, watch } => {
            let model = match model {
                Some(model) => model,
                None => store::require_active_model(db).await?,
            };
            let queued = if watch {
                None
            } else {
                Some(trawl_embeddings::backfill(services, Some(&model)).await?)
            };
            let last = follow(services, &model).await?;
            json!({"backfill": queued, "coverage": last})
        }
    })
}

/// Shows the model's coverage until nothing of it is pending or processing (or Ctrl-C).
async fn follow(services: &Services, model: &str) -> anyhow::Result<ModelCoverage> {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{bar:40.cyan/blue} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let plain = bar.is_hidden();
    let started = Instant::now();
    let mut first: Option<i64> = None;
    let mut last_line = Instant::now() - Duration::from_secs(60);
    loop {
        let coverage = trawl_embeddings::coverage(&services.db).await?;
        let Some(current) = coverage.models.into_iter().find(|m| m.model == model) else {
            anyhow::bail!("no embedding model {model:?}");
        };
        let start = *first.get_or_insert(current.embedded);
        let elapsed = started.elapsed().as_secs_f64();
        // The rate of this watch when it has one, else the ledger's last five minutes.
        let rate = if elapsed >= 2.0 && current.embedded > start {
            (current.embedded - start) as f64 / elapsed
        } else {
            current.rate_per_second
        };
        let waiting = current.pending + current.processing;
        let eta = if rate > 0.0 {
            format_duration(waiting as f64 / rate)
        } else {
            "?".to_owned()
        };
        let message = format!(
            "{:.1}% · {rate:.1}/s · ETA {eta} · waiting {waiting} · retrying {} · failed {}",
            current.percent, current.retrying, current.failed
        );
        bar.set_length(coverage.active_postings.max(0) as u64);
        bar.set_position(current.embedded.max(0) as u64);
        bar.set_message(message.clone());
        if plain && (last_line.elapsed() >= Duration::from_secs(5) || waiting == 0) {
            eprintln!(
                "{} {}/{} {message}",
                current.model, current.embedded, coverage.active_postings
            );
            last_line = Instant::now();
        }
        if waiting == 0 {
            bar.finish();
            return Ok(current);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tokio::signal::ctrl_c() => {
                bar.abandon();
                eprintln!("stopped watching; the workers go on — `trawl embed backfill --watch` follows again");
                return Ok(current);
            }
        }
    }
}

fn format_duration(seconds: f64) -> String {
    let seconds = seconds.round() as u64;
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60),
    }
}
