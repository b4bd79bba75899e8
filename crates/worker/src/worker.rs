//! The worker: a registry of kinds and a loop. It takes tasks from the queues it serves (by
//! weight or in strict order, each queue within its cap), runs them, and acks or dead-letters
//! each.
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use queue_core::{Consumer, Services, Taken};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};
use trawl_scrape::BrowserSlots;
use trawl_tasks::{Lifecycle, Registry};

use crate::{Outcome, WorkerError, WorkerSettings};

/// How long a paused queue is passed over before it is asked again.
const PAUSE_CHECK: Duration = Duration::from_secs(1);
/// How long a queue found empty is passed over when the worker serves several (one serving a
/// single queue waits for it in BLMOVE instead).
const EMPTY_POLL: Duration = Duration::from_millis(50);
/// How often each worker moves due retries from the delayed set to the queue (any number of
/// workers may do it at once; the script moves each task once).
const PROMOTE_EVERY: Duration = Duration::from_secs(1);
/// How long the background tasks get to stop at the end of `run` (a slot release or the last
/// acks may need a round trip) before the worker stops without them.
const BACKGROUND_JOIN: Duration = Duration::from_secs(5);
/// Longest a busy worker waits for more of its slots to free before it takes tasks for the
/// few that are (see `take_until`).
const LINGER: Duration = Duration::from_millis(2);
/// Longest pause between dequeue attempts while Redis is unreachable.
pub(crate) const MAX_FETCH_BACKOFF: Duration = Duration::from_secs(10);

mod audit;
mod batch;
mod give_back;
mod locks;
mod measure;
mod outage;
mod process;
mod queues;
mod recovered;
mod upkeep;

use queues::{Picker, Served};

pub struct Worker {
    services: Services,
    settings: WorkerSettings,
    /// The kinds this worker runs.
    registry: Registry,
    /// The queues it serves, in WORKER_QUEUES order.
    served: Vec<Served>,
    /// Runs each attempt and records how it ended.
    lifecycle: Lifecycle,
    /// Set while tasks cannot be processed (a dependency is down), so the outage is logged
    /// once, not once per task given back.
    giving_back: AtomicBool,
    /// Set while this worker holds a task recovered from a crashed worker (see `recovered`).
    holds_recovered: AtomicBool,
    /// Owns every background task (heartbeat, promoter, ack batchers, browser reaper, slot
    /// renewers); joined at the end of `run`.
    background: TaskTracker,
    /// Cancelled once the drain is over: stops the background tasks that must outlive
    /// `shutdown` (the heartbeat, the ack batchers).
    background_stop: CancellationToken,
}

impl Worker {
    /// A worker running trawl's kinds (`kinds::registry`). `slots` caps browsers across all
    /// workers (BROWSER_GLOBAL_SLOTS); None: no global cap.
    ///
    /// `background` owns the worker's background tasks; pass the same tracker to the
    /// `SlotSemaphore` behind `slots`, so its renewers are joined with the rest.
    pub fn new(
        services: Services,
        settings: WorkerSettings,
        slots: Option<Arc<dyn BrowserSlots>>,
        background: TaskTracker,
    ) -> Result<Arc<Self>, String> {
        let registry = crate::kinds::registry(&services, &settings, slots, &background)
            .map_err(|err| trawl_scrape::error_chain(&err))?;
        Self::with_registry(services, settings, registry, background)
    }

    /// A worker running the kinds in `registry` (tests register kinds of their own). Refuses a
    /// WORKER_QUEUES naming a queue none of its kinds uses.
    pub fn with_registry(
        services: Services,
        settings: WorkerSettings,
        registry: Registry,
        background: TaskTracker,
    ) -> Result<Arc<Self>, String> {
        let served = queues::served_queues(&services, &settings, &registry.queues())?;
        let background_stop = CancellationToken::new();
        let lifecycle = Lifecycle {
            services: services.clone(),
            retry_base: Some(settings.run_retry_base),
            ledger: Some(queue_core::store::LedgerBatcher::new(
                services.db.clone(),
                settings.concurrency,
                background.clone(),
                background_stop.clone(),
            )),
        };
        Ok(Arc::new(Self {
            services,
            settings,
            registry,
            served,
            lifecycle,
            giving_back: AtomicBool::new(false),
            holds_recovered: AtomicBool::new(false),
            background,
            background_stop,
        }))
    }

    pub fn id(&self) -> &str {
        &self.settings.worker_id
    }

    /// The queues this worker serves, in order.
    pub fn queues(&self) -> Vec<&str> {
        self.served.iter().map(Served::name).collect()
    }

    /// Background tasks still running (none once `run` has returned).
    pub fn background_tasks(&self) -> usize {
        self.background.len()
    }

    /// A consumer of the first queue this worker serves (the one `run_once` takes from).
    pub fn consumer(&self) -> Consumer {
        self.consumer_of(&self.served[0])
    }

    fn consumer_of(&self, served: &Served) -> Consumer {
        served.queue.consumer(
            &self.services.redis_url,
            &self.settings.worker_id,
            self.settings.block_for,
        )
    }

    /// Takes at most one task from the first served queue and processes it to the end (the
    /// step tests drive; the loop calls the same `process_or_give_back` path).
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
        info!(worker_id = %self.id(), concurrency = self.settings.concurrency,
            queues = ?self.queues(), strict = self.settings.strict_order, "worker started");
        // Registered before the first dequeue, so the reconciler's snapshot always knows whose
        // in-flight list a task may be in, and recovery reaches every queue served.
        if let Err(err) = self.beat().await {
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
        self.background
            .spawn(self.clone().audit_in_flight(shutdown.clone()));
        let running = self.clone().take_until(shutdown).await;
        self.drain(running).await;
        self.registry.close().await;
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
        for served in &self.served {
            if let Err(err) = served.queue.deregister(self.id()).await {
                warn!(error = format!("{err:#}"), "could not deregister worker");
            }
        }
        info!(worker_id = %self.id(), "worker stopped");
    }

