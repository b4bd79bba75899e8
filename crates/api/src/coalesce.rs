//! Readings shared by the requests that wait for them, and never older than the request.
//!
//! A queue's status costs two Redis round trips; fifty clients polling it would make fifty
//! identical trips at once. Instead a request waits for the next reading that *starts after it
//! arrived*, and every request waiting for that same reading gets it: the way a database's group
//! commit shares one fsync among the commits waiting for it. Unlike `Fresh`, nothing is served
//! from before the request, so the depth a client reads is never stale; the saving grows with the
//! load, one reading per round trip however many requests wait.
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};

use queue_core::{Queue, QueueError, QueueMetrics};
use tokio::sync::Mutex;

pub struct Coalesced<T> {
    /// Readings begun so far; a reading numbered above the count a request saw on arrival began
    /// after it arrived.
    begun: AtomicU64,
    /// The last reading and its number. Held while a reading is taken, so waiters queue behind it
    /// (tokio's mutex is fair: first come, first served).
    last: Mutex<Option<(u64, T)>>,
}

impl<T> Default for Coalesced<T> {
    fn default() -> Self {
        Self {
            begun: AtomicU64::new(0),
            last: Mutex::new(None),
        }
    }
}

impl<T: Clone> Coalesced<T> {
    /// A reading begun after this call: one a concurrent caller took, or a new one from `take`.
    /// A failed reading is not shared: each waiter then tries its own.
    pub async fn get<E, F, Fut>(&self, take: F) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let arrived_after = self.begun.load(Ordering::Acquire);
        let mut last = self.last.lock().await;
        if let Some((number, value)) = last.as_ref()
            && *number > arrived_after
        {
            return Ok(value.clone());
        }
        let number = self.begun.fetch_add(1, Ordering::AcqRel) + 1;
        let value = take().await?;
        *last = Some((number, value.clone()));
        Ok(value)
    }
}

/// Most queues whose readings are kept apart; past it the map starts again (queue names come
/// from clients, so it must not grow without bound).
const MOST_QUEUES: usize = 256;

/// One `Coalesced` status reading per queue.
#[derive(Default)]
pub struct QueueReadings {
    by_queue: StdMutex<HashMap<String, Arc<Coalesced<QueueMetrics>>>>,
}

impl QueueReadings {
    /// `queue`'s figures, read after this call began, shared with concurrent callers.
    pub async fn metrics(&self, queue: &Queue) -> Result<QueueMetrics, QueueError> {
        let name = queue.keys().queue_name();
        let reading = {
            let mut by_queue = self.by_queue.lock().unwrap_or_else(|e| e.into_inner());
            if by_queue.len() >= MOST_QUEUES && !by_queue.contains_key(name) {
                by_queue.clear();
            }
            by_queue.entry(name.to_owned()).or_default().clone()
        };
        reading.get(|| queue.metrics()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// Requests arriving while a reading is taken share the next one; none gets the reading
    /// that began before it arrived.
    #[tokio::test]
    async fn waiters_share_the_next_reading_and_never_an_earlier_one() {
        let readings = Arc::new(Coalesced::<usize>::default());
        let taken = Arc::new(AtomicUsize::new(0));
        let (release_first, first_released) = tokio::sync::oneshot::channel::<()>();
        let first = {
            let (readings, taken) = (readings.clone(), taken.clone());
            tokio::spawn(async move {
                readings
                    .get(|| async move {
                        first_released.await.ok();
                        Ok::<_, ()>(taken.fetch_add(1, Ordering::SeqCst) + 1)
                    })
                    .await
            })
        };
        // The first reading is under way when the others arrive.
        while readings.begun.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let waiters: Vec<_> = (0..10)
            .map(|_| {
                let (readings, taken) = (readings.clone(), taken.clone());
                tokio::spawn(async move {
                    readings
                        .get(|| async move {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            Ok::<_, ()>(taken.fetch_add(1, Ordering::SeqCst) + 1)
                        })
                        .await
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        release_first.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(1));
        for waiter in waiters {
            assert_eq!(
                waiter.await.unwrap(),
                Ok(2),
                "the reading begun after it arrived"
            );
        }
        assert_eq!(taken.load(Ordering::SeqCst), 2, "ten waiters, one reading");
        // Alone, a caller takes a reading of its own.
        let alone = readings.get(|| async { Ok::<_, ()>(99) }).await;
        assert_eq!(alone, Ok(99));
    }

    #[tokio::test]
    async fn a_failed_reading_is_not_shared() {
        let readings = Coalesced::<u8>::default();
        assert_eq!(
            readings.get(|| async { Err::<u8, _>("down") }).await,
            Err("down")
        );
        assert_eq!(readings.get(|| async { Ok::<_, &str>(7) }).await, Ok(7));
    }
}
