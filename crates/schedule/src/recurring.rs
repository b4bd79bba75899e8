//! Recurring work of any kind (`schedules`): each due one queues a run of its kind, behind a
//! lock of its own (`schedule:<name>`: one run of a recurring task at a time), the same way a
//! due site does.
use chrono::{DateTime, Utc};
use queue_core::store::{self, RecurringTask};
use queue_core::{Plan, Services, Task, Trigger};
use tracing::{info, warn};

use crate::pass::{PassError, PassStats};

/// Queues a run of every recurring task due at `now` (at most `batch`).
pub(crate) async fn fire_due(
    services: &Services,
    batch: i64,
    now: DateTime<Utc>,
    stats: &mut PassStats,
) -> Result<(), PassError> {
    let due = store::due_recurring(&services.db, batch, now).await?;
    stats.due += due.len() as u32;
    for recurring in &due {
        match fire(services, recurring, now).await {
            Ok(Fired::Enqueued(run_id)) => {
                stats.enqueued += 1;
                stats.run_ids.push(run_id);
            }
            Ok(Fired::Locked(holder)) => {
                info!(schedule = %recurring.name, held_by = %holder, event = "skipped", "still running; skipped");
                stats.skipped_locked += 1;
            }
            Ok(Fired::Claimed) => stats.skipped_claimed += 1,
            Err(err) => {
                warn!(schedule = %recurring.name, error = format!("{err:#}"), "could not queue the recurring task");
                stats.errors += 1;
            }
        }
    }
    Ok(())
}

enum Fired {
    Enqueued(String),
    Locked(String),
    Claimed,
}

async fn fire(
    services: &Services,
    recurring: &RecurringTask,
    now: DateTime<Utc>,
) -> Result<Fired, PassError> {
    let run_id = queue_core::new_run_id(Trigger::Schedule);
    let lock_key = format!("schedule:{}", recurring.name);
    let locks = &services.locks;
    if let Some(holder) = queue_core::take_run_lock(services, &lock_key, &run_id).await? {
        return Ok(Fired::Locked(holder));
    }
    let task = Task::new(
        &recurring.kind,
        recurring.payload(),
        run_id.clone(),
        Trigger::Schedule,
    );
    let plan = Plan {
        queue: recurring.queue.clone(),
        lock_key: Some(lock_key.clone()),
        max_retries: recurring.max_retries.max(0) as u32,
    };
    // From now, never from the fire that was due: missed fires are caught up once.
    let schedule = recurring.schedule();
    let next = match &schedule {
        Ok(schedule) => schedule.next_after(now, &mut rand::rng()),
        Err(_) => now + chrono::Duration::hours(1),
    };
    let run = queue_core::new_run(&task, &plan);
    let claimed = store::claim_fire(&services.db, recurring, &run, now, next).await;
    if !matches!(claimed, Ok(true)) {
        locks.release(&lock_key, &run_id).await?;
        return claimed.map(|_| Fired::Claimed).map_err(PassError::from);
    }
    // A schedule that went bad in the table still gets a run that says so.
    if let Err(err) = schedule {
        queue_core::fail_run(services, &run_id, &err.to_string()).await?;
        return Err(err.into());
    }
    queue_core::enqueue_or_fail(services, &plan.queue, &task).await?;
    info!(schedule = %recurring.name, kind = %recurring.kind, run_id = %run_id, event = "enqueued", status = "queued", "run queued");
    Ok(Fired::Enqueued(run_id))
}
