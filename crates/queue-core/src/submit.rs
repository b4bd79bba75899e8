//! Starting a run of any kind: take its run lock, record the `queued` run, enqueue its task.
//! The API (async and sync mode), the CLI and the scheduler go through here. And ending a run
//! from outside its attempt (`fail_run`): recovery, the reconciler, a cancel, a task that
//! cannot start.
use crate::store::{self, NewRun, RunStatus};
use crate::{QueueError, Services, StoreError, Task};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// Another active run holds the run lock this one needs (a scrape: its site's).
    #[error("{lock_key} is held by run {holder}; try again when it ends")]
    Busy { lock_key: String, holder: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// What a task's kind decides for its run before it is recorded: the queue it goes to, the run
/// lock it holds while active, and how often a transient failure is retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub queue: String,
    pub lock_key: Option<String>,
    pub max_retries: u32,
}

/// The ledger row for `task` as `plan` says. The task carries its kind and ids (as
/// `Task::new` makes them).
pub fn new_run<'a>(task: &'a Task, plan: &'a Plan) -> NewRun<'a> {
    NewRun {
        run_id: task
            .run_id
            .as_deref()
            .expect("submitted tasks carry a run_id"),
        kind: task.kind.as_deref().expect("submitted tasks carry a kind"),
        queue: &plan.queue,
        task_id: task.task_id.as_deref().unwrap_or_default(),
        trigger: task.trigger.unwrap_or(crate::Trigger::Manual),
        payload: &task.payload,
        lock_key: plan.lock_key.as_deref(),
        max_retries: plan.max_retries,
    }
}

/// A lock whose holder has no ledger row this long after it was taken was left by a submitter
/// that died between taking it and recording its run (a scheduler killed mid-pass); it would
/// otherwise keep its site or recurring task idle until its TTL (JOB_TIMEOUT + 60 s).
pub const ORPHAN_LOCK_AGE: std::time::Duration = std::time::Duration::from_secs(10);

/// Takes the run lock `key` for a new run `run_id`. Returns the holder when another run holds
/// it. A lock left behind is released and taken: one whose run has ended (a copy of the run
/// claimed it again and lost its connection before it could let go, and nothing redelivers
/// that copy), or one whose run was never recorded (older than ORPHAN_LOCK_AGE). An ended run
/// never runs again, so its lock protects nothing.
pub async fn take_run_lock(
    services: &Services,
    key: &str,
    run_id: &str,
) -> Result<Option<String>, SubmitError> {
    take_lock(services, key, run_id, false).await
}

/// `take_run_lock` for a worker about to start `run_id`, which may hold the lock already (taken
/// when the run was submitted, or by an earlier delivery of its task): kept then. A lock whose
/// run has ended is released and taken; one whose holder was never recorded is left to the
/// next submit.
pub async fn claim_run_lock(
    services: &Services,
    key: &str,
    run_id: &str,
) -> Result<Option<String>, SubmitError> {
    take_lock(services, key, run_id, true).await
}

async fn take_lock(
    services: &Services,
    key: &str,
    run_id: &str,
    ours_already: bool,
) -> Result<Option<String>, SubmitError> {
    let locks = &services.locks;
    for _ in 0..2 {
        let taken = match ours_already {
            true => locks.claim(key, run_id, services.lock_ttl).await?,
            false => locks.acquire(key, run_id, services.lock_ttl).await?,
        };
        if taken {
            return Ok(None);
        }
        let Some(holder) = locks.holder(key).await? else {
            continue; // released meanwhile
        };
        let left_behind = match store::get_run(&services.db, &holder).await? {
            Some(run) if run.status.is_terminal() => "whose run has ended",
            Some(_) => return Ok(Some(holder)),
            // A holder never recorded is judged by submitters only: the lock's age is read
            // from its TTL, as a submitter sets it.
            None if ours_already => return Ok(Some(holder)),
            None => {
                let left = locks.remaining(key).await?.unwrap_or(services.lock_ttl);
                if services.lock_ttl.saturating_sub(left) < ORPHAN_LOCK_AGE {
                    return Ok(Some(holder));
                }
                "whose run was never recorded"
            }
        };
        tracing::warn!(lock = key, holder = %holder, "lock held by a run {left_behind}; released");
        locks.release(key, &holder).await?;
    }
    Ok(Some(locks.holder(key).await?.unwrap_or_default()))
}

/// Takes the run lock the plan names (if any) for `task.run_id` and records the run as
/// `queued`. On any failure the lock is given back.
pub async fn reserve_run(services: &Services, task: &Task, plan: &Plan) -> Result<(), SubmitError> {
    let run = new_run(task, plan);
    let locks = &services.locks;
    if let Some(key) = run.lock_key
        && let Some(holder) = take_run_lock(services, key, run.run_id).await?
    {
        return Err(SubmitError::Busy {
            lock_key: key.to_owned(),
            holder,
        });
    }
    if let Err(err) = store::create_run(&services.db, &run).await {
        if let Some(key) = run.lock_key {
            locks.release(key, run.run_id).await?;
        }
        return Err(err.into());
    }
    Ok(())
}

/// Reserves the run and enqueues its task. If the enqueue fails the run is failed with the
/// reason and the lock released: nothing is left `queued` without a task.
pub async fn submit_run(services: &Services, task: &Task, plan: &Plan) -> Result<(), SubmitError> {
    reserve_run(services, task, plan).await?;
    enqueue_or_fail(services, &plan.queue, task).await
}

