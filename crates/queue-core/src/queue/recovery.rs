//! Recovery of the tasks of workers whose heartbeat expired (`recover.lua`), with the blame
//! rule that tells a poison task from one that was merely on a worker that died.
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;

use super::{Queue, RawTask};
use crate::QueueError;
use crate::scripts::{EXPIRED_WORKERS, RECOVER};

/// How far back recovery looks for other worker deaths before it blames a task for one:
/// long enough to cover deaths noticed one heartbeat TTL and a scheduler pass apart, short
/// enough that yesterday's unrelated crash does not shield a poison task today.
pub const BLAME_WINDOW: Duration = Duration::from_secs(600);

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

impl Queue {
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
}
