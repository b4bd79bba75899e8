//! Logging, metrics and shutdown shared by every trawl binary.
//!
//! `LOG_FORMAT=json` writes one JSON object per line in the shape of seed 003
//! (`ts`, `level`, `message`, then `site_name`, `run_id`, `task_id`, `event`, `status`, ...):
//! the fields of every enclosing span are flattened into the line, so a log line inside a run's
//! span carries that run's ids without repeating them at each call site.
mod json;
pub mod metric;

use std::io::IsTerminal;

use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use json::{JsonLines, SpanFieldsLayer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line (production).
    Json,
    /// Human-readable lines (local use).
    Pretty,
}

/// Installs the global subscriber. The level filter comes from `RUST_LOG` (default `info`).
pub fn init(format: Format) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        Format::Json => registry
            .with(SpanFieldsLayer)
            .with(tracing_subscriber::fmt::layer().event_format(JsonLines))
            .try_init(),
        // Colours only on a terminal: a log written to a file or a pipe (`deploy/dev.sh up`,
        // docker, systemd) must not fill with escape sequences.
        Format::Pretty => registry
            .with(tracing_subscriber::fmt::layer().with_ansi(std::io::stdout().is_terminal()))
            .try_init(),
    };
    // A second init (tests calling into a binary's run function) keeps the first subscriber.
    let _ = result;
}

/// A token cancelled on SIGTERM or Ctrl-C. Must be called inside the tokio runtime.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler installs");
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!(event = "shutdown", "shutdown signal received");
        cancel.cancel();
    });
    token
}
