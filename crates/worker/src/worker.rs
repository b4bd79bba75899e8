//! The worker: takes tasks from the queue, runs them, and acks or dead-letters each.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use queue_core::RedisPacer;
use queue_core::store::{self, NewRun, RunStatus, StartOutcome};
use queue_core::{
    AckBatcher, Consumer, GivenBack, QueueError, RawTask, Services, StoreError, SubmitError, Taken,
    Task, TaskError, Trigger,
};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::{AbortOnDropHandle, TaskTracker};
use tracing::{Instrument, error, info, info_span, warn};
use trawl_scrape::{BrowserPool, BrowserSlots, DomainLimits, DomainPacer, Fetchers, HttpFetcher};

use crate::{Ended, Executor, WorkerSettings};

/// How long a task whose site is busy waits in the delayed set before it tries the lock again.
const LOCK_POLL: Duration = Duration::from_secs(1);
/// How often the worker reads whether the queue is paused: a pause takes effect within this.
const PAUSE_CHECK: Duration = Duration::from_secs(1);
/// How often each worker moves due retries from the delayed set to the queue (any number of
/// workers may do it at once; the script moves each task once).
const PROMOTE_EVERY: Duration = Duration::from_secs(1);
/// How long a task that could not be processed (a dependency was down) waits before it runs
/// again.
const GIVE_BACK_DELAY: Duration = Duration::from_secs(2);
/// How long the background tasks get to stop at the end of `run` (a slot release or the last
/// acks may need a round trip) before the worker stops without them.
const BACKGROUND_JOIN: Duration = Duration::from_secs(5);
/// Longest pause between dequeue attempts while Redis is unreachable.
const MAX_FETCH_BACKOFF: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Failing a run from outside its attempt (`queue_core::fail_run`).
    #[error(transparent)]
    Submit(#[from] SubmitError),
}

impl WorkerError {
    /// Redis or PostgreSQL could not be reached: the same task may well go through later, so
    /// it is given back without counting against it.
    pub fn is_outage(&self) -> bool {
        match self {
            WorkerError::Store(err) => err.is_unavailable(),
            WorkerError::Queue(err) | WorkerError::Submit(SubmitError::Queue(err)) => {
                err.is_unavailable()
            }
            WorkerError::Submit(SubmitError::Store(err)) => err.is_unavailable(),
            WorkerError::Submit(_) => false,
        }
    }
}

/// What processing one message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// The run ended with this status and the task was acked.
    Finished { run_id: String, status: RunStatus },
    /// The message could not be run; it is in the dead-letter list with the reason.
    DeadLettered { reason: String },
    /// The run had already ended (a duplicate delivery); acked without running again.
    Duplicate { run_id: String, status: String },
    /// The attempt failed transiently; the task waits in the delayed set for retry `retry`.
    Retrying {
        run_id: String,
        retry: i32,
        delay: Duration,
    },
    /// A newer attempt of the run started elsewhere while this one ran; this worker wrote
    /// nothing and dropped its copy of the task.
    Superseded { run_id: String },
    /// Another run holds the site's lock; the task waits in the delayed set to try again.
    WaitingForLock { run_id: String, holder: String },
}

/// Outcome of one `run_once` step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ran(Processed),
    Empty,
    /// The queue is paused: nothing was taken.
    Paused,
}

pub struct Worker {
    services: Services,
    settings: WorkerSettings,
    executor: Executor,
    /// Set while tasks cannot be processed (a dependency is down), so the outage is logged
    /// once, not once per task given back.
    giving_back: AtomicBool,
    /// Acks of runs finishing at the same moment share one round trip (started on first use).
    acks: OnceLock<AckBatcher>,
    /// Owns every background task (heartbeat, promoter, ack batcher, browser reaper, slot
    /// renewers); joined at the end of `run`.
    background: TaskTracker,
    /// Cancelled once the drain is over: stops the background tasks that must outlive
    /// `shutdown` (the heartbeat, the ack batcher).
    background_stop: CancellationToken,
}

