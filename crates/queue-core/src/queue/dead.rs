//! The dead-letter list: tasks that cannot be run, kept with the reason, to list, retry or
//! delete.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Queue, RawTask};
use crate::scripts::{DEAD_LETTER, DEAD_TAKE};
use crate::{QueueError, Task};

/// One entry of the dead-letter list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct DeadLetter {
    /// Names the entry for retry and delete.
    pub id: String,
    /// The message as it was in the queue (it may not even be JSON; bytes that are not UTF-8
    /// are shown as U+FFFD).
    pub task: String,
    pub reason: String,
    pub failed_at: DateTime<Utc>,
    pub worker_id: String,
}

impl Queue {
    /// Moves an in-flight message to the dead-letter list with the reason.
    pub async fn dead_letter(
        &self,
        worker_id: &str,
        raw: &[u8],
        reason: &str,
    ) -> Result<u64, QueueError> {
        let entry = dead_letter_entry(worker_id, raw, reason);
        let mut conn = self.pool.get().await?;
        Ok(DEAD_LETTER
            .key(self.keys.inflight(worker_id))
            .key(self.keys.dead())
            .arg(raw)
            .arg(entry)
            .arg(self.dead_letter_cap)
            .invoke_async(&mut conn)
            .await?)
    }

    /// Newest dead letters first.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let mut conn = self.pool.get().await?;
        // Bytes: recovery writes entries holding the message as it was, UTF-8 or not.
        let raw: Vec<RawTask> = redis::cmd("LRANGE")
            .arg(self.keys.dead())
            .arg(0)
            .arg(limit.saturating_sub(1))
            .query_async(&mut conn)
            .await?;
        Ok(raw
            .iter()
            .filter_map(|entry| serde_json::from_str(&String::from_utf8_lossy(entry)).ok())
            .collect())
    }

    /// Removes a dead letter and queues its task again. A task that parses is queued as a fresh
    /// manual run (its old run ended failed and stays as the record of what happened); one that
    /// does not is queued as it was, to be judged again. Returns the task queued, or None if
    /// there is no such entry.
    pub async fn retry_dead_letter(&self, id: &str) -> Result<Option<String>, QueueError> {
        let Some((stored, entry)) = self.find_dead_letter(id).await? else {
            return Ok(None);
        };
        let task = requeued_task(entry);
        Ok(self.take_dead_letter(&stored, &task).await?.then_some(task))
    }

    /// Queues again every task on the dead-letter list when the call began, oldest first, as
    /// `retry_dead_letter` queues one (Sidekiq's "Retry All", `rq requeue --all`). A letter
    /// that dies again while the sweep runs goes back on the list and waits for the next sweep,
    /// so the sweep always ends.
    pub async fn retry_all_dead_letters(&self) -> Result<Swept, QueueError> {
        self.sweep(true).await
    }

    /// Drops every entry on the dead-letter list when the call began.
    pub async fn delete_all_dead_letters(&self) -> Result<Swept, QueueError> {
        self.sweep(false).await
    }

    /// Takes the list's entries from its tail (the oldest) in batches, each batch one script
    /// call, up to as many entries as the list held at the start. Entries another operator took
    /// meanwhile are skipped; entries that are not dead letters trawl wrote are left in place
    /// when retrying (there is no task to queue) and dropped when deleting.
    async fn sweep(&self, retry: bool) -> Result<Swept, QueueError> {
        let mut conn = self.pool.get().await?;
        let listed: u64 = redis::cmd("LLEN")
            .arg(self.keys.dead())
            .query_async(&mut conn)
            .await?;
        let mut swept = Swept::default();
        let mut looked_at = 0;
        let mut kept_at_tail: u64 = 0;
        while looked_at < listed {
            let want = (listed - looked_at).min(SWEEP_BATCH);
            // Entries left in place stay at the tail: read the batch just above them.
            let last = -1 - kept_at_tail as i64;
            let batch: Vec<RawTask> = redis::cmd("LRANGE")
                .arg(self.keys.dead())
                .arg(last - want as i64 + 1)
                .arg(last)
                .query_async(&mut conn)
                .await?;
            if batch.is_empty() {
                break;
            }
            looked_at += batch.len() as u64;
            let mut call = DEAD_TAKE.key(self.keys.dead());
            call.key(self.keys.pending()).arg(-1);
            let mut asked = 0;
            // Oldest first, so the tasks go back in the order they died.
            for stored in batch.iter().rev() {
                let entry = serde_json::from_str::<DeadLetter>(&String::from_utf8_lossy(stored));
                let requeue = match (retry, entry) {
                    (false, _) => String::new(),
                    (true, Ok(entry)) => requeued_task(entry),
                    (true, Err(_)) => {
                        swept.skipped += 1;
                        kept_at_tail += 1;
                        continue;
                    }
                };
                call.arg(stored.as_slice()).arg(requeue);
                asked += 1;
            }
            if asked > 0 {
                let taken: u64 = call.invoke_async(&mut conn).await?;
                swept.taken += taken;
            }
        }
        Ok(swept)
    }

    /// Deletes a dead letter. Returns whether it existed.
    pub async fn delete_dead_letter(&self, id: &str) -> Result<bool, QueueError> {
        match self.find_dead_letter(id).await? {
            Some((stored, _)) => self.take_dead_letter(&stored, "").await,
            None => Ok(false),
        }
    }

    async fn find_dead_letter(
        &self,
        id: &str,
    ) -> Result<Option<(RawTask, DeadLetter)>, QueueError> {
        let mut conn = self.pool.get().await?;
        let raw: Vec<RawTask> = redis::cmd("LRANGE")
            .arg(self.keys.dead())
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await?;
        Ok(raw.into_iter().find_map(|stored| {
            let entry: DeadLetter = serde_json::from_str(&String::from_utf8_lossy(&stored)).ok()?;
            (entry.id == id).then_some((stored, entry))
        }))
    }

    async fn take_dead_letter(&self, stored: &[u8], requeue: &str) -> Result<bool, QueueError> {
        let mut conn = self.pool.get().await?;
        let taken: i64 = DEAD_TAKE
            .key(self.keys.dead())
            .key(self.keys.pending())
            .arg(1)
            .arg(stored)
            .arg(requeue)
            .invoke_async(&mut conn)
            .await?;
        Ok(taken == 1)
    }
}

