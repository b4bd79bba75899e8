//! Processing one message to its end, for every kind alike: parse, find its kind, adopt, lock,
//! run, ack; or dead-letter it, or give it back when something failed on the way.
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use queue_core::store::{self, NewRun, RunStatus, StartOutcome, TakenRun};
use queue_core::{RawTask, Task, TaskError, Trigger};
use tracing::{Instrument, info, info_span, warn};
use trawl_tasks::{DynHandler, Ended, HandlerError};

use super::Worker;
use super::batch::Entry;
use super::measure::{Attempt, Deferred};
use super::recovered::Alone;
use crate::{Processed, WorkerError};

/// How long a task whose run lock is held waits in the delayed set before it tries again.
const LOCK_POLL: Duration = Duration::from_secs(1);

/// A task with its run, as `adopt` leaves it.
struct Adopted {
    task: Task,
    /// The message as it now stands in flight.
    raw: RawTask,
    run_id: String,
    task_id: String,
    status: RunStatus,
    created_at: DateTime<Utc>,
    lock_key: Option<String>,
    /// The attempt its batch's statement started, if it did.
    started: Option<i32>,
}

impl Worker {
    /// Processes one dequeued message to a terminal state: acked with its run's result, or
    /// dead-lettered with the reason. An `Err` leaves the message in flight.
    /// (From the first queue the worker serves, as `run_once` takes it.)
    pub async fn process(&self, raw: RawTask) -> Result<Processed, WorkerError> {
        let mut in_flight = raw.clone();
        let task = Task::parse_bytes(&raw);
        self.process_tracked(0, raw, task, Entry::Ordinary(None), &mut in_flight)
            .await
    }

    /// `process` of `raw`, already parsed as `task`, keeping `in_flight` equal to the message as
    /// it stands in the in-flight list (a hand-written task is rewritten with its ids).
    pub(super) async fn process_tracked(
        &self,
        queue: usize,
        raw: RawTask,
        task: Result<Task, TaskError>,
        entry: Entry<'_>,
        in_flight: &mut RawTask,
    ) -> Result<Processed, WorkerError> {
        let (found, alone) = match entry {
            Entry::Ordinary(found) => (found, None),
            Entry::Recovered(alone) => (None, Some(alone)),
        };
        let task = match task {
            Ok(task) => task,
            Err(err) => return self.dead_letter(queue, &raw, err.to_string(), None).await,
        };
        // An unknown kind, or a payload that does not fit its kind.
        let handler = match self.registry.resolve(&task) {
            Ok(handler) => handler.clone(),
            Err(err) => {
                let run_id = task.run_id.as_deref();
                return self.dead_letter(queue, &raw, err.to_string(), run_id).await;
            }
        };
        let adopted = match self.adopt(queue, task, raw.clone(), &handler, found).await {
            Ok(adopted) => adopted,
            // The kind refuses the task (a scrape of an unknown site).
            Err(WorkerError::Plan(err @ HandlerError::Fatal { .. })) => {
                return self.dead_letter(queue, &raw, err.to_string(), None).await;
            }
            Err(err) => return Err(err),
        };
        in_flight.clone_from(&adopted.raw);
        let span = info_span!("run", kind = handler.kind(), queue = self.served[queue].name(), run_id = %adopted.run_id,
            task_id = %adopted.task_id, lock = adopted.lock_key.as_deref().unwrap_or(""),
            worker_id = %self.id());
        self.run_adopted(queue, &handler, adopted, alone)
            .instrument(span)
            .await
    }

    /// Acks the task of a run that already ended (a redelivery, a cancel, a second copy). A
    /// worker killed between ending the run and releasing its lock left the lock to this
    /// redelivery: released, if this run still holds it.
    async fn ack_duplicate(
        &self,
        index: usize,
        raw: &RawTask,
        task_id: &str,
        run_id: String,
        status: RunStatus,
        lock_key: Option<&str>,
    ) -> Result<Processed, WorkerError> {
        if let Some(key) = lock_key {
            self.services.locks.release(key, &run_id).await?;
        }
        let summary = serde_json::json!({"run_id": run_id, "status": status});
        self.served[index]
            .queue
            .ack(self.id(), raw, task_id, &summary)
            .await?;
        Ok(Processed::Duplicate { run_id, status })
    }

