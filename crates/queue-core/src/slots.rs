//! A counting semaphore in Redis with leases: the cap on browsers across every worker on every
//! machine (seed 004's `PPT_GLOBAL_CHROME_SLOTS`, done so a crashed worker's slots come back by
//! themselves when their leases end).
use std::time::Duration;

use crate::RedisPool;
use tokio_util::task::TaskTracker;

use crate::scripts::{SLOT_ACQUIRE, SLOT_RENEW};
use crate::{Keys, QueueError};

/// How often a waiting acquirer asks again.
const POLL: Duration = Duration::from_millis(100);

/// Cheap to clone: a pool handle and a few settings.
#[derive(Clone)]
pub struct SlotSemaphore {
    pool: RedisPool,
    key: String,
    capacity: u32,
    /// A lease lives this long unless renewed (every third of it while held).
    lease_ttl: Duration,
    /// How long `acquire` waits for a free slot before giving up.
    wait: Duration,
    /// Owns each lease's renewer and the release sent when a lease is dropped.
    tracker: TaskTracker,
}

impl SlotSemaphore {
    pub fn new(
        pool: RedisPool,
        keys: &Keys,
        capacity: u32,
        lease_ttl: Duration,
        wait: Duration,
        tracker: TaskTracker,
    ) -> Self {
        Self {
            pool,
            key: keys.browser_slots(),
            capacity,
            lease_ttl,
            wait,
            tracker,
        }
    }

    /// Tries once. Returns whether `holder` now holds a slot.
    pub async fn try_acquire(&self, holder: &str) -> Result<bool, QueueError> {
        let mut conn = self.pool.get().await?;
        let held: i64 = SLOT_ACQUIRE
            .key(&self.key)
            .arg(holder)
            .arg(self.capacity)
            .arg(millis(self.lease_ttl))
            .invoke_async(&mut conn)
            .await?;
        Ok(held == 1)
    }

    pub async fn renew(&self, holder: &str) -> Result<bool, QueueError> {
        let mut conn = self.pool.get().await?;
        let renewed: i64 = SLOT_RENEW
            .key(&self.key)
            .arg(holder)
            .arg(millis(self.lease_ttl))
            .invoke_async(&mut conn)
            .await?;
        Ok(renewed == 1)
    }

    pub async fn release(&self, holder: &str) -> Result<(), QueueError> {
        let mut conn = self.pool.get().await?;
        let _: i64 = redis::cmd("ZREM")
            .arg(&self.key)
            .arg(holder)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Slots held right now (expired leases not counted).
    pub async fn held(&self) -> Result<u64, QueueError> {
        held(&self.pool, &self.key).await
    }

    /// Waits up to `wait` for a free slot; the slot is held until the returned lease is dropped
    /// (renewed meanwhile, on the tracker).
    pub async fn acquire_lease(self) -> Result<SlotGuard, String> {
        let holder = format!("slot_{}", uuid::Uuid::new_v4().simple());
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            match self.try_acquire(&holder).await {
                Ok(true) => break,
                Ok(false) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(POLL).await
                }
                Ok(false) => {
                    return Err(format!(
                        "no free browser slot among {} within {:?}",
                        self.capacity, self.wait
                    ));
                }
                Err(err) => return Err(format!("browser slots unavailable: {err}")),
            }
        }
        // Keeps the lease alive while the slot is held; ends with the lease.
        let renewer = self.tracker.spawn({
            let (slots, holder) = (self.clone(), holder.clone());
            async move {
                loop {
                    tokio::time::sleep(slots.lease_ttl / 3).await;
                    if !matches!(slots.renew(&holder).await, Ok(true)) {
                        tracing::warn!("browser slot lease lost");
                        return;
                    }
                }
            }
        });
        Ok(SlotGuard {
            slots: Some(self),
            holder,
            renewer,
        })
    }
}

/// A held browser slot: dropping it stops the renewals and gives the slot back.
pub struct SlotGuard {
    slots: Option<SlotSemaphore>,
    holder: String,
    renewer: tokio::task::JoinHandle<()>,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.renewer.abort();
        let Some(slots) = self.slots.take() else {
            return;
        };
        // Drop cannot await: give the slot back in the background. If that fails, the lease
        // expires by itself.
        let holder = std::mem::take(&mut self.holder);
        let tracker = slots.tracker.clone();
        tracker.spawn(async move {
            let _ = slots.release(&holder).await;
        });
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Slots of the semaphore at `key` held right now (leases unexpired by Redis's clock).
pub(crate) async fn held(pool: &RedisPool, key: &str) -> Result<u64, QueueError> {
    let mut conn = pool.get().await?;
    let (seconds, micros): (u64, u64) = redis::cmd("TIME").query_async(&mut conn).await?;
    let now_ms = seconds * 1000 + micros / 1000;
    Ok(redis::cmd("ZCOUNT")
        .arg(key)
        .arg(now_ms + 1)
        .arg("+inf")
        .query_async(&mut conn)
        .await?)
}
