//! One dequeued batch's runs, read and started in one statement (`store::start_taken`, in the
//! ledger batcher's next flush) by whichever of its tasks asks first; the others wait for that
//! answer. A task left out of the
//! statement (a hand-written task with no run yet, a recovered task, a second copy of a run)
//! or whose statement failed goes its own way, one read and one start.
use std::collections::HashSet;
use std::sync::Arc;

use queue_core::store::{self, TakenRun};
use queue_core::{RawTask, Task, TaskError};
use tokio::sync::OnceCell;

use super::Worker;
use super::recovered::Alone;

pub(super) struct TakenBatch {
    /// `(run_id, task_id)` of the tasks in the statement.
    runs: Vec<(String, String)>,
    /// What the statement found: None if it failed (the tasks then read their runs alone).
    found: OnceCell<Option<Vec<TakenRun>>>,
}

/// How a taken task's run starts.
pub(super) enum Entry<'a> {
    /// With its batch, as the batch's statement found (and perhaps started) its run; or, with
    /// None, on its own.
    Ordinary(Option<TakenRun>),
    /// Recovered from a crashed worker: started on its own (not in its batch's statement), and
    /// its attempt run alone.
    Recovered(&'a Alone),
}

/// A taken task with its place in its batch's statement, if it has one.
pub(super) struct InBatch {
    pub raw: RawTask,
    pub task: Result<Task, TaskError>,
    pub batched: Option<(Arc<TakenBatch>, usize)>,
}

impl Worker {
    /// Parses a taken batch and places in one statement every task that can start there.
    pub(super) fn batch(&self, raws: Vec<RawTask>) -> Vec<InBatch> {
        let mut runs = Vec::new();
        let mut seen = HashSet::new();
        let taken: Vec<(RawTask, Result<Task, TaskError>, Option<usize>)> = raws
            .into_iter()
            .map(|raw| {
                let task = Task::parse_bytes(&raw);
                let place = task.as_ref().ok().and_then(|task| {
                    let (Some(run_id), Some(task_id)) = (&task.run_id, &task.task_id) else {
                        return None;
                    };
                    let starts_here = task.recovered.is_none()
                        && self.registry.resolve(task).is_ok()
                        && seen.insert(run_id.clone());
                    starts_here.then(|| {
                        runs.push((run_id.clone(), task_id.clone()));
                        runs.len() - 1
                    })
                });
                (raw, task, place)
            })
            .collect();
        let batch = Arc::new(TakenBatch {
            runs,
            found: OnceCell::new(),
        });
        taken
            .into_iter()
            .map(|(raw, task, place)| InBatch {
                raw,
                task,
                batched: place.map(|place| (batch.clone(), place)),
            })
            .collect()
    }

    /// The task's run as its batch's statement found it (None: find it alone).
    pub(super) async fn taken_run(&self, batched: &(Arc<TakenBatch>, usize)) -> Option<TakenRun> {
        let (batch, place) = batched;
        let found = batch
            .found
            .get_or_init(|| async {
                // Through the ledger batcher when there is one: the batches dequeued while
                // another flush commits share the next flush's transaction.
                match &self.lifecycle.ledger {
                    Some(ledger) => ledger.start_taken(&batch.runs, self.id()).await.ok(),
                    None => store::start_taken(&self.services.db, &batch.runs, self.id())
                        .await
                        .ok(),
                }
            })
            .await;
        found.as_ref().map(|runs| runs[*place].clone())
    }
}
