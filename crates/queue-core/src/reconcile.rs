//! PostgreSQL is the ledger, Redis the transport. The reconciler finds runs the ledger says are
//! `queued` or `running` whose task is nowhere in Redis (not pending, not in any worker's
//! in-flight list) and whose worker is gone, e.g. after Redis restarted without persistence,
//! and enqueues their task again, or fails them with the reason once they used their attempts.
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::Serialize;

use crate::store::{self, Run, RunStatus};
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

impl ReconcileError {
    /// Another session held the run's row longer than the reconciler waits (`ROW_WAIT`).
    fn is_row_held(&self) -> bool {
        use crate::SubmitError;
        matches!(
            self,
            ReconcileError::Store(StoreError::RowHeld { .. })
                | ReconcileError::Submit(SubmitError::Store(StoreError::RowHeld { .. }))
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reconciled {
    /// Runs whose task was lost and is queued again.
    pub requeued: Vec<String>,
    /// Runs whose task was lost once too often: failed with the reason.
    pub failed: Vec<String>,
    /// Runs left for the next pass because another session held their row (a worker cut off
    /// mid-write, until PostgreSQL ends its session): the pass does not wait for them.
    pub held: Vec<String>,
}

/// How long the reconciler waits for a run's row another session holds before leaving the run to
/// the next pass. Only a worker cut off mid-write holds a lost run's row (until PostgreSQL ends
/// its session), and it may hold a whole batch of them: waiting on each would stall the
/// scheduler's pass for the lot.
const ROW_WAIT: Duration = Duration::from_millis(20);

/// Reconciles runs not updated for `grace` (a run just created may not have reached Redis yet).
pub async fn reconcile(services: &Services, grace: Duration) -> Result<Reconciled, ReconcileError> {
    let candidates = store::stale_active_runs(&services.db, grace).await?;
    if candidates.is_empty() {
        return Ok(Reconciled::default());
    }
    // Every queue in use: a run's task is in its own queue's lists.
    let queues = services.known_queues().await?;
    let (mut in_redis, mut dead, mut alive) = (HashSet::new(), HashMap::new(), HashSet::new());
    for queue in &queues {
        in_redis.extend(
            queue
                .snapshot()
                .await?
                .iter()
                .filter_map(|raw| Task::parse_bytes(raw).ok()?.run_id),
        );
        // A run whose task was dead-lettered but could not be failed at that moment (the
        // database refused the write) is failed now with the dead letter's reason, not queued
        // again.
        dead.extend(
            queue
                .dead_letters(crate::DEFAULT_DEAD_LETTER_CAP)
                .await?
                .into_iter()
                .filter_map(|entry| Some((Task::parse(&entry.task).ok()?.run_id?, entry.reason))),
        );
        alive.extend(queue.live_workers().await?);
    }
    let mut reconciled = Reconciled::default();
    for run in candidates {
        let worker_alive = run.worker_id.as_ref().is_some_and(|w| alive.contains(w));
        if in_redis.contains(&run.run_id) || (run.status == RunStatus::Running && worker_alive) {
            continue;
        }
        let repaired = match dead.get(&run.run_id) {
            Some(reason) => {
                fail(
                    services,
                    &run,
                    &format!("its task was dead-lettered: {reason}"),
                )
                .await
            }
            None if run.attempt >= services.max_deliveries as i32 => {
                let message = format!(
                    "its task was lost from Redis after {} attempts; not requeued",
                    run.attempt
                );
                fail(services, &run, &message).await
            }
            None => requeue(services, &run).await,
        };
        match repaired {
            Ok(Some(Repair::Failed)) => reconciled.failed.push(run.run_id),
            Ok(Some(Repair::Requeued)) => reconciled.requeued.push(run.run_id),
            Ok(None) => {}
            Err(err) if err.is_row_held() => {
                tracing::warn!(run_id = %run.run_id, "reconciler: the run's row is held by another session; left for the next pass");
                reconciled.held.push(run.run_id);
            }
            Err(err) => return Err(err),
        }
    }
    Ok(reconciled)
}

enum Repair {
    Failed,
    Requeued,
}

/// Fails a run whose task is gone for good, unless it ended meanwhile (None).
async fn fail(
    services: &Services,
    run: &Run,
    message: &str,
) -> Result<Option<Repair>, ReconcileError> {
    let failed = crate::fail_run_unless_held(services, &run.run_id, message, ROW_WAIT).await?;
    Ok(failed.then_some(Repair::Failed))
}

/// Queues a lost run's task again, unless it ended meanwhile (None).
async fn requeue(services: &Services, run: &Run) -> Result<Option<Repair>, ReconcileError> {
    let message = "re-enqueued by the reconciler: its task was not in Redis";
    if !store::requeue_run_unless_held(&services.db, &run.run_id, message, ROW_WAIT).await? {
        return Ok(None);
    }
    // Its queue may be missing from the set of queues in use (Redis lost it with the task):
    // registered first, or the next pass would not see the task there and queue it again.
    services.register_queues(&[&run.queue]).await?;
    services
        .queue_named(&run.queue)
        .enqueue(&task_of(run))
        .await?;
    Ok(Some(Repair::Requeued))
}

/// The task a run was created from, rebuilt from its row (any kind: the payload is kept whole).
fn task_of(run: &Run) -> Task {
    let payload = match &run.payload {
        serde_json::Value::Object(map) => map.clone(),
        _ => Default::default(),
    };
    let mut task = Task::new(&run.kind, payload, run.run_id.clone(), run.trigger);
    if let Some(task_id) = &run.task_id {
        task.task_id = Some(task_id.clone());
    }
    task
}
