//! Requests to one host spaced across every worker: each request reserves the next turn in
//! Redis (`pace.lua`), so N workers together keep to the host's rate instead of N times it.
use std::time::Duration;

use crate::RedisPool;

use crate::scripts::PACE;
use crate::{Keys, QueueError};

#[derive(Clone)]
pub struct RedisPacer {
    pool: RedisPool,
    keys: Keys,
    /// Time between two requests to the same host, from all workers together.
    interval: Duration,
}

impl RedisPacer {
    pub fn new(pool: RedisPool, keys: Keys, interval: Duration) -> Self {
        Self {
            pool,
            keys,
            interval,
        }
    }

    /// Reserves a turn; returns how long to wait for it.
    pub async fn reserve(&self, host: &str) -> Result<Duration, QueueError> {
        let mut conn = self.pool.get().await?;
        let wait_ms: u64 = PACE
            .key(self.keys.domain_pace(host))
            .arg(u64::try_from(self.interval.as_millis()).unwrap_or(u64::MAX))
            .invoke_async(&mut conn)
            .await?;
        Ok(Duration::from_millis(wait_ms))
    }
}

impl RedisPacer {
    /// Resolves when this process may send its next request to `host`.
    pub async fn wait_turn(&self, host: &str) {
        // Without Redis, keep the spacing locally rather than stop scraping.
        let wait = self.reserve(host).await.unwrap_or(self.interval);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}
