//! The reliable queue.
//!
//! Life of a task: a producer `LPUSH`es it to `pending`; a worker moves it atomically with
//! `BLMOVE` into its own `inflight:<worker>` list (so a crashed worker's task is still in Redis);
//! at the end the worker either acks it (`ack.lua`, one or several at once: remove from
//! in-flight, write the result summary) or dead-letters it (`dead_letter.lua`: remove, push to
//! `dead` with the reason), or, after a transient failure, parks it in `delayed` (`retry_later.lua`) until `promote.lua` moves
//! it back to `pending`. At shutdown whatever is left in flight goes back to `pending`
//! (`requeue.lua`).
use std::time::Duration;

use crate::RedisPool;
use serde::{Deserialize, Serialize};

use crate::scripts::{ACK, ADOPT, GIVE_BACK, PROMOTE, REQUEUE, RETRY_LATER, SNAPSHOT};
use crate::{Keys, QueueError, Task};

mod consumer;
mod controls;
mod dead;
mod history;
mod recovery;
mod sessions;
mod status;

pub use consumer::{Consumer, Taken};
use dead::dead_letter_entry;
pub use dead::{DeadLetter, Swept};
pub use recovery::{BLAME_WINDOW, Recovery};

/// Default cap on the dead-letter list; the oldest entries are trimmed beyond it (Sidekiq keeps
/// 10,000 dead jobs for the same reason: enough to investigate, bounded memory).
pub const DEFAULT_DEAD_LETTER_CAP: usize = 10_000;

/// Most delayed tasks one promote call moves, so one call never blocks Redis for long.
const PROMOTE_BATCH: u64 = 1_000;

/// A message as Redis holds it: bytes, not necessarily UTF-8 (a hand-written task can be
/// anything), so one bad message can neither fail the batch it came in nor stick in flight.
pub type RawTask = Vec<u8>;

/// What giving back an unprocessable task did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GivenBack {
    /// Waiting in the delayed set to run again.
    Delayed,
    /// It failed MAX_DELIVERIES times: in the dead-letter list with the reason.
    DeadLettered,
    /// It was no longer in flight (recovered elsewhere meanwhile).
    Gone,
}

#[derive(Clone)]
pub struct Queue {
    pool: RedisPool,
    keys: Keys,
    dead_letter_cap: usize,
    /// How long a finished task's summary stays readable under `result:<task_id>`.
    result_ttl: Duration,
}

/// Queue depth and workers, as `GET /jobs/queue/status` shows them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct QueueMetrics {
    pub queue: String,
    /// The Redis Cluster slot of the queue's keys (on a cluster, one master serves it).
    pub slot: u16,
    pub pending: u64,
    pub in_flight: u64,
    /// Waiting in the delayed set for a retry.
    pub delayed: u64,
    pub dead: u64,
    pub workers_alive: u64,
    pub workers: Vec<String>,
    /// Workers take no tasks while paused; producers still enqueue.
    pub paused: bool,
}