/// Most entries one script call of a sweep takes: each is an LREM from the tail, so a batch
/// is short work for Redis, and other clients get a turn between batches.
const SWEEP_BATCH: u64 = 100;

/// What a sweep of the dead-letter list did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Swept {
    /// Entries taken off the list: their tasks queued again (retry) or dropped (delete).
    pub taken: u64,
    /// Entries a retry left on the list: not a dead letter trawl wrote (something else pushed
    /// them), so there is no task to queue; a delete drops them.
    pub skipped: u64,
}

/// The message a retried dead letter goes back as. A task that parses becomes a fresh manual
/// run; one that does not goes back as it was, to be judged again.
fn requeued_task(entry: DeadLetter) -> String {
    match Task::parse(&entry.task) {
        Ok(mut task) => {
            task.run_id = None;
            task.task_id = None;
            task.trigger = Some(crate::Trigger::Manual);
            task.enqueued_at = Some(Utc::now());
            task.recovered = None;
            task.to_json()
        }
        Err(_) => entry.task,
    }
}

/// A dead-letter entry's JSON: the message (shown as text), why, when and by whom.
pub(super) fn dead_letter_entry(worker_id: &str, raw: &[u8], reason: &str) -> String {
    let entry = DeadLetter {
        id: format!("dl_{}", uuid::Uuid::new_v4().simple()),
        task: String::from_utf8_lossy(raw).into_owned(),
        reason: reason.to_owned(),
        failed_at: Utc::now(),
        worker_id: worker_id.to_owned(),
    };
    serde_json::to_string(&entry).expect("dead letter serializes")
}