impl Worker {
    /// `slots` caps browsers across all workers (BROWSER_GLOBAL_SLOTS); None: no global cap.
    ///
    /// `background` owns the worker's background tasks; pass the same tracker to the
    /// `SlotSemaphore` behind `slots`, so its renewers are joined with the rest.
    pub fn new(
        services: Services,
        settings: WorkerSettings,
        slots: Option<Arc<dyn BrowserSlots>>,
        background: TaskTracker,
    ) -> Result<Arc<Self>, trawl_scrape::ScrapeError> {
        let fetchers = Fetchers {
            http: HttpFetcher::new(&settings.user_agent, settings.page_timeout)?,
            browser: settings
                .browser
                .clone()
                .map(|browser| BrowserPool::new(browser, slots, background.clone())),
            adzuna: settings.adzuna.clone(),
            domain_limits: DomainLimits::new(settings.per_domain_concurrency),
            pacer: settings.domain_interval.map(|interval| {
                Arc::new(RedisPacer::new(
                    services.redis.clone(),
                    services.keys().clone(),
                    interval,
                )) as Arc<dyn DomainPacer>
            }),
        };
        let executor = Executor {
            services: services.clone(),
            fetchers,
            retry_base_delay: settings.retry_base_delay,
            run_retry_base: Some(settings.run_retry_base),
        };
        Ok(Arc::new(Self {
            services,
            settings,
            executor,
            giving_back: AtomicBool::new(false),
            acks: OnceLock::new(),
            background,
            background_stop: CancellationToken::new(),
        }))
    }

    pub fn id(&self) -> &str {
        &self.settings.worker_id
    }

    /// Background tasks still running (none once `run` has returned).
    pub fn background_tasks(&self) -> usize {
        self.background.len()
    }

    pub fn consumer(&self) -> Consumer {
        self.services.queue.consumer(
            &self.services.redis_url,
            &self.settings.worker_id,
            self.settings.block_for,
        )
    }

    /// Takes at most one task and processes it to the end (the step tests drive).
    pub async fn run_once(&self, consumer: &mut Consumer) -> Result<Outcome, WorkerError> {
        match consumer.next_batch(1).await? {
            Taken::Tasks(taken) => match taken.into_iter().next() {
                Some(raw) => Ok(Outcome::Ran(self.process(raw).await?)),
                None => Ok(Outcome::Empty),
            },
            Taken::Paused => Ok(Outcome::Paused),
        }
    }

