//! PostgreSQL is the ledger, Redis the transport. The reconciler finds runs the ledger says are
//! `queued` or `running` whose task is nowhere in Redis (not pending, not in any worker's
//! in-flight list) and whose worker is gone, e.g. after Redis restarted without persistence,
//! and enqueues their task again, or fails them with the reason once they used their attempts.
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::Serialize;

use crate::store::{self, RunStatus, ScrapeRun};
use crate::{QueueError, Services, StoreError, Task};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReconcileError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Submit(#[from] crate::SubmitError),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reconciled {
    /// Runs whose task was lost and is queued again.
    pub requeued: Vec<String>,
    /// Runs whose task was lost once too often: failed with the reason.
    pub failed: Vec<String>,
}

/// Reconciles runs not updated for `grace` (a run just created may not have reached Redis yet).
pub async fn reconcile(services: &Services, grace: Duration) -> Result<Reconciled, ReconcileError> {
    let candidates = store::stale_active_runs(&services.db, grace).await?;
    if candidates.is_empty() {
        return Ok(Reconciled::default());
    }
    let in_redis: HashSet<String> = services
        .queue
        .snapshot()
        .await?
        .iter()
        .filter_map(|raw| Task::parse_bytes(raw).ok()?.run_id)
        .collect();
    // A run whose task was dead-lettered but could not be failed at that moment (the database
    // refused the write) is failed now with the dead letter's reason, not queued again.
    let dead: HashMap<String, String> = services
        .queue
        .dead_letters(crate::DEFAULT_DEAD_LETTER_CAP)
        .await?
        .into_iter()
        .filter_map(|entry| Some((Task::parse(&entry.task).ok()?.run_id?, entry.reason)))
        .collect();
    let alive: HashSet<String> = services.queue.live_workers().await?.into_iter().collect();
    let mut reconciled = Reconciled::default();
    for run in candidates {
        let worker_alive = run.worker_id.as_ref().is_some_and(|w| alive.contains(w));
        if in_redis.contains(&run.run_id) || (run.status == RunStatus::Running && worker_alive) {
            continue;
        }
        if let Some(reason) = dead.get(&run.run_id) {
            let message = format!("its task was dead-lettered: {reason}");
            if crate::fail_run(services, &run.run_id, &message).await? {
                reconciled.failed.push(run.run_id);
            }
            continue;
        }
        if run.attempt >= services.max_deliveries as i32 {
            let message = format!(
                "its task was lost from Redis after {} attempts; not requeued",
                run.attempt
            );
            if crate::fail_run(services, &run.run_id, &message).await? {
                reconciled.failed.push(run.run_id);
            }
            continue;
        }
        if store::requeue_run(
            &services.db,
            &run.run_id,
            None,
            "re-enqueued by the reconciler: its task was not in Redis",
        )
        .await?
        {
            services.queue.enqueue(&task_of(&run)).await?;
            reconciled.requeued.push(run.run_id);
        }
    }
    Ok(reconciled)
}

/// The task a run was created from, rebuilt from its row.
fn task_of(run: &ScrapeRun) -> Task {
    let mut task = Task::new(&run.site_name, run.run_id.clone(), run.trigger);
    if let Some(task_id) = &run.task_id {
        task.task_id = Some(task_id.clone());
    }
    task.search_term.clone_from(&run.search_term);
    task.location.clone_from(&run.location);
    task.results_wanted = run.results_wanted.map(|n| n as u32);
    task
}
