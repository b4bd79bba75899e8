//! Giving a task back when processing it failed on the way: through the delayed set, counted
//! against the task unless the failure was an outage; and, uncounted, when its run's row is
//! held by another session.
use std::sync::atomic::Ordering;
use std::time::Duration;

use queue_core::{GivenBack, RawTask, Task, TaskError};
use tracing::{error, info, warn};

use super::batch::Entry;
use super::measure::Deferred;
use super::{MAX_FETCH_BACKOFF, Worker};
use crate::{Processed, WorkerError};

/// How long a task that could not be processed (a dependency was down) waits before it runs
/// again.
const GIVE_BACK_DELAY: Duration = Duration::from_secs(2);

/// How long a task whose run's row is held by another session waits before it tries again.
const ROW_POLL: Duration = Duration::from_secs(1);

impl Worker {
    /// Processes a message; if that fails, gives the task back through the delayed set so it
    /// runs again, instead of leaving it in the in-flight list of a worker that is alive and
    /// will never look at it again. An outage (PostgreSQL or Redis unreachable mid-way) is not
    /// the task's fault and is not counted; any other failure counts against the task, which
    /// is dead-lettered with the reason after MAX_DELIVERIES of them, so a task that can never
    /// be processed does not go round forever. Until Redis takes it back, it stays in flight
    /// (requeued at shutdown).
    pub(super) async fn process_or_give_back(
        &self,
        index: usize,
        raw: RawTask,
        task: Result<Task, TaskError>,
        entry: Entry<'_>,
    ) {
        let mut in_flight = raw.clone();
        let Err(err) = self
            .process_tracked(index, raw, task, entry, &mut in_flight)
            .await
        else {
            if self.giving_back.swap(false, Ordering::Relaxed) {
                info!("tasks are processed again");
            }
            return;
        };
        let outage = err.is_outage();
        let chain = trawl_scrape::error_chain(&err);
        if !outage {
            warn!(
                error = %chain,
                event = "given_back",
                "task could not be processed; it counts towards MAX_DELIVERIES"
            );
        } else if !self.giving_back.swap(true, Ordering::Relaxed) {
            error!(
                error = %chain,
                retry_in_ms = GIVE_BACK_DELAY.as_millis() as u64,
                "task could not be processed; giving it back (logged once until tasks go through again)"
            );
        }
        let reason = format!(
            "could not be processed {} times: {chain}",
            self.services.max_deliveries
        );
        // Counted by task id, read from the message as it now stands in flight (a hand-written
        // task has been given its id by then), else by the message itself.
        let task = Task::parse_bytes(&in_flight).ok();
        let task_key = match task.as_ref().and_then(|task| task.task_id.as_deref()) {
            Some(id) => id.as_bytes().to_vec(),
            None => in_flight.clone(),
        };
        let mut backoff = Duration::from_millis(250);
        loop {
            let queue = &self.served[index].queue;
            let given = if outage {
                queue
                    .retry_later(self.id(), &in_flight, GIVE_BACK_DELAY)
                    .await
                    .map(|_| GivenBack::Delayed)
            } else {
                queue
                    .give_back(
                        self.id(),
                        &in_flight,
                        &task_key,
                        GIVE_BACK_DELAY,
                        self.services.max_deliveries,
                        &reason,
                    )
                    .await
            };
            match given {
                Ok(GivenBack::DeadLettered) => {
                    warn!(reason = %reason, event = "dead_letter", "task dead-lettered");
                    self.count_dead_letter(index, &in_flight);
                    // If this write fails too, the reconciler fails the run from the dead letter.
                    if let Some(run_id) = task.as_ref().and_then(|task| task.run_id.as_deref()) {
                        let _ = queue_core::fail_run(&self.services, run_id, &reason).await;
                    }
                    return;
                }
                // Delayed, or not in flight any more: Redis lost it (restart) or recovery took
                // it; either way the reconciler or the next delivery has it.
                Ok(_) => return,
                Err(_) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_FETCH_BACKOFF);
                }
            }
        }
    }

    /// Hands back, uncounted, a task whose run's row another session holds (a worker cut off
    /// mid-transaction: PostgreSQL keeps its rows until it ends the session). At the front
    /// once due, like a recovered task that steps aside: the wait is not the task's doing.
    pub(super) async fn wait_for_row(
        &self,
        index: usize,
        raw: &RawTask,
        run_id: String,
    ) -> Result<Processed, WorkerError> {
        let queue = &self.served[index].queue;
        queue.retry_later_at_front(self.id(), raw, ROW_POLL).await?;
        self.count_deferred(index, raw, Deferred::RowHeld);
        info!(
            event = "waiting",
            "the run's row is held by another session; the task waits"
        );
        Ok(Processed::StartBlocked { run_id })
    }
}
