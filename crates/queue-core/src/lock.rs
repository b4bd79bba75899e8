//! Run locks: at most one active run per lock key. A kind names the key its runs hold (the
//! scrape kind: the site, so at most one scrape per site); the lifecycle takes and releases it.
//!
//! The lock's value is the owning run_id. It is taken with `SET NX PX` when the run is created
//! and lives as long as the run: every way the run ends releases it, and its TTL (at least
//! `JOB_TIMEOUT`) frees it if the worker dies. Renew and release check the owner token, so
//! a run that lost its lock can never delete its successor's.
use std::time::Duration;

use crate::RedisPool;

use crate::scripts::{LOCK_CLAIM, LOCK_RELEASE, LOCK_RENEW};
use crate::{Keys, QueueError};

#[derive(Clone)]
pub struct RunLocks {
    pool: RedisPool,
    keys: Keys,
}

impl RunLocks {
    pub fn new(pool: RedisPool, keys: Keys) -> Self {
        Self { pool, keys }
    }

    /// Takes the lock if nobody holds it. Returns whether the caller now owns it.
    pub async fn acquire(&self, key: &str, token: &str, ttl: Duration) -> Result<bool, QueueError> {
        let mut conn = self.pool.get().await?;
        let set: Option<String> = redis::cmd("SET")
            .arg(self.keys.run_lock(key))
            .arg(token)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms(ttl))
            .query_async(&mut conn)
            .await?;
        Ok(set.is_some())
    }

    /// Takes the lock, or keeps it if `token` already owns it (a redelivered task).
    pub async fn claim(&self, key: &str, token: &str, ttl: Duration) -> Result<bool, QueueError> {
        self.hold_lease(&self.keys.run_lock(key), token, ttl).await
    }

    /// Extends the lock if `token` owns it. Returns false when it does not (anymore).
    pub async fn renew(&self, key: &str, token: &str, ttl: Duration) -> Result<bool, QueueError> {
        self.renew_lease(&self.keys.run_lock(key), token, ttl).await
    }

    /// Releases the lock if `token` owns it. Returns whether it did.
    pub async fn release(&self, key: &str, token: &str) -> Result<bool, QueueError> {
        self.release_lease(&self.keys.run_lock(key), token).await
    }

    /// Takes, keeps or gives up a named lease with the same owner-token rules as run locks
    /// (the scheduler's leader lease).
    pub async fn hold_lease(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, QueueError> {
        let mut conn = self.pool.get().await?;
        let held: i64 = LOCK_CLAIM
            .key(key)
            .arg(token)
            .arg(ttl_ms(ttl))
            .invoke_async(&mut conn)
            .await?;
        Ok(held == 1)
    }

    pub async fn renew_lease(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, QueueError> {
        let mut conn = self.pool.get().await?;
        let renewed: i64 = LOCK_RENEW
            .key(key)
            .arg(token)
            .arg(ttl_ms(ttl))
            .invoke_async(&mut conn)
            .await?;
        Ok(renewed == 1)
    }

    pub async fn release_lease(&self, key: &str, token: &str) -> Result<bool, QueueError> {
        let mut conn = self.pool.get().await?;
        let released: i64 = LOCK_RELEASE
            .key(key)
            .arg(token)
            .invoke_async(&mut conn)
            .await?;
        Ok(released == 1)
    }

    /// The owner of a named lease, if any.
    pub async fn holder_of(&self, key: &str) -> Result<Option<String>, QueueError> {
        let mut conn = self.pool.get().await?;
        Ok(redis::cmd("GET").arg(key).query_async(&mut conn).await?)
    }

    /// The run holding the lock `key`, if any.
    pub async fn holder(&self, key: &str) -> Result<Option<String>, QueueError> {
        self.holder_of(&self.keys.run_lock(key)).await
    }

    /// How long the lock `key` has left (None: not held).
    pub async fn remaining(&self, key: &str) -> Result<Option<Duration>, QueueError> {
        let mut conn = self.pool.get().await?;
        let ms: i64 = redis::cmd("PTTL")
            .arg(self.keys.run_lock(key))
            .query_async(&mut conn)
            .await?;
        Ok(u64::try_from(ms).ok().map(Duration::from_millis))
    }
}

fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}