impl Queue {
    pub fn new(pool: RedisPool, keys: Keys, result_ttl: Duration) -> Self {
        Self {
            pool,
            keys,
            dead_letter_cap: DEFAULT_DEAD_LETTER_CAP,
            result_ttl,
        }
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub fn pool(&self) -> &RedisPool {
        &self.pool
    }

    pub async fn ping(&self) -> Result<(), QueueError> {
        let mut conn = self.pool.get().await?;
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    pub async fn enqueue(&self, task: &Task) -> Result<(), QueueError> {
        self.enqueue_raw(&task.to_json()).await
    }

    /// Enqueues many tasks in one round trip (one LPUSH with every message).
    pub async fn enqueue_many(&self, tasks: &[Task]) -> Result<(), QueueError> {
        if tasks.is_empty() {
            return Ok(());
        }
        let mut conn = self.pool.get().await?;
        let mut cmd = redis::cmd("LPUSH");
        cmd.arg(self.keys.pending());
        for task in tasks {
            cmd.arg(task.to_json());
        }
        let _: i64 = cmd.query_async(&mut conn).await?;
        Ok(())
    }

    /// Pushes a message as is, the way `redis-cli LPUSH` does.
    pub async fn enqueue_raw(&self, raw: &str) -> Result<(), QueueError> {
        let mut conn = self.pool.get().await?;
        let _: i64 = redis::cmd("LPUSH")
            .arg(self.keys.pending())
            .arg(raw)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// A consumer taking tasks for `worker_id` over a connection of its own.
    pub fn consumer(&self, redis_url: &str, worker_id: &str, block_for: Duration) -> Consumer {
        Consumer {
            redis_url: redis_url.to_owned(),
            pending: self.keys.pending(),
            inflight: self.keys.inflight(worker_id),
            paused: self.keys.paused(),
            block_for,
            conn: None,
        }
    }

    /// Marks a task done. Returns false if it was no longer in flight for this worker.
    pub async fn ack(
        &self,
        worker_id: &str,
        raw: &[u8],
        task_id: &str,
        summary: &serde_json::Value,
    ) -> Result<bool, QueueError> {
        let done = [(raw.to_vec(), task_id.to_owned(), summary.clone())];
        Ok(self.ack_many(worker_id, &done).await? == [true])
    }

    /// Acks several finished tasks of one worker in one round trip: `(task as dequeued, task
    /// id, summary)` each. Returns, for each, whether it was still in flight.
    pub async fn ack_many(
        &self,
        worker_id: &str,
        done: &[(RawTask, String, serde_json::Value)],
    ) -> Result<Vec<bool>, QueueError> {
        if done.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.get().await?;
        let mut invocation = ACK.key(self.keys.inflight(worker_id));
        invocation
            .key(self.keys.deliveries())
            .arg(self.result_ttl.as_secs().max(1));
        for (raw, task_id, summary) in done {
            invocation
                .key(self.keys.result(task_id))
                .arg(raw)
                .arg(summary.to_string())
                .arg(task_id);
        }
        let removed: Vec<i64> = invocation.invoke_async(&mut conn).await?;
        Ok(removed.into_iter().map(|n| n > 0).collect())
    }

    /// Rewrites an in-flight message as `completed` (same task, ids filled in). Returns false if
    /// the message was no longer in flight.
    pub async fn adopt(
        &self,
        worker_id: &str,
        raw: &[u8],
        completed: &str,
    ) -> Result<bool, QueueError> {
        let mut conn = self.pool.get().await?;
        let replaced: i64 = ADOPT
            .key(self.keys.inflight(worker_id))
            .arg(raw)
            .arg(completed)
            .invoke_async(&mut conn)
            .await?;
        Ok(replaced == 1)
    }

    /// Moves an in-flight task to the delayed set, due after `delay` (Redis's clock). Returns
    /// false if it was no longer in flight for this worker.
    /// Once due it joins the back of the queue, behind what is queued by then.
    pub async fn retry_later(
        &self,
        worker_id: &str,
        raw: &[u8],
        delay: Duration,
    ) -> Result<bool, QueueError> {
        self.delay_in_flight(worker_id, raw, delay, "back").await
    }

    /// `retry_later` for a task that keeps its turn: once due it goes to the front of the
    /// queue, where it was before it had to step aside (a recovered task that must run alone
    /// on a worker that already runs one), not behind the whole backlog.
    pub async fn retry_later_at_front(
        &self,
        worker_id: &str,
        raw: &[u8],
        delay: Duration,
    ) -> Result<bool, QueueError> {
        self.delay_in_flight(worker_id, raw, delay, "front").await
    }

    async fn delay_in_flight(
        &self,
        worker_id: &str,
        raw: &[u8],
        delay: Duration,
        place: &str,
    ) -> Result<bool, QueueError> {
        let mut conn = self.pool.get().await?;
        let moved: i64 = RETRY_LATER
            .key(self.keys.inflight(worker_id))
            .key(self.keys.delayed())
            .arg(raw)
            .arg(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX))
            .arg(place)
            .invoke_async(&mut conn)
            .await?;
        Ok(moved == 1)
    }

    /// Gives back a task that could not be processed for a reason other than an outage, and
    /// counts it against the task (`task_key`: its id, or the message itself): after
    /// `max_deliveries` such give-backs it is dead-lettered with `reason` instead.
    pub async fn give_back(
        &self,
        worker_id: &str,
        raw: &[u8],
        task_key: &[u8],
        delay: Duration,
        max_deliveries: u32,
        reason: &str,
    ) -> Result<GivenBack, QueueError> {
        let entry = dead_letter_entry(worker_id, raw, reason);
        let mut conn = self.pool.get().await?;
        let outcome: i64 = GIVE_BACK
            .key(self.keys.inflight(worker_id))
            .key(self.keys.delayed())
            .key(self.keys.dead())
            .key(self.keys.deliveries())
            .arg(raw)
            .arg(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX))
            .arg(task_key)
            .arg(max_deliveries.max(1))
            .arg(entry)
            .arg(self.dead_letter_cap)
            .invoke_async(&mut conn)
            .await?;
        Ok(match outcome {
            1 => GivenBack::Delayed,
            2 => GivenBack::DeadLettered,
            _ => GivenBack::Gone,
        })
    }

    /// Moves delayed tasks that are due to the queue; returns how many. Any process may call
    /// it, as often as it likes.
    pub async fn promote_due(&self) -> Result<u64, QueueError> {
        let mut conn = self.pool.get().await?;
        Ok(PROMOTE
            .key(self.keys.delayed())
            .key(self.keys.pending())
            .arg(PROMOTE_BATCH)
            .invoke_async(&mut conn)
            .await?)
    }

    /// Every task message in Redis (pending and in flight), read atomically.
    pub async fn snapshot(&self) -> Result<Vec<RawTask>, QueueError> {
        let mut conn = self.pool.get().await?;
        let workers: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.keys.workers())
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await?;
        let mut invocation = SNAPSHOT.key(self.keys.delayed());
        invocation.key(self.keys.pending());
        for worker in &workers {
            invocation.key(self.keys.inflight(worker));
        }
        Ok(invocation.invoke_async(&mut conn).await?)
    }

    /// Puts everything still in this worker's in-flight list back at the head of the queue.
    pub async fn requeue_inflight(&self, worker_id: &str) -> Result<u64, QueueError> {
        let mut conn = self.pool.get().await?;
        Ok(REQUEUE
            .key(self.keys.inflight(worker_id))
            .key(self.keys.pending())
            .invoke_async(&mut conn)
            .await?)
    }

    /// The messages in a worker's in-flight list.
    pub async fn inflight(&self, worker_id: &str) -> Result<Vec<RawTask>, QueueError> {
        let mut conn = self.pool.get().await?;
        Ok(redis::cmd("LRANGE")
            .arg(self.keys.inflight(worker_id))
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await?)
    }

    /// Reads a JSON value stored under one of this queue's keys (scheduler stats, task results).
    pub async fn get_json(&self, key: &str) -> Result<Option<serde_json::Value>, QueueError> {
        let mut conn = self.pool.get().await?;
        let raw: Option<String> = redis::cmd("GET").arg(key).query_async(&mut conn).await?;
        Ok(raw.and_then(|raw| serde_json::from_str(&raw).ok()))
    }
}