    /// The dequeue loop: every free slot goes to the queue the picker names, and every slot
    /// given to one queue takes its task in the same round trip. Returns the running tasks.
    async fn take_until(self: Arc<Self>, shutdown: CancellationToken) -> JoinSet<()> {
        let concurrency = self.settings.concurrency.max(1);
        let slots = Arc::new(Semaphore::new(concurrency));
        let mut consumers: Vec<Consumer> =
            self.served.iter().map(|s| self.consumer_of(s)).collect();
        let mut picker = Picker::new(&self.served, self.settings.strict_order);
        // One queue: wait for it in BLMOVE. Several: poll each, passing over the empty ones.
        let blocking = self.served.len() == 1;
        let mut running = JoinSet::new();
        let mut backoff = Duration::ZERO;
        let mut outage = outage::Outage::default();
        loop {
            // Safe to cancel: waiting for a free slot holds nothing.
            let slot = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                slot = slots.clone().acquire_owned() => slot.expect("semaphore is never closed"),
            };
            let mut free = vec![slot];
            while let Ok(more) = slots.clone().try_acquire_owned() {
                free.push(more);
            }
            // A busy worker whose tasks end one by one would take them back one by one: a
            // round trip and a ledger write each. Below a quarter of its slots free, it waits up
            // to LINGER for more to free, so what it takes shares one dequeue and one start.
            // (An idle worker takes at once.)
            let linger_until = tokio::time::Instant::now() + LINGER;
            while free.len() * 4 < concurrency {
                let more = tokio::select! {
                    biased;
                    () = shutdown.cancelled() => break,
                    more = tokio::time::timeout_at(linger_until, slots.clone().acquire_owned()) => more,
                };
                let Ok(more) = more else { break };
                free.push(more.expect("semaphore is never closed"));
                while let Ok(more) = slots.clone().try_acquire_owned() {
                    free.push(more);
                }
            }
            // Each free slot to a queue (with a permit of that queue's cap).
            let mut given: Vec<Vec<_>> = self.served.iter().map(|_| Vec::new()).collect();
            for slot in free {
                let Some((queue, cap)) = picker.pick(&self.served) else {
                    break;
                };
                given[queue].push((slot, cap));
            }
            if given.iter().all(Vec::is_empty) {
                // Every queue is passed over (empty, paused) or at its cap.
                let until = picker
                    .next_unskip()
                    .unwrap_or_else(|| tokio::time::Instant::now() + EMPTY_POLL);
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep_until(until) => continue,
                }
            }
            let mut failed = None;
            for (index, slots_given) in given.into_iter().enumerate() {
                if slots_given.is_empty() {
                    continue;
                }
                let consumer = &mut consumers[index];
                // Cancel safety: tasks moved by a dequeue whose reply is dropped stay in our
                // in-flight list, and the requeue at shutdown gives them back.
                let taken = tokio::select! {
                    biased;
                    () = shutdown.cancelled() => break,
                    taken = async {
                        if blocking {
                            consumer.next_batch(slots_given.len()).await
                        } else {
                            consumer.take_now(slots_given.len()).await
                        }
                    } => taken,
                };
                let now = tokio::time::Instant::now();
                match taken {
                    Ok(Taken::Paused) => picker.skip(index, now + PAUSE_CHECK),
                    Ok(Taken::Tasks(tasks)) => {
                        if tasks.is_empty() && !blocking {
                            picker.skip(index, now + EMPTY_POLL);
                        }
                        for (taken, held) in self.batch(tasks).into_iter().zip(slots_given) {
                            self.spawn_task(&mut running, &slots, index, taken, held);
                        }
                    }
                    Err(err) => failed = Some(err),
                }
            }
            match failed {
                None => backoff = Duration::ZERO,
                Some(err) => {
                    if outage.failed(tokio::time::Instant::now()) {
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
        running
    }

    /// Runs one taken task in the background, holding its slot and its queue's permit.
    fn spawn_task(
        self: &Arc<Self>,
        running: &mut JoinSet<()>,
        slots: &Arc<Semaphore>,
        queue: usize,
        taken: batch::InBatch,
        held: recovered::Held,
    ) {
        let worker = self.clone();
        let batch::InBatch { raw, task, batched } = taken;
        let recovered = task.as_ref().ok().and_then(|task| task.recovered);
        match recovered {
            None => {
                // Boxed here, once: the task's future is some 11 KB, and spawning it unboxed
                // copied it several times on its way into tokio's task cell (memmove was 3.9% of
                // the machine's CPU in `perf record -a` over `trawl-bench lifecycle`, 2.1% boxed).
                running.spawn(Box::pin(async move {
                    let _held = held;
                    let found = match &batched {
                        Some(batched) => worker.taken_run(batched).await,
                        None => None,
                    };
                    let entry = batch::Entry::Ordinary(found);
                    worker.process_or_give_back(queue, raw, task, entry).await;
                }));
            }
            Some(recovered) => {
                running.spawn(worker.run_recovered(
                    slots.clone(),
                    queue,
                    raw,
                    task,
                    recovered,
                    held,
                ));
            }
        }
    }
}
