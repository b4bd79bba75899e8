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
        let task = match Task::parse(&entry.task) {
            Ok(mut task) => {
                task.run_id = None;
                task.task_id = None;
                task.trigger = Some(crate::Trigger::Manual);
                task.enqueued_at = Some(Utc::now());
                task.recovered = None;
                task.to_json()
            }
            Err(_) => entry.task,
        };
        Ok(self.take_dead_letter(&stored, &task).await?.then_some(task))
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
            .arg(stored)
            .arg(requeue)
            .invoke_async(&mut conn)
            .await?;
        Ok(taken == 1)
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
