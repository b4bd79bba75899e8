//! Starting a manual run: take the site's lock, record the `queued` run, enqueue its task.
//! The API (async and sync mode) and the CLI go through here; the scheduler does the same with
//! its compare-and-set on the schedule. And ending a run from outside its attempt
//! (`fail_run`): recovery, the reconciler, a cancel, a task that cannot start.
use crate::store::{self, NewRun, RunStatus};
use crate::{QueueError, Services, StoreError, Task};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    #[error("site {site} is being scraped by run {holder}; try again when it ends")]
    SiteBusy { site: String, holder: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Takes the lock of the task's site for `task.run_id` and records the run as `queued`, linked
/// to the site's row `site_schedule_id`. On any failure the lock is given back.
pub async fn reserve_run(
    services: &Services,
    site_schedule_id: uuid::Uuid,
    task: &Task,
) -> Result<(), SubmitError> {
    let site_name = &task.site_name;
    let run_id = task
        .run_id
        .as_deref()
        .expect("submitted tasks carry a run_id");
    let locks = &services.locks;
    if !locks.acquire(site_name, run_id, services.lock_ttl).await? {
        let holder = locks.holder(site_name).await?.unwrap_or_default();
        return Err(SubmitError::SiteBusy {
            site: site_name.clone(),
            holder,
        });
    }
    let run = NewRun {
        run_id,
        site_name,
        site_schedule_id: Some(site_schedule_id),
        task_id: task.task_id.as_deref().unwrap_or_default(),
        trigger: task.trigger.unwrap_or(crate::Trigger::Manual),
        search_term: task.search_term.as_deref(),
        location: task.location.as_deref(),
        results_wanted: task.results_wanted,
    };
    if let Err(err) = store::create_run(&services.db, &run).await {
        locks.release(site_name, run_id).await?;
        return Err(err.into());
    }
    Ok(())
}

/// Reserves the run and enqueues its task. If the enqueue fails the run is failed with the
/// reason and the lock released: nothing is left `queued` without a task.
pub async fn submit_run(
    services: &Services,
    site_schedule_id: uuid::Uuid,
    task: &Task,
) -> Result<(), SubmitError> {
    reserve_run(services, site_schedule_id, task).await?;
    if let Err(err) = services.queue.enqueue(task).await {
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

/// Fails a run that has not ended, with the reason, and releases its site's lock: every way a
/// run ends gives the lock back (a worker ending its own attempt releases it itself), so no
/// site answers "busy" for a run that is over. Counts come from the run's links. Returns false
/// if the run had already ended.
pub async fn fail_run(
    services: &Services,
    run_id: &str,
    message: &str,
) -> Result<bool, SubmitError> {
    let Some(site) = store::fail_run(&services.db, run_id, message).await? else {
        return Ok(false);
    };
    services.locks.release(&site, run_id).await?;
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

/// Cancels a queued or running run.
pub async fn cancel_run(services: &Services, run_id: &str) -> Result<Cancelled, SubmitError> {
    let Some(run) = store::get_run(&services.db, run_id).await? else {
        return Ok(Cancelled::NoSuchRun);
    };
    match run.status {
        RunStatus::Queued => {
            // The task stays queued; the worker that takes it sees the run ended and skips it.
            if fail_run(
                services,
                run_id,
                "cancelled by an operator before it started",
            )
            .await?
            {
                return Ok(Cancelled::BeforeStart);
            }
            // It started meanwhile: ask its worker instead.
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
