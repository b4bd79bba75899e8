//! Processing one message to its end: parse, adopt, lock, run, ack; or dead-letter it, or give
//! it back when something failed on the way.
use std::time::Duration;

use queue_core::store::{self, NewRun, RunStatus, StartOutcome};
use queue_core::{AckBatcher, RawTask, Task, TaskError, Trigger};
use tokio_util::task::AbortOnDropHandle;
use tracing::{Instrument, error, info, info_span, warn};

use super::Worker;
use crate::{Ended, Processed, WorkerError};

/// How long a task whose site is busy waits in the delayed set before it tries the lock again.
const LOCK_POLL: Duration = Duration::from_secs(1);

impl Worker {
    /// Processes one dequeued message to a terminal state: acked with its run's result, or
    /// dead-lettered with the reason. An `Err` leaves the message in flight.
    pub async fn process(&self, raw: RawTask) -> Result<Processed, WorkerError> {
        let mut in_flight = raw.clone();
        let task = Task::parse_bytes(&raw);
        self.process_tracked(raw, task, &mut in_flight).await
    }

    /// `process` of `raw`, already parsed as `task`, keeping `in_flight` equal to the message as
    /// it stands in the in-flight list (a hand-written task is rewritten with its ids).
    pub(super) async fn process_tracked(
        &self,
        raw: RawTask,
        task: Result<Task, TaskError>,
        in_flight: &mut RawTask,
    ) -> Result<Processed, WorkerError> {
        let queue = &self.services.queue;
        let task = match task {
            Ok(task) => task,
            Err(err) => return self.dead_letter(&raw, err.to_string(), None).await,
        };
        let site =
            match trawl_scrape_runs::sites::get_site(&self.services.db, &task.site_name).await? {
                Some(site) => site,
                None => {
                    let reason = format!("unknown site: {}", task.site_name);
                    return self.dead_letter(&raw, reason, task.run_id.as_deref()).await;
                }
            };
        let spec = match site.spec() {
            Ok(spec) => spec,
            Err(err) => {
                return self
                    .dead_letter(&raw, err.to_string(), task.run_id.as_deref())
                    .await;
            }
        };
        let (task, raw, status, created_at) = self.adopt(task, raw, site.id, &spec).await?;
        in_flight.clone_from(&raw);
        let run_id = task.run_id.clone().expect("adopted tasks have a run_id");
        let task_id = task.task_id.clone().expect("adopted tasks have a task_id");
        let span = info_span!("run", site_name = %site.site_name, run_id = %run_id, task_id = %task_id, worker_id = %self.id());
        async {
            // A run cancelled (or otherwise ended) while its task waited: skip it without
            // waiting for a lock it no longer holds.
            if !matches!(status, RunStatus::Queued | RunStatus::Running) {
                info!(event = "duplicate", status = %status, "run already ended; acking");
                let summary = serde_json::json!({"run_id": run_id, "status": status});
                queue.ack(self.id(), &raw, &task_id, &summary).await?;
                return Ok(Processed::Duplicate { run_id, status });
            }
            if !self
                .services
                .locks
                .claim(&site.site_name, &run_id, self.services.lock_ttl)
                .await?
            {
                let holder = self
                    .services
                    .locks
                    .holder(&site.site_name)
                    .await?
                    .unwrap_or_default();
                // Another run of the site is going: wait in the delayed set, not in a worker
                // slot, until LOCK_WAIT since the run was created has passed.
                let waited = (chrono::Utc::now() - created_at).to_std().unwrap_or_default();
                if waited < self.settings.lock_wait {
                    let delay = LOCK_POLL.min(self.settings.lock_wait - waited);
                    queue.retry_later(self.id(), &raw, delay).await?;
                    info!(event = "waiting", held_by = %holder, "site busy; the task waits for its lock");
                    return Ok(Processed::WaitingForLock { run_id, holder });
                }
                let message = format!(
                    "site busy: run {holder} held the site lock for more than {} s",
                    self.settings.lock_wait.as_secs()
                );
                queue_core::fail_run(&self.services, &run_id, &message).await?;
                warn!(event = "finished", status = "failed", "{message}");
                return self.ack(&raw, &task, RunStatus::Failed).await.map(|()| {
                    Processed::Finished {
                        run_id,
                        status: RunStatus::Failed,
                    }
                });
            }
            let attempt = match store::start_run(&self.services.db, &run_id, &task_id, self.id())
                .await?
            {
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
                    self.services
                        .locks
                        .release(&site.site_name, &run_id)
                        .await?;
                    queue
                        .ack(
                            self.id(),
                            &raw,
                            &task_id,
                            &serde_json::json!({"run_id": run_id, "status": status}),
                        )
                        .await?;
                    return Ok(Processed::Duplicate { run_id, status });
                }
                StartOutcome::Missing => {
                    // Only possible if the run row was deleted after adopt() created it.
                    return self
                        .dead_letter(&raw, format!("run {run_id} does not exist"), None)
                        .await;
                }
            };
            match self.execute(&site, &spec, &task, &run_id, attempt).await? {
                Ended::Finished(report) => {
                    let status = report.status;
                    self.services
                        .locks
                        .release(&site.site_name, &run_id)
                        .await?;
                    self.ack(&raw, &task, status).await?;
                    info!(event = "finished", status = status.as_str(), "run finished");
                    Ok(Processed::Finished { run_id, status })
                }
                Ended::Retry { retry, delay, report } => {
                    self.services
                        .locks
                        .release(&site.site_name, &run_id)
                        .await?;
                    if !queue.retry_later(self.id(), &raw, delay).await? {
                        warn!("task was no longer in flight; its retry is left to recovery");
                    }
                    warn!(event = "retry", retry, delay_ms = delay.as_millis() as u64, message = %report.message, "attempt failed transiently; retrying later");
                    Ok(Processed::Retrying { run_id, retry, delay })
                }
                Ended::Superseded(_) => {
                    // The lock (held in the run's name) and the run now belong to the newer
                    // attempt: only our copy of the task goes.
                    warn!(event = "superseded", attempt, "a newer attempt owns the run; result dropped");
                    let summary = serde_json::json!({"run_id": run_id, "superseded_attempt": attempt});
                    queue.ack(self.id(), &raw, &task_id, &summary).await?;
                    Ok(Processed::Superseded { run_id })
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Runs the scrape in a task of its own so a panic in it fails the run instead of the
    /// worker.
    async fn execute(
        &self,
        site: &trawl_scrape_runs::sites::SiteSchedule,
        spec: &trawl_scrape::SiteSpec,
        task: &Task,
        run_id: &str,
        attempt: i32,
    ) -> Result<Ended, WorkerError> {
        let executor = self.executor.clone();
        let (site_owned, spec_owned, task_owned, run_owned) =
            (site.clone(), spec.clone(), task.clone(), run_id.to_owned());
        let time_limit = self.services.job_timeout;
        // Aborted if this future is dropped (shutdown after the grace period), so no scrape
        // outlives the task that owns it.
        let handle = AbortOnDropHandle::new(tokio::spawn(
            async move {
                executor
                    .execute(
                        &site_owned,
                        &spec_owned,
                        &task_owned,
                        &run_owned,
                        attempt,
                        time_limit,
                    )
                    .await
            }
            .in_current_span(),
        ));
        match handle.await {
            Ok(ended) => Ok(ended?),
            Err(join) => {
                let message = if join.is_panic() {
                    "the scrape panicked"
                } else {
                    "the scrape was cancelled"
                };
                error!(event = "finished", status = "failed", "{message}");
                let report = store::RunReport {
                    status: RunStatus::Failed,
                    requested_pages: 0,
                    completed_pages: 0,
                    errors_count: 1,
                    jobs_invalid: 0,
                    message: message.to_owned(),
                    error_detail: serde_json::json!({}),
                };
                // A panic is a bug, not bad luck: not retried.
                Ok(self
                    .executor
                    .end_attempt(site, run_id, attempt, report, false)
                    .await?)
            }
        }
    }

    /// Gives a task its run: a task from the scheduler or API already has one; a hand-written
    /// task gets a `manual` run, and its in-flight copy is rewritten to carry the ids. Returns
    /// the task, the message as it now stands in flight, and the run's status and creation.
    async fn adopt(
        &self,
        mut task: Task,
        raw: RawTask,
        site_schedule_id: uuid::Uuid,
        spec: &trawl_scrape::SiteSpec,
    ) -> Result<(Task, RawTask, RunStatus, chrono::DateTime<chrono::Utc>), WorkerError> {
        let complete = task.run_id.is_some() && task.task_id.is_some();
        let task_id = task
            .task_id
            .get_or_insert_with(|| format!("task_{}", uuid::Uuid::new_v4().simple()))
            .clone();
        let run_id = task
            .run_id
            .get_or_insert_with(|| format!("manual_{}", uuid::Uuid::new_v4().simple()))
            .clone();
        // The run's status comes back with the task, so the caller need not read it again.
        let (status, created_at) = match store::get_run(&self.services.db, &run_id).await? {
            Some(run) => (run.status, run.created_at),
            None => {
                let trigger = *task.trigger.get_or_insert(Trigger::Manual);
                // The same defaults as the API, the CLI and the scheduler apply.
                trawl_scrape_runs::apply_site_defaults(&mut task, spec);
                store::create_run(
                    &self.services.db,
                    &NewRun {
                        run_id: &run_id,
                        site_name: &task.site_name,
                        site_schedule_id: Some(site_schedule_id),
                        task_id: &task_id,
                        trigger,
                        search_term: task.search_term.as_deref(),
                        location: task.location.as_deref(),
                        results_wanted: task.results_wanted,
                    },
                )
                .await?;
                (RunStatus::Queued, chrono::Utc::now())
            }
        };
        if complete {
            return Ok((task, raw, status, created_at));
        }
        let completed = task.to_json();
        self.services
            .queue
            .adopt(self.id(), &raw, &completed)
            .await?;
        Ok((task, completed.into_bytes(), status, created_at))
    }

    async fn ack(&self, raw: &[u8], task: &Task, status: RunStatus) -> Result<(), WorkerError> {
        let task_id = task.task_id.as_deref().unwrap_or_default();
        let summary = serde_json::json!({
            "task_id": task_id,
            "run_id": task.run_id,
            "site_name": task.site_name,
            "status": status.as_str(),
            "finished_at": chrono::Utc::now(),
        });
        let acks = self.acks.get_or_init(|| {
            AckBatcher::spawn(
                self.services.queue.clone(),
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
        raw: &[u8],
        reason: String,
        run_id: Option<&str>,
    ) -> Result<Processed, WorkerError> {
        warn!(reason = %reason, event = "dead_letter", "task dead-lettered");
        if let Some(run_id) = run_id {
            queue_core::fail_run(&self.services, run_id, &reason).await?;
        }
        self.services
            .queue
            .dead_letter(self.id(), raw, &reason)
            .await?;
        Ok(Processed::DeadLettered { reason })
    }
}
