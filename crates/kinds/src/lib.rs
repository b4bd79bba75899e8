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

/// Checks a recurring task's kind and payload the way its worker will read them, naming the
/// field (`POST /schedules`, `trawl schedule upsert`): a misspelt kind or a payload the kind
/// refuses would otherwise be dead-lettered at every fire.
pub fn check_recurring(new: &NewRecurringTask) -> Result<(), StoreError> {
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
        .map_err(StoreError::InvalidSchedule)
}
