//! The kinds of work trawl runs, known by name and payload type: what the API and the CLI check
//! a task of any kind against (a recurring task's kind and payload at upsert) without building
//! the handlers, which need a worker's settings. The worker registers the same kinds
//! (`trawl-worker`'s `kinds.rs`); its test `kinds::the_worker_runs_every_kind_in_the_catalog`
//! fails when the two lists part.
use queue_core::store::NewRecurringTask;
use queue_core::{StoreError, TaskError};
use trawl_careers::{Details, Snapshots};
use trawl_digests::{Confirmations, Digests};
use trawl_embeddings::EmbedBatches;
use trawl_pipeline::{PipelineBatches, PipelineStages};
use trawl_scrape_runs::ScrapeHandler;
use trawl_tasks::Catalog;

/// Every kind a trawl worker runs.
pub fn catalog() -> Catalog {
    Catalog::new()
        .with::<ScrapeHandler>()
        .with::<PipelineBatches>()
        .with::<PipelineStages>()
        .with::<Snapshots>()
        .with::<Details>()
        .with::<Digests>()
        .with::<Confirmations>()
        .with::<EmbedBatches>()
}

/// Settles a recurring task before it is stored (`POST /schedules`, `trawl schedule upsert`):
/// a task that names no queue gets its kind's; then the kind, the queue and the payload are
/// checked the way the kind's worker will read them, naming the field. A misspelt kind or a
/// payload the kind refuses would otherwise be dead-lettered at every fire, and a task on a
/// queue other than its kind's would wait forever: workers serve only their kinds' queues.
pub fn resolve_recurring(new: &mut NewRecurringTask) -> Result<(), StoreError> {
    let catalog = catalog();
    catalog
        .check(&new.kind, &new.payload)
        .map_err(|err| match err {
            TaskError::UnknownKind { kind, known } => {
                format!("kind {kind:?} is not a kind trawl runs ({known})")
            }
            TaskError::Payload { kind, reason } => {
                format!("payload does not fit kind {kind}: {reason}")
            }
            other => format!("payload: {other}"),
        })
        .map_err(StoreError::InvalidSchedule)?;
    let home = catalog
        .queue(&new.kind)
        .expect("a kind the catalog just checked has a queue");
    if new.queue.is_empty() {
        new.queue = home.to_owned();
    } else if new.queue != home {
        return Err(StoreError::InvalidSchedule(format!(
            "queue {:?} is not where kind {}'s tasks run: its queue is {home:?} (leave queue \
             out to get it)",
            new.queue, new.kind
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(queue: &str) -> NewRecurringTask {
        serde_json::from_value(serde_json::json!({
            "name": "digest", "kind": "career_digest", "queue": queue, "cron": "0 8 * * *",
            "payload": {"subscriber": 7},
        }))
        .unwrap()
    }

    #[test]
    fn a_recurring_task_runs_on_its_kinds_queue() {
        let mut left_out: NewRecurringTask = serde_json::from_value(serde_json::json!({
            "name": "digest", "kind": "career_digest", "cron": "0 8 * * *",
            "payload": {"subscriber": 7},
        }))
        .unwrap();
        resolve_recurring(&mut left_out).unwrap();
        assert_eq!(left_out.queue, "careers");

        let mut named = digest("careers");
        resolve_recurring(&mut named).unwrap();
        assert_eq!(named.queue, "careers");

        let err = resolve_recurring(&mut digest("scraping")).unwrap_err();
        assert!(
            err.to_string().contains(
                "queue \"scraping\" is not where kind career_digest's tasks run: its queue \
                 is \"careers\""
            ),
            "{err}"
        );
    }
}
