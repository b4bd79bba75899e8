//! Taking tasks: one worker's consumer, on a connection of its own (it blocks in BLMOVE).
use std::time::Duration;

use crate::redis_conn::BlockingConnection;

use super::RawTask;
use crate::QueueError;
use crate::redis_conn::blocking_connection;
use crate::scripts::{HOLD_IF_PAUSED, TAKE_BATCH};

/// What one dequeue found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// Tasks now in the worker's in-flight list (maybe none: the queue was empty).
    Tasks(Vec<RawTask>),
    /// The queue is paused: nothing was taken.
    Paused,
}

/// Takes tasks from the queue into one worker's in-flight list.
pub struct Consumer {
    pub(super) redis_url: String,
    pub(super) pending: String,
    pub(super) inflight: String,
    pub(super) paused: String,
    /// How long one BLMOVE blocks: short, so the loop notices shutdown (Sidekiq uses 2 s).
    pub(super) block_for: Duration,
    /// Dropped after any error so the next call reconnects.
    pub(super) conn: Option<BlockingConnection>,
}

impl Consumer {
    /// Takes up to `max` tasks into the in-flight list: at once if the queue has any (one round
    /// trip for the lot, `take_batch.lua`), else waits up to `block_for` for one (BLMOVE), so an
    /// idle worker still starts a new task the moment it arrives. Takes nothing while the queue
    /// is paused, including a task that arrives during the wait.
    ///
    /// Cancel safety: as `next`.
    pub async fn next_batch(&mut self, max: usize) -> Result<Taken, QueueError> {
        match self.take_now(max).await? {
            Taken::Tasks(taken) if taken.is_empty() => self.next_unless_paused().await,
            taken => Ok(taken),
        }
    }

    /// Takes up to `max` tasks into the in-flight list if the queue has any, without waiting
    /// (a worker serving several queues polls them rather than block on one).
    pub async fn take_now(&mut self, max: usize) -> Result<Taken, QueueError> {
        let mut conn = self.connection().await?;
        let taken: Result<redis::Value, _> = TAKE_BATCH
            .key(&self.pending)
            .key(&self.inflight)
            .key(&self.paused)
            .arg(max.max(1))
            .invoke_async(&mut conn)
            .await;
        match taken {
            Ok(redis::Value::Int(_)) => Ok(Taken::Paused),
            Ok(value) => Ok(Taken::Tasks(
                redis::from_redis_value(value).map_err(redis::RedisError::from)?,
            )),
            Err(err) => {
                self.conn = None;
                Err(err.into())
            }
        }
    }

    /// The consumer's connection (a handle: clones share it), opened on first use.
    async fn connection(&mut self) -> Result<BlockingConnection, QueueError> {
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
