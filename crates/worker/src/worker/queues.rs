//! The queues a worker serves and which one gets the next free slot: weighted (smooth weighted
//! round robin, as nginx balances upstreams: with weights 3:1 the order is a a b a, never a run
//! of one queue while another waits) or strict (the first queue with work). A queue at its cap,
//! paused or found empty is passed over until its mark expires, so a backlog in one queue never
//! holds a slot another queue's task could use.
use std::sync::{Arc, OnceLock};

use queue_core::{AckBatcher, Queue, Services};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::{QueueShare, WorkerSettings};

/// One queue this worker serves.
pub(crate) struct Served {
    pub queue: Queue,
    pub weight: u32,
    /// Slots this queue may hold at once (its cap, or the worker's concurrency).
    pub cap: Arc<Semaphore>,
    /// Acks of this queue's tasks finishing together share one round trip (started on use).
    pub acks: OnceLock<AckBatcher>,
}

impl Served {
    pub fn name(&self) -> &str {
        self.queue.keys().queue_name()
    }
}

/// The served queues from the worker's settings: its list, or every queue of its kinds. A queue
/// no kind uses is refused, naming it.
pub(crate) fn served_queues(
    services: &Services,
    settings: &WorkerSettings,
    kind_queues: &[&str],
) -> Result<Vec<Served>, String> {
    let shares = if settings.queues.is_empty() {
        kind_queues
            .iter()
            .map(|name| QueueShare::new(name))
            .collect()
    } else {
        settings.queues.clone()
    };
    if shares.is_empty() {
        return Err("this worker has no kinds, so no queue to serve".into());
    }
    shares
        .into_iter()
        .map(|share| {
            if !kind_queues.contains(&share.name.as_str()) {
                return Err(format!(
                    "WORKER_QUEUES names queue {:?}, which none of this worker's kinds uses \
                     (its queues: {})",
                    share.name,
                    kind_queues.join(", ")
                ));
            }
            let cap = share
                .cap
                .unwrap_or(settings.concurrency)
                .min(settings.concurrency);
            Ok(Served {
                queue: services.queue_named(&share.name),
                weight: share.weight.max(1),
                cap: Arc::new(Semaphore::new(cap)),
                acks: OnceLock::new(),
            })
        })
        .collect()
}

/// Chooses the queue for each free slot.
pub(crate) struct Picker {
    strict: bool,
    weights: Vec<i64>,
    current: Vec<i64>,
    /// A queue found empty or paused is passed over until then.
    skip_until: Vec<Option<Instant>>,
}

impl Picker {
    pub fn new(served: &[Served], strict: bool) -> Self {
        Self {
            strict,
            weights: served.iter().map(|s| i64::from(s.weight)).collect(),
            current: vec![0; served.len()],
            skip_until: vec![None; served.len()],
        }
    }

    /// Passes over queue `index` until `until`.
    pub fn skip(&mut self, index: usize, until: Instant) {
        self.skip_until[index] = Some(until);
    }

    /// When the earliest passed-over queue comes back (None: none is passed over).
    pub fn next_unskip(&self) -> Option<Instant> {
        self.skip_until.iter().flatten().min().copied()
    }

    /// The queue for the next slot, with one of its cap's permits; None when every queue is
    /// passed over or at its cap.
    pub fn pick(&mut self, served: &[Served]) -> Option<(usize, OwnedSemaphorePermit)> {
        let now = Instant::now();
        for mark in &mut self.skip_until {
            if mark.is_some_and(|until| until <= now) {
                *mark = None;
            }
        }
        let open: Vec<usize> = (0..served.len())
            .filter(|&i| self.skip_until[i].is_none() && served[i].cap.available_permits() > 0)
            .collect();
        let chosen = if self.strict {
            *open.first()?
        } else {
            let total: i64 = open.iter().map(|&i| self.weights[i]).sum();
            for &i in &open {
                self.current[i] += self.weights[i];
            }
            let best = *open
                .iter()
                .max_by_key(|&&i| (self.current[i], -(i as i64)))?;
            self.current[best] -= total;
            best
        };
        let permit = served[chosen].cap.clone().try_acquire_owned().ok()?;
        Some((chosen, permit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(weights: &[u32], caps: &[usize]) -> Vec<Served> {
        let pool = queue_core::create_pool("redis://127.0.0.1:1", 1).unwrap();
        weights
            .iter()
            .zip(caps)
            .enumerate()
            .map(|(i, (&weight, &cap))| Served {
                queue: Queue::new(
                    pool.clone(),
                    queue_core::Keys::new("t:", &format!("q{i}")),
                    std::time::Duration::from_secs(1),
                ),
                weight,
                cap: Arc::new(Semaphore::new(cap)),
                acks: OnceLock::new(),
            })
            .collect()
    }

    #[tokio::test]
    async fn weights_interleave_slots_and_caps_and_marks_pass_a_queue_over() {
        let queues = served(&[3, 1], &[100, 100]);
        let mut picker = Picker::new(&queues, false);
        let order: Vec<usize> = (0..8).map(|_| picker.pick(&queues).unwrap().0).collect();
        assert_eq!(order, vec![0, 0, 1, 0, 0, 0, 1, 0]);

        let queues = served(&[1, 1], &[1, 100]);
        let mut picker = Picker::new(&queues, false);
        let held = picker.pick(&queues).unwrap();
        assert_eq!(held.0, 0);
        // Queue 0 is at its cap: every slot goes to queue 1 until its task ends.
        assert_eq!(picker.pick(&queues).unwrap().0, 1);
        assert_eq!(picker.pick(&queues).unwrap().0, 1);
        drop(held);
        picker.skip(1, Instant::now() + std::time::Duration::from_secs(60));
        let again = picker.pick(&queues).unwrap();
        assert_eq!(again.0, 0);
        assert!(
            picker.pick(&queues).is_none(),
            "0 at its cap, 1 passed over"
        );
    }

    #[tokio::test]
    async fn strict_order_serves_the_first_queue_with_room() {
        let queues = served(&[1, 5], &[2, 100]);
        let mut picker = Picker::new(&queues, true);
        let held: Vec<_> = (0..4).map(|_| picker.pick(&queues).unwrap()).collect();
        let order: Vec<usize> = held.iter().map(|(queue, _)| *queue).collect();
        assert_eq!(order, vec![0, 0, 1, 1]);
    }
}
