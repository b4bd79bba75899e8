//! The queue's depth over the last hour: one sample a minute, taken by the scheduler's pass.
use chrono::{DateTime, Utc};

use super::Queue;
use crate::QueueError;
use crate::scripts::DEPTH_SAMPLE;

impl Queue {
    /// Records the pending count at this minute (`depth_sample.lua`); returns it.
    pub async fn record_depth(&self) -> Result<u64, QueueError> {
        let mut conn = self.pool.get().await?;
        Ok(DEPTH_SAMPLE
            .key(self.keys.pending())
            .key(self.keys.depth_history())
            .invoke_async(&mut conn)
            .await?)
    }

    /// The samples of the last hour, oldest first: (minute, pending).
    pub async fn depth_history(&self) -> Result<Vec<(DateTime<Utc>, u64)>, QueueError> {
        let mut conn = self.pool.get().await?;
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.keys.depth_history())
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await?;
        Ok(members
            .iter()
            .filter_map(|member| {
                let (minute, pending) = member.split_once(':')?;
                let minute = DateTime::from_timestamp_millis(minute.parse().ok()?)?;
                Some((minute, pending.parse().ok()?))
            })
            .collect())
    }
}
