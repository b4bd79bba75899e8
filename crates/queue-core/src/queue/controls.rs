//! Operator controls on a queue: pause and resume, and cancelling a running run.
use std::time::Duration;

use super::Queue;
use crate::QueueError;

impl Queue {
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
}