/// Enqueues the task of a recorded run on `queue`; if that fails, fails the run with the
/// reason (and releases its lock), so no run is left `queued` without a task.
pub async fn enqueue_or_fail(
    services: &Services,
    queue: &str,
    task: &Task,
) -> Result<(), SubmitError> {
    // The home queue is always known: only another queue costs the extra round trip.
    let home = queue == services.queue.keys().queue_name();
    let registered = if home {
        Ok(())
    } else {
        services.register_queues(&[queue]).await
    };
    let enqueued = match registered {
        Ok(()) => services.queue_named(queue).enqueue(task).await,
        Err(err) => Err(err),
    };
    if let Err(err) = enqueued {
        let run_id = task.run_id.as_deref().unwrap_or_default();
        fail_run(
            services,
            run_id,
            &format!("could not enqueue the task: {err}"),
        )
        .await?;
        return Err(err.into());
    }
    Ok(())
}

/// Enqueues the tasks of recorded runs on `queue` in one round trip (a kind that records many
/// runs in one transaction, e.g. a career page's detail runs); if that fails, fails every one
/// of those runs with the reason, so none is left `queued` without a task.
pub async fn enqueue_all_or_fail(
    services: &Services,
    queue: &str,
    tasks: &[Task],
) -> Result<(), SubmitError> {
    if tasks.is_empty() {
        return Ok(());
    }
    let enqueued = match services.register_queues(&[queue]).await {
        Ok(()) => services.queue_named(queue).enqueue_many(tasks).await,
        Err(err) => Err(err),
    };
    if let Err(err) = enqueued {
        let message = format!("could not enqueue the task: {err}");
        for task in tasks {
            fail_run(
                services,
                task.run_id.as_deref().unwrap_or_default(),
                &message,
            )
            .await?;
        }
        return Err(err.into());
    }
    Ok(())
}

/// Fails a run that has not ended, with the reason, and releases its run lock: every way a run
/// ends gives the lock back (a worker ending its own attempt releases it itself), so no site
/// answers "busy" for a run that is over. Returns false if the run had already ended.
pub async fn fail_run(
    services: &Services,
    run_id: &str,
    message: &str,
) -> Result<bool, SubmitError> {
    let failed = store::fail_run(&services.db, run_id, message).await?;
    release_lock_of(services, run_id, failed).await
}

/// `fail_run` that waits at most `wait` for the run's row when another session holds it (a
/// worker cut off mid-write holds it until PostgreSQL ends its session): then
/// `StoreError::RowHeld`, nothing changed.
pub async fn fail_run_unless_held(
    services: &Services,
    run_id: &str,
    message: &str,
    wait: std::time::Duration,
) -> Result<bool, SubmitError> {
    let failed = store::fail_run_unless_held(&services.db, run_id, message, wait).await?;
    release_lock_of(services, run_id, failed).await
}

/// Releases the lock of a run just failed; false if it had already ended.
async fn release_lock_of(
    services: &Services,
    run_id: &str,
    failed: Option<store::Failed>,
) -> Result<bool, SubmitError> {
    let Some(failed) = failed else {
        return Ok(false);
    };
    if let Some(key) = &failed.lock_key {
        services.locks.release(key, run_id).await?;
    }
    Ok(true)
}

/// What a cancel did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancelled {
    /// The run had not started: it is failed now and its task will be skipped.
    BeforeStart,
    /// The run is running: its worker stops at the next page and fails it.
    Requested,
    /// The run had already ended with this status.
    AlreadyFinished(RunStatus),
    NoSuchRun,
}

/// Cancels a queued or running run. Never waits long on a session holding the run's row (a
/// worker cut off mid-write holds it until PostgreSQL ends that session): after
/// `store::HELD_ROW_WAIT` it asks the run's worker to stop it instead, as for a run that is
/// running — whoever starts the run next sees the request and stops it.
pub async fn cancel_run(services: &Services, run_id: &str) -> Result<Cancelled, SubmitError> {
    let Some(run) = store::get_run(&services.db, run_id).await? else {
        return Ok(Cancelled::NoSuchRun);
    };
    match run.status {
        RunStatus::Queued => {
            // The task stays queued; the worker that takes it sees the run ended and skips it.
            let failed = fail_run_unless_held(
                services,
                run_id,
                "cancelled by an operator before it started",
                store::HELD_ROW_WAIT,
            )
            .await;
            match failed {
                Ok(true) => return Ok(Cancelled::BeforeStart),
                // It started meanwhile, or someone else holds its row: ask its worker instead.
                Ok(false) => {}
                Err(SubmitError::Store(StoreError::RowHeld { .. })) => {
                    tracing::warn!(
                        run_id,
                        "cancel: the run's row is held by another session; asking its worker to stop it"
                    );
                }
                Err(err) => return Err(err),
            }
            services
                .queue
                .request_cancel(run_id, services.lock_ttl)
                .await?;
            Ok(Cancelled::Requested)
        }
        RunStatus::Running => {
            services
                .queue
                .request_cancel(run_id, services.lock_ttl)
                .await?;
            Ok(Cancelled::Requested)
        }
        status => Ok(Cancelled::AlreadyFinished(status)),
    }
}
