//! `trawl dead`: dead letters on any queue, one by id or the whole list.
use anyhow::bail;
use queue_core::Services;
use serde_json::json;

use crate::queue_of;

#[derive(Debug, clap::Subcommand)]
pub enum DeadCommand {
    /// Newest first.
    List {
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// The queue (default: scraping).
        #[arg(long)]
        queue: Option<String>,
    },
    /// Queue the task again (a parseable task becomes a fresh manual run); `--all`: every
    /// entry on the list, oldest first.
    Retry(Which),
    /// Drop it for good; `--all`: every entry on the list.
    Delete(Which),
}

/// One dead letter by id, or `--all` of them, on a queue.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("which").required(true))]
pub struct Which {
    #[arg(group = "which")]
    id: Option<String>,
    #[arg(long, group = "which")]
    all: bool,
    /// The queue (default: scraping).
    #[arg(long)]
    queue: Option<String>,
}

/// The dead-letter commands, on the queue named or the home queue.
pub(crate) async fn execute(
    services: &Services,
    command: DeadCommand,
) -> anyhow::Result<serde_json::Value> {
    let (retry, which) = match command {
        DeadCommand::List { limit, queue } => {
            let queue = queue_of(services, queue.as_deref())?;
            return Ok(serde_json::to_value(queue.dead_letters(limit).await?)?);
        }
        DeadCommand::Retry(which) => (true, which),
        DeadCommand::Delete(which) => (false, which),
    };
    let queue = queue_of(services, which.queue.as_deref())?;
    let name = queue.keys().queue_name();
    // clap lets exactly one of the id and --all through.
    let one = if which.all { None } else { which.id };
    match (retry, one) {
        (true, None) => {
            let swept = queue.retry_all_dead_letters().await?;
            Ok(json!({"queue": name, "requeued": swept.taken, "skipped": swept.skipped}))
        }
        (false, None) => {
            let swept = queue.delete_all_dead_letters().await?;
            Ok(json!({"queue": name, "deleted": swept.taken}))
        }
        (true, Some(id)) => match queue.retry_dead_letter(&id).await? {
            Some(task) => Ok(json!({"id": id, "requeued": true, "task": task})),
            None => bail!(no_dead_letter(&queue, &id)),
        },
        (false, Some(id)) => {
            if !queue.delete_dead_letter(&id).await? {
                bail!(no_dead_letter(&queue, &id));
            }
            Ok(json!({"id": id, "deleted": true}))
        }
    }
}

fn no_dead_letter(queue: &queue_core::Queue, id: &str) -> String {
    let name = queue.keys().queue_name();
    format!("no dead letter with id {id} on queue {name} (--queue names another)")
}