    async fn run_adopted(
        &self,
        index: usize,
        handler: &Arc<dyn DynHandler>,
        adopted: Adopted,
        alone: Option<&Alone>,
    ) -> Result<Processed, WorkerError> {
        let queue = &self.served[index].queue;
        let Adopted {
            task,
            raw,
            run_id,
            task_id,
            status,
            created_at,
            lock_key,
            started,
        } = adopted;
        // A run cancelled (or otherwise ended) while its task waited: skip it without
        // waiting for a lock it no longer holds.
        if !matches!(status, RunStatus::Queued | RunStatus::Running) {
            info!(event = "duplicate", status = %status, "run already ended; acking");
            return self
                .ack_duplicate(index, &raw, &task_id, run_id, status, lock_key.as_deref())
                .await;
        }
        let locks = &self.services.locks;
        if let Some(key) = &lock_key
            && let Some(holder) = queue_core::claim_run_lock(&self.services, key, &run_id).await?
        {
            // Another run holds the lock: wait in the delayed set, not in a worker slot, until
            // LOCK_WAIT since the run was created has passed.
            let waited = (Utc::now() - created_at).to_std().unwrap_or_default();
            if waited < self.settings.lock_wait {
                let delay = LOCK_POLL.min(self.settings.lock_wait - waited);
                queue.retry_later(self.id(), &raw, delay).await?;
                self.count_deferred(index, &raw, Deferred::RunLock);
                info!(event = "waiting", held_by = %holder, "run lock held; the task waits");
                return Ok(Processed::WaitingForLock { run_id, holder });
            }
            let message = format!(
                "busy: run {holder} held {key} for more than {} s",
                self.settings.lock_wait.as_secs()
            );
            queue_core::fail_run(&self.services, &run_id, &message).await?;
            warn!(event = "finished", status = "failed", "{message}");
            self.ack(index, &raw, &task, &run_id, RunStatus::Failed)
                .await?;
            return Ok(Processed::Finished {
                run_id,
                status: RunStatus::Failed,
            });
        }
        let release = || async {
            match &lock_key {
                Some(key) => locks.release(key, &run_id).await.map(|_| ()),
                None => Ok(()),
            }
        };
        let start = match started {
            Some(attempt) => Ok(StartOutcome::Started { attempt }),
            None => (self.lifecycle.start(&run_id, &task_id, self.id()).await)
                .map_err(WorkerError::from),
        };
        let start = match start {
            Ok(start) => start,
            Err(err) => {
                // Claimed, not started: the error is what is returned; the lock goes if the
                // run has ended (best effort: the next claim of the key heals it too).
                if let Some(key) = &lock_key {
                    let _ = self.release_if_ended(key, &run_id).await;
                }
                return Err(err);
            }
        };
        let attempt = match start {
            StartOutcome::Started { attempt } => {
                info!(
                    event = "started",
                    status = "running",
                    attempt,
                    "run started"
                );
                attempt
            }
            StartOutcome::AlreadyFinished { status } => {
                info!(event = "duplicate", status = %status, "run already finished; acking");
                return self
                    .ack_duplicate(index, &raw, &task_id, run_id, status, lock_key.as_deref())
                    .await;
            }
            StartOutcome::Missing => {
                // Only possible if the run row was deleted after adopt() created it.
                let reason = format!("run {run_id} does not exist");
                return self.dead_letter(index, &raw, reason, None).await;
            }
            // Handed back until the row is free; a lock stays in the run's name.
            StartOutcome::Busy => return self.wait_for_row(index, &raw, run_id).await,
        };
        if let Some(alone) = alone {
            alone.take_every_slot().await;
        }
        let measured = Attempt::start(handler.kind(), self.served[index].name());
        let ctx = self.lifecycle.context(&run_id, &task_id, attempt);
        let ended = self
            .lifecycle
            .run_attempt(handler, ctx, task.payload.clone())
            .await?;
        match ended {
            Ended::Finished(report) => {
                let status = report.status;
                measured.finished(status.as_str());
                release().await?;
                self.ack(index, &raw, &task, &run_id, status).await?;
                info!(event = "finished", status = status.as_str(), message = %report.message, "run finished");
                Ok(Processed::Finished { run_id, status })
            }
            Ended::Retry {
                retry,
                delay,
                report,
            } => {
                measured.retried();
                release().await?;
                if !queue.retry_later(self.id(), &raw, delay).await? {
                    warn!("task was no longer in flight; its retry is left to recovery");
                }
                warn!(event = "retry", retry, delay_ms = delay.as_millis() as u64, message = %report.message, "attempt failed transiently; retrying later");
                Ok(Processed::Retrying {
                    run_id,
                    retry,
                    delay,
                })
            }
            Ended::Superseded(_) => {
                // The lock (held in the run's name) and the run now belong to the newer
                // attempt: only our copy of the task goes (and the lock, if that attempt has
                // ended too).
                if let Some(key) = &lock_key {
                    self.release_if_ended(key, &run_id).await?;
                }
                warn!(
                    event = "superseded",
                    attempt, "a newer attempt owns the run; result dropped"
                );
                let summary = serde_json::json!({"run_id": run_id, "superseded_attempt": attempt});
                queue.ack(self.id(), &raw, &task_id, &summary).await?;
                Ok(Processed::Superseded { run_id })
            }
        }
    }

