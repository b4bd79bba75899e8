//! Who is alive and how deep the queue is: heartbeats, registrations and the metrics
//! `GET /jobs/queue/status` shows.
use std::time::Duration;

use super::{Queue, QueueMetrics};
use crate::QueueError;
use crate::scripts::{HEARTBEAT, WORKERS_ALIVE};

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
            slot: self.keys.slot(),
            pending: lengths[0],
            dead: lengths[1],
            paused: lengths[2] == 1,
            delayed: lengths[3],
            in_flight: lengths[4..].iter().sum(),
            workers_alive: alive.len() as u64,
            workers: alive,
        })
    }
}