    /// Runs until `shutdown`, then lets running tasks finish within the grace period and puts
    /// the rest back in the queue.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        info!(worker_id = %self.id(), concurrency = self.settings.concurrency, "worker started");
        // Registered before the first dequeue, so the reconciler's snapshot always knows whose
        // in-flight list a task may be in.
        if let Err(err) = self
            .services
            .queue
            .heartbeat(self.id(), self.settings.heartbeat_ttl)
            .await
        {
            warn!(
                error = format!("{err:#}"),
                "first heartbeat failed; retrying in the background"
            );
        }
        // The heartbeat outlives `shutdown` until the drain is over: a draining worker is alive,
        // and recovery must not take its tasks while it still finishes or requeues them.
        self.background
            .spawn(self.clone().heartbeat(self.background_stop.clone()));
        self.background
            .spawn(self.clone().promote_retries(shutdown.clone()));
        let slots = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        let mut consumer = self.consumer();
        let mut running = JoinSet::new();
        let mut backoff = Duration::ZERO;
        let (mut paused, mut paused_checked) = (false, tokio::time::Instant::now() - PAUSE_CHECK);
        loop {
            // Safe to cancel: waiting for a free slot holds nothing.
            let slot = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                slot = slots.clone().acquire_owned() => slot.expect("semaphore is never closed"),
            };
            // Paused: take nothing. Read at most once per PAUSE_CHECK, not once per task; a failed
            // read counts as not paused (the dequeue below reports the outage).
            if paused_checked.elapsed() >= PAUSE_CHECK {
                paused = self.services.queue.is_paused().await.unwrap_or(false);
                paused_checked = tokio::time::Instant::now();
            }
            if paused {
                drop(slot);
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(self.settings.block_for) => continue,
                }
            }
            // Every free slot takes a task in the same round trip.
            let mut free = vec![slot];
            while let Ok(more) = slots.clone().try_acquire_owned() {
                free.push(more);
            }
            // Cancel safety: tasks moved by a dequeue whose reply is dropped stay in our
            // in-flight list, and the requeue below gives them back.
            let next = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                next = consumer.next_batch(free.len()) => next,
            };
            match next {
                // Paused after the last check: the dequeue took nothing (atomically), and the
                // loop waits like any paused worker.
                Ok(Taken::Paused) => {
                    (paused, paused_checked) = (true, tokio::time::Instant::now());
                    backoff = Duration::ZERO;
                }
                Ok(Taken::Tasks(taken)) if !taken.is_empty() => {
                    backoff = Duration::ZERO;
                    for (raw, slot) in taken.into_iter().zip(free) {
                        let worker = self.clone();
                        let task = Task::parse_bytes(&raw);
                        let recovered = task.as_ref().ok().and_then(|task| task.recovered);
                        let Some(recovered) = recovered else {
                            running.spawn(async move {
                                let _slot = slot;
                                worker.process_or_give_back(raw, task).await;
                            });
                            continue;
                        };
                        // A worker died holding this task: it runs alone here, once every other
                        // task has finished, and nothing new starts meanwhile (the semaphore is
                        // fair). Taking all slots in one request cannot deadlock with another
                        // such task.
                        drop(slot);
                        let all = slots
                            .clone()
                            .acquire_many_owned(self.settings.concurrency.max(1) as u32);
                        running.spawn(async move {
                            let _all = all.await.expect("semaphore is never closed");
                            info!(
                                recovered,
                                "task recovered from a crashed worker; running it alone"
                            );
                            worker.process_or_give_back(raw, task).await;
                        });
                    }
                }
                Ok(Taken::Tasks(_)) => {}
                Err(err) => {
                    if backoff.is_zero() {
                        error!(
                            error = format!("{err:#}"),
                            "cannot take tasks from redis; retrying"
                        );
                    }
                    backoff = (backoff * 2).clamp(Duration::from_millis(250), MAX_FETCH_BACKOFF);
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                }
            }
            while running.try_join_next().is_some() {}
        }
        self.drain(running).await;
        if let Some(browser) = &self.executor.fetchers.browser {
            browser.close().await;
        }
        self.background_stop.cancel();
        self.background.close();
        if tokio::time::timeout(BACKGROUND_JOIN, self.background.wait())
            .await
            .is_err()
        {
            warn!(
                still_running = self.background.len(),
                "background tasks did not stop in time"
            );
        }
        if let Err(err) = self.services.queue.deregister(self.id()).await {
            warn!(error = format!("{err:#}"), "could not deregister worker");
        }
        info!(worker_id = %self.id(), "worker stopped");
    }

    /// Waits for running tasks up to the grace period, then stops the rest and requeues them.
    async fn drain(&self, mut running: JoinSet<()>) {
        let waiting = running.len();
        if waiting > 0 {
            info!(running = waiting, grace = ?self.settings.shutdown_grace, "waiting for running tasks");
        }
        let finished = tokio::time::timeout(self.settings.shutdown_grace, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if finished.is_err() {
            warn!(
                still_running = running.len(),
                "grace period over; stopping and requeueing the rest"
            );
            running.shutdown().await;
        }
        let queue = &self.services.queue;
        match queue.inflight(self.id()).await {
            Ok(left) => {
                for raw in &left {
                    if let Some(run_id) = Task::parse_bytes(raw).ok().and_then(|t| t.run_id) {
                        let _ = store::requeue_run(
                            &self.services.db,
                            &run_id,
                            None,
                            "requeued at worker shutdown",
                        )
                        .await;
                    }
                }
                match queue.requeue_inflight(self.id()).await {
                    Ok(moved) if moved > 0 => info!(requeued = moved, "requeued unfinished tasks"),
                    Ok(_) => {}
                    Err(err) => error!(
                        error = format!("{err:#}"),
                        "could not requeue unfinished tasks"
                    ),
                }
            }
            Err(err) => error!(
                error = format!("{err:#}"),
                "could not read in-flight tasks at shutdown"
            ),
        }
    }

    async fn heartbeat(self: Arc<Self>, shutdown: CancellationToken) {
        let every = self.settings.heartbeat_ttl / 3;
        let mut failing = false;
        loop {
            match self
                .services
                .queue
                .heartbeat(self.id(), self.settings.heartbeat_ttl)
                .await
            {
                Ok(()) if std::mem::take(&mut failing) => info!("heartbeat restored"),
                Ok(()) => {}
                Err(err) if !std::mem::replace(&mut failing, true) => {
                    warn!(error = format!("{err:#}"), "heartbeat failed; retrying");
                }
                Err(_) => {}
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// Moves due retries to the queue every PROMOTE_EVERY, until shutdown.
    async fn promote_retries(self: Arc<Self>, shutdown: CancellationToken) {
        let mut failing = false;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(PROMOTE_EVERY) => {}
            }
            match self.services.queue.promote_due().await {
                Ok(moved) => {
                    failing = false;
                    if moved > 0 {
                        info!(moved, "due retries moved to the queue");
                    }
                }
                // The dequeue loop reports Redis outages; one line here is enough.
                Err(err) if !std::mem::replace(&mut failing, true) => {
                    warn!(error = format!("{err:#}"), "could not promote due retries");
                }
                Err(_) => {}
            }
        }
    }

    /// Processes a message; if that fails, gives the task back through the delayed set so it
    /// runs again, instead of leaving it in the in-flight list of a worker that is alive and
    /// will never look at it again. An outage (PostgreSQL or Redis unreachable mid-way) is not
    /// the task's fault and is not counted; any other failure counts against the task, which
    /// is dead-lettered with the reason after MAX_DELIVERIES of them, so a task that can never
    /// be processed does not go round forever. Until Redis takes it back, it stays in flight
    /// (requeued at shutdown).
    async fn process_or_give_back(&self, raw: RawTask, task: Result<Task, TaskError>) {
        let mut in_flight = raw.clone();
        let task_key = match &task {
            Ok(Task {
                task_id: Some(id), ..
            }) => id.as_bytes().to_vec(),
            _ => raw.clone(),
        };
        let Err(err) = self.process_tracked(raw, task, &mut in_flight).await else {
            if self.giving_back.swap(false, Ordering::Relaxed) {
                info!("tasks are processed again");
            }
            return;
        };
        let outage = err.is_outage();
        if !outage {
            warn!(
                error = format!("{err:#}"),
                event = "given_back",
                "task could not be processed; it counts towards MAX_DELIVERIES"
            );
        } else if !self.giving_back.swap(true, Ordering::Relaxed) {
            error!(
                error = format!("{err:#}"),
                retry_in_ms = GIVE_BACK_DELAY.as_millis() as u64,
                "task could not be processed; giving it back (logged once until tasks go through again)"
            );
        }
        let reason = format!(
            "could not be processed {} times: {}",
            self.services.max_deliveries,
            queue_core::cause_chain(&err)
        );
        let mut backoff = Duration::from_millis(250);
        loop {
            let queue = &self.services.queue;
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
                    if let Ok(task) = Task::parse_bytes(&in_flight)
                        && let Some(run_id) = task.run_id
                    {
                        let _ = queue_core::fail_run(&self.services, &run_id, &reason).await;
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

    /// Processes one dequeued message to a terminal state: acked with its run's result, or
    /// dead-lettered with the reason. An `Err` leaves the message in flight.
    pub async fn process(&self, raw: RawTask) -> Result<Processed, WorkerError> {
        let mut in_flight = raw.clone();
        let task = Task::parse_bytes(&raw);
        self.process_tracked(raw, task, &mut in_flight).await
    }

    /// `process` of `raw`, already parsed as `task`, keeping `in_flight` equal to the message as
    /// it stands in the in-flight list (a hand-written task is rewritten with its ids).
    async fn process_tracked(
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
        let site = match store::get_site(&self.services.db, &task.site_name).await? {
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
            if !matches!(status.as_str(), "queued" | "running") {
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
        site: &store::SiteSchedule,
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
    ) -> Result<(Task, RawTask, String, chrono::DateTime<chrono::Utc>), WorkerError> {
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
                task.apply_defaults(spec.defaults());
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
                (RunStatus::Queued.as_str().to_owned(), chrono::Utc::now())
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