    /// Gives a task its run: a task from the scheduler or API already has one; a hand-written
    /// task gets a `manual` run planned by its kind, and its in-flight copy is rewritten to
    /// carry the ids and the kind's defaults.
    async fn adopt(
        &self,
        index: usize,
        mut task: Task,
        raw: RawTask,
        handler: &Arc<dyn DynHandler>,
        found: Option<TakenRun>,
    ) -> Result<Adopted, WorkerError> {
        let complete = task.run_id.is_some() && task.task_id.is_some();
        let task_id = task
            .task_id
            .get_or_insert_with(queue_core::new_task_id)
            .clone();
        let run_id = task
            .run_id
            .get_or_insert_with(|| queue_core::new_run_id(Trigger::Manual))
            .clone();
        // The run's status comes back with the task, so the caller need not read it again.
        let started = found.as_ref().and_then(|found| found.started);
        let known = match found {
            Some(found) => found.status.map(|status| {
                let created_at = found.created_at.unwrap_or_else(Utc::now);
                (status, created_at, found.lock_key)
            }),
            None => store::get_run(&self.services.db, &run_id)
                .await?
                .map(|run| (run.status, run.created_at, run.lock_key)),
        };
        let (status, created_at, lock_key) = match known {
            Some(known) => known,
            None => {
                let trigger = *task.trigger.get_or_insert(Trigger::Manual);
                // The kind completes the payload (a scrape: its site's defaults) and plans the
                // run, as every door does.
                let (payload, plan) = handler
                    .plan(std::mem::take(&mut task.payload))
                    .await
                    .map_err(WorkerError::Plan)?;
                task.payload = payload;
                store::create_run(
                    &self.services.db,
                    &NewRun {
                        run_id: &run_id,
                        kind: handler.kind(),
                        queue: &plan.queue,
                        task_id: &task_id,
                        trigger,
                        payload: &task.payload,
                        lock_key: plan.lock_key.as_deref(),
                        max_retries: plan.max_retries,
                    },
                )
                .await?;
                (RunStatus::Queued, Utc::now(), plan.lock_key)
            }
        };
        let raw = if complete {
            raw
        } else {
            let completed = task.to_json();
            self.served[index]
                .queue
                .adopt(self.id(), &raw, &completed)
                .await?;
            completed.into_bytes()
        };
        Ok(Adopted {
            task,
            raw,
            run_id,
            task_id,
            status,
            created_at,
            lock_key,
            started,
        })
    }

    async fn ack(
        &self,
        index: usize,
        raw: &[u8],
        task: &Task,
        run_id: &str,
        status: RunStatus,
    ) -> Result<(), WorkerError> {
        let task_id = task.task_id.as_deref().unwrap_or_default();
        let summary = serde_json::json!({
            "task_id": task_id,
            "run_id": run_id,
            "kind": task.kind.as_deref().unwrap_or(self.registry.default_kind_name()),
            "status": status.as_str(),
            "finished_at": Utc::now(),
        });
        let served = &self.served[index];
        let acks = served.acks.get_or_init(|| {
            queue_core::AckBatcher::spawn(
                served.queue.clone(),
                self.id().to_owned(),
                self.settings.concurrency,
                &self.background,
                self.background_stop.clone(),
            )
        });
        acks.ack(raw, task_id, summary).await?;
        Ok(())
    }

    async fn dead_letter(
        &self,
        index: usize,
        raw: &[u8],
        reason: String,
        run_id: Option<&str>,
    ) -> Result<Processed, WorkerError> {
        warn!(reason = %reason, event = "dead_letter", "task dead-lettered");
        self.count_dead_letter(index, raw);
        if let Some(run_id) = run_id {
            queue_core::fail_run(&self.services, run_id, &reason).await?;
        }
        self.served[index]
            .queue
            .dead_letter(self.id(), raw, &reason)
            .await?;
        Ok(Processed::DeadLettered { reason })
    }
}
