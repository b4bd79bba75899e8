//! Who is alive and how deep the queue is: heartbeats, registrations and the metrics
//! `GET /jobs/queue/status` shows.
use std::time::Duration;

use super::{Queue, QueueMetrics};
use crate::QueueError;
use crate::scripts::{HEARTBEAT, QUEUE_STATUS, WORKERS_ALIVE};

impl Queue {
    /// Workers whose heartbeat is current.
    pub async fn live_workers(&self) -> Result<Vec<String>, QueueError> {
        let mut conn = self.pool.get().await?;
        Ok(WORKERS_ALIVE
            .key(self.keys.workers())
            .invoke_async(&mut conn)
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
        let mut conn = self.pool.get().await?;
        let (pending, dead, paused, delayed, alive, registered): (
            u64,
            u64,
            u8,
            u64,
            Vec<String>,
            Vec<String>,
        ) = QUEUE_STATUS
            .key(self.keys.workers())
            .key(self.keys.pending())
            .key(self.keys.dead())
            .key(self.keys.paused())
            .key(self.keys.delayed())
            .invoke_async(&mut conn)
            .await?;
        // Every registered worker's in-flight list counts, live or not: a dead worker's tasks are
        // still in flight until something recovers them.
        let mut in_flight = 0;
        if !registered.is_empty() {
            let mut pipe = redis::pipe();
            for worker in &registered {
                pipe.cmd("LLEN").arg(self.keys.inflight(worker));
            }
            let lengths: Vec<u64> = pipe.query_async(&mut conn).await?;
            in_flight = lengths.iter().sum();
        }
        Ok(QueueMetrics {
            queue: self.keys.queue_name().to_owned(),
            slot: self.keys.slot(),
            pending,
            dead,
            paused: paused == 1,
            delayed,
            in_flight,
            workers_alive: alive.len() as u64,
            workers: alive,
        })
    }
}
