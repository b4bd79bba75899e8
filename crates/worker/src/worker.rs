//! The worker: takes tasks from the queue, runs them, and acks or dead-letters each.
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use queue_core::RedisPacer;
use queue_core::store;
use queue_core::{AckBatcher, Consumer, Services, Taken, Task};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};
use trawl_scrape::{BrowserPool, BrowserSlots, DomainLimits, DomainPacer, Fetchers, HttpFetcher};
use trawl_scrape_runs::RedisDomainPacer;

use crate::{Executor, Outcome, WorkerError, WorkerSettings};

/// How often the worker reads whether the queue is paused: a pause takes effect within this.
const PAUSE_CHECK: Duration = Duration::from_secs(1);
/// How often each worker moves due retries from the delayed set to the queue (any number of
/// workers may do it at once; the script moves each task once).
const PROMOTE_EVERY: Duration = Duration::from_secs(1);
/// How long the background tasks get to stop at the end of `run` (a slot release or the last
/// acks may need a round trip) before the worker stops without them.
const BACKGROUND_JOIN: Duration = Duration::from_secs(5);
/// Longest pause between dequeue attempts while Redis is unreachable.
pub(crate) const MAX_FETCH_BACKOFF: Duration = Duration::from_secs(10);

mod give_back;
mod process;

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
                Arc::new(RedisDomainPacer(RedisPacer::new(
                    services.redis.clone(),
                    services.keys().clone(),
                    interval,
                ))) as Arc<dyn DomainPacer>
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
}
