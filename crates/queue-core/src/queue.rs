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

use chrono::{DateTime, Utc};
use deadpool_redis::Pool;
use redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};

use crate::redis_conn::blocking_connection;
use crate::scripts::{
    ACK, ADOPT, DEAD_LETTER, DEAD_TAKE, EXPIRED_WORKERS, GIVE_BACK, HEARTBEAT, HOLD_IF_PAUSED,
    PROMOTE, RECOVER, REQUEUE, RETRY_LATER, SNAPSHOT, TAKE_BATCH, WORKERS_ALIVE,
};
use crate::{Keys, QueueError, Task};

/// Default cap on the dead-letter list; the oldest entries are trimmed beyond it (Sidekiq keeps
/// 10,000 dead jobs for the same reason: enough to investigate, bounded memory).
pub const DEFAULT_DEAD_LETTER_CAP: usize = 10_000;

/// Most delayed tasks one promote call moves, so one call never blocks Redis for long.
const PROMOTE_BATCH: u64 = 1_000;

/// How far back recovery looks for other worker deaths before it blames a task for one:
/// long enough to cover deaths noticed one heartbeat TTL and a scheduler pass apart, short
/// enough that yesterday's unrelated crash does not shield a poison task today.
pub const BLAME_WINDOW: Duration = Duration::from_secs(600);

/// A message as Redis holds it: bytes, not necessarily UTF-8 (a hand-written task can be
/// anything), so one bad message can neither fail the batch it came in nor stick in flight.
pub type RawTask = Vec<u8>;

/// What one dequeue found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// Tasks now in the worker's in-flight list (maybe none: the queue was empty).
    Tasks(Vec<RawTask>),
    /// The queue is paused: nothing was taken.
    Paused,
}

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
    pool: Pool,
    keys: Keys,
    dead_letter_cap: usize,
    /// How long a finished task's summary stays readable under `result:<task_id>`.
    result_ttl: Duration,
}

/// Queue depth and workers, as `GET /jobs/queue/status` shows them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct QueueMetrics {
    pub queue: String,
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

/// What a recovery sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Recovery {
    /// Workers found dead (heartbeat expired) and cleaned up.
    pub workers: Vec<String>,
    /// Tasks put back in the queue.
    pub requeued: u64,
    /// Tasks dead-lettered as poison, as they were in the queue, with the reason each.
    pub poisoned: Vec<(RawTask, String)>,
}

/// One entry of the dead-letter list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
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
    pub fn new(pool: Pool, keys: Keys, result_ttl: Duration) -> Self {
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

    pub fn pool(&self) -> &Pool {
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

    /// Recovers the in-flight tasks of every worker whose heartbeat expired: back to the queue,
    /// or to the dead-letter list after `max_deliveries` recoveries. Safe to run from any number
    /// of processes at once (each worker is recovered by one script, atomically).
    pub async fn recover_crashed(&self, max_deliveries: u32) -> Result<Recovery, QueueError> {
        let mut conn = self.pool.get().await?;
        let expired: Vec<String> = EXPIRED_WORKERS
            .key(self.keys.workers())
            .invoke_async(&mut conn)
            .await?;
        let mut recovery = Recovery::default();
        for worker in expired {
            let (requeued, poisoned, reasons): (u64, Vec<RawTask>, Vec<String>) = RECOVER
                .key(self.keys.inflight(&worker))
                .key(self.keys.pending())
                .key(self.keys.dead())
                .key(self.keys.deliveries())
                .key(self.keys.workers())
                .key(self.keys.deaths())
                .arg(&worker)
                .arg(max_deliveries.max(1))
                .arg(self.dead_letter_cap)
                .arg(Utc::now().to_rfc3339())
                .arg(BLAME_WINDOW.as_millis() as u64)
                .invoke_async(&mut conn)
                .await?;
            recovery.workers.push(worker);
            recovery.requeued += requeued;
            recovery.poisoned.extend(poisoned.into_iter().zip(reasons));
        }
        Ok(recovery)
    }

    /// Moves an in-flight task to the delayed set, due after `delay` (Redis's clock). Returns
    /// false if it was no longer in flight for this worker.
    pub async fn retry_later(
        &self,
        worker_id: &str,
        raw: &[u8],
        delay: Duration,
    ) -> Result<bool, QueueError> {
        let mut conn = self.pool.get().await?;
        let moved: i64 = RETRY_LATER
            .key(self.keys.inflight(worker_id))
            .key(self.keys.delayed())
            .arg(raw)
            .arg(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX))
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

    /// Pauses or resumes the queue.
    pub async fn set_paused(&self, paused: bool) -> Result<(), QueueError> {
        let mut conn = self.pool.get().await?;
        let mut cmd = if paused {
            redis::cmd("SET")
        } else {
            redis::cmd("DEL")
        };
        cmd.arg(self.keys.paused());
        if paused {
            cmd.arg("1");
        }
        let _: redis::Value = cmd.query_async(&mut conn).await?;
        Ok(())
    }

    pub async fn is_paused(&self) -> Result<bool, QueueError> {
        let mut conn = self.pool.get().await?;
        Ok(redis::cmd("EXISTS")
            .arg(self.keys.paused())
            .query_async::<i64>(&mut conn)
            .await?
            == 1)
    }

    /// Asks the worker running `run_id` to stop at its next page. The flag expires after `ttl`
    /// (a run cannot outlive JOB_TIMEOUT anyway).
    pub async fn request_cancel(&self, run_id: &str, ttl: Duration) -> Result<(), QueueError> {
        let mut conn = self.pool.get().await?;
        let _: redis::Value = redis::cmd("SET")
            .arg(self.keys.cancel(run_id))
            .arg("1")
            .arg("EX")
            .arg(ttl.as_secs().max(1))
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    pub async fn is_cancel_requested(&self, run_id: &str) -> Result<bool, QueueError> {
        let mut conn = self.pool.get().await?;
        Ok(redis::cmd("EXISTS")
            .arg(self.keys.cancel(run_id))
            .query_async::<i64>(&mut conn)
            .await?
            == 1)
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

    /// Workers whose heartbeat is current.
    pub async fn live_workers(&self) -> Result<Vec<String>, QueueError> {
        let mut conn = self.pool.get().await?;
        Ok(WORKERS_ALIVE
            .key(self.keys.workers())
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

    pub async fn heartbeat(&self, worker_id: &str, ttl: Duration) -> Result<(), QueueError> {
        let mut conn = self.pool.get().await?;
        let _: i64 = HEARTBEAT
            .key(self.keys.workers())
            .arg(worker_id)
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Removes a worker that stopped cleanly (its in-flight list is already empty).
    pub async fn deregister(&self, worker_id: &str) -> Result<(), QueueError> {
        let mut conn = self.pool.get().await?;
        let _: i64 = redis::cmd("ZREM")
            .arg(self.keys.workers())
            .arg(worker_id)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    pub async fn metrics(&self) -> Result<QueueMetrics, QueueError> {
        let alive = self.live_workers().await?;
        let mut conn = self.pool.get().await?;
        // Every registered worker's in-flight list counts, live or not: a dead worker's tasks are
        // still in flight until something recovers them.
        let registered: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.keys.workers())
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await?;
        let mut pipe = redis::pipe();
        pipe.cmd("LLEN").arg(self.keys.pending());
        pipe.cmd("LLEN").arg(self.keys.dead());
        pipe.cmd("EXISTS").arg(self.keys.paused());
        pipe.cmd("ZCARD").arg(self.keys.delayed());
        for worker in &registered {
            pipe.cmd("LLEN").arg(self.keys.inflight(worker));
        }
        let lengths: Vec<u64> = pipe.query_async(&mut conn).await?;
        Ok(QueueMetrics {
            queue: self.keys.queue_name().to_owned(),
            pending: lengths[0],
            dead: lengths[1],
            paused: lengths[2] == 1,
            delayed: lengths[3],
            in_flight: lengths[4..].iter().sum(),
            workers_alive: alive.len() as u64,
            workers: alive,
        })
    }

    /// Reads a JSON value stored under one of this queue's keys (scheduler stats, task results).
    pub async fn get_json(&self, key: &str) -> Result<Option<serde_json::Value>, QueueError> {
        let mut conn = self.pool.get().await?;
        let raw: Option<String> = redis::cmd("GET").arg(key).query_async(&mut conn).await?;
        Ok(raw.and_then(|raw| serde_json::from_str(&raw).ok()))
    }
}

/// Takes tasks from the queue into one worker's in-flight list.
pub struct Consumer {
    redis_url: String,
    pending: String,
    inflight: String,
    paused: String,
    /// How long one BLMOVE blocks: short, so the loop notices shutdown (Sidekiq uses 2 s).
    block_for: Duration,
    /// Dropped after any error so the next call reconnects.
    conn: Option<MultiplexedConnection>,
}

impl Consumer {
    /// Takes up to `max` tasks into the in-flight list: at once if the queue has any (one round
    /// trip for the lot, `take_batch.lua`), else waits up to `block_for` for one (BLMOVE), so an
    /// idle worker still starts a new task the moment it arrives. Takes nothing while the queue
    /// is paused, including a task that arrives during the wait.
    ///
    /// Cancel safety: as `next`.
    pub async fn next_batch(&mut self, max: usize) -> Result<Taken, QueueError> {
        let mut conn = self.connection().await?;
        let taken: Result<redis::Value, _> = TAKE_BATCH
            .key(&self.pending)
            .key(&self.inflight)
            .key(&self.paused)
            .arg(max.max(1))
            .invoke_async(&mut conn)
            .await;
        match taken {
            Ok(redis::Value::Int(_)) => return Ok(Taken::Paused),
            Ok(value) => {
                let taken: Vec<RawTask> =
                    redis::from_redis_value(value).map_err(redis::RedisError::from)?;
                if !taken.is_empty() {
                    return Ok(Taken::Tasks(taken));
                }
            }
            Err(err) => {
                self.conn = None;
                return Err(err.into());
            }
        }
        self.next_unless_paused().await
    }

    /// The consumer's connection (a handle: clones share it), opened on first use.
    async fn connection(&mut self) -> Result<MultiplexedConnection, QueueError> {
        if self.conn.is_none() {
            self.conn = Some(blocking_connection(&self.redis_url, self.block_for).await?);
        }
        Ok(self.conn.clone().expect("connection was just set"))
    }

    /// Waits up to `block_for` for a task and moves it into the in-flight list; a pause
    /// written meanwhile hands it straight back (`hold_if_paused.lua`).
    async fn next_unless_paused(&mut self) -> Result<Taken, QueueError> {
        let Some(raw) = self.next().await? else {
            return Ok(Taken::Tasks(Vec::new()));
        };
        let mut conn = self.connection().await?;
        let held: Result<i64, _> = HOLD_IF_PAUSED
            .key(&self.inflight)
            .key(&self.pending)
            .key(&self.paused)
            .arg(&raw)
            .invoke_async(&mut conn)
            .await;
        match held {
            Ok(1) => Ok(Taken::Paused),
            Ok(_) => Ok(Taken::Tasks(vec![raw])),
            Err(err) => {
                // The task stays in flight; the worker gives it back at shutdown, or recovery.
                self.conn = None;
                Err(err.into())
            }
        }
    }

    /// Waits up to `block_for` for a task and moves it into the in-flight list.
    ///
    /// Cancel safety: if this future is dropped after Redis moved a task, the task sits in the
    /// in-flight list, and the worker's shutdown requeue gives it back.
    pub async fn next(&mut self) -> Result<Option<RawTask>, QueueError> {
        let mut conn = self.connection().await?;
        let result: Result<Option<RawTask>, _> = redis::cmd("BLMOVE")
            .arg(&self.pending)
            .arg(&self.inflight)
            .arg("RIGHT")
            .arg("LEFT")
            .arg(self.block_for.as_secs_f64())
            .query_async(&mut conn)
            .await;
        if result.is_err() {
            self.conn = None;
        }
        Ok(result?)
    }
}

/// A dead-letter entry's JSON: the message (shown as text), why, when and by whom.
fn dead_letter_entry(worker_id: &str, raw: &[u8], reason: &str) -> String {
    let entry = DeadLetter {
        id: format!("dl_{}", uuid::Uuid::new_v4().simple()),
        task: String::from_utf8_lossy(raw).into_owned(),
        reason: reason.to_owned(),
        failed_at: Utc::now(),
        worker_id: worker_id.to_owned(),
    };
    serde_json::to_string(&entry).expect("dead letter serializes")
}
