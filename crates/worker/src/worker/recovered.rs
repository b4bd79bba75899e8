//! Tasks recovered from a crashed worker: each attempt runs alone, and a worker holds one at a
//! time.
//!
//! A recovered task may be what killed its worker. Running it alone means that if it kills
//! this worker too, no innocent task dies with it, and recovery's blame (a death counts
//! against the tasks its worker held) points at it only. Holding two recovered tasks at once
//! would break that: the one waiting its turn sits in the in-flight list of the worker the
//! other kills, is blamed with it, and after MAX_DELIVERIES deaths is dead-lettered as
//! poison beside the real culprit.
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use queue_core::{RawTask, Task, TaskError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{info, warn};

use super::Worker;
use super::batch::Entry;
use super::measure::Deferred;

/// A taken task's worker slot and its queue's cap permit.
pub(super) type Held = (OwnedSemaphorePermit, OwnedSemaphorePermit);

/// How long a second recovered task waits in the delayed set before it is offered again.
const HAND_BACK_DELAY: Duration = Duration::from_secs(1);

/// Clears `holds_recovered` when the recovered task this worker holds is done with.
struct HoldsRecovered(Arc<Worker>);

impl Drop for HoldsRecovered {
    fn drop(&mut self) {
        self.0.holds_recovered.store(false, Ordering::Release);
    }
}

impl Worker {
    /// Runs a recovered task alone, or, if this worker already holds one, hands it back
    /// through the delayed set (not counted against it) for a worker that holds none.
    pub(super) async fn run_recovered(
        self: Arc<Self>,
        slots: Arc<Semaphore>,
        queue: usize,
        raw: RawTask,
        task: Result<Task, TaskError>,
        recovered: u32,
        held: Held,
    ) {
        let first = self
            .holds_recovered
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if !first {
            // The slot stays held until the task is out of our in-flight list, so the
            // recovered task we hold cannot start (and perhaps kill us) before then.
            // At the front once due: it was at the front when recovered, and behind a long
            // backlog the dead worker's run would wait minutes for no reason of its own.
            let handed = self.served[queue]
                .queue
                .retry_later_at_front(self.id(), &raw, HAND_BACK_DELAY)
                .await;
            match handed {
                Ok(_) => {
                    self.count_deferred(queue, &raw, Deferred::Recovered);
                    info!(
                        recovered,
                        "handed back a second recovered task: this worker already holds one"
                    );
                    return;
                }
                // Redis is unreachable: the task stays here and waits its turn to run alone.
                Err(err) => warn!(
                    recovered,
                    error = %err,
                    "could not hand back a second recovered task; it runs alone after the first"
                ),
            }
        }
        let _holds = first.then(|| HoldsRecovered(self.clone()));
        let (slot, _cap) = held;
        let alone = Alone {
            slots,
            concurrency: self.settings.concurrency.max(1) as u32,
            recovered,
            held: std::sync::Mutex::new(Some(slot)),
        };
        self.process_or_give_back(queue, raw, task, Entry::Recovered(&alone))
            .await;
    }
}

/// A recovered task's hold on its worker's slots: its own slot until its run has started, then
/// every slot, so nothing else runs beside its attempt and nothing new starts (the semaphore
/// is fair). Taking all slots in one request cannot deadlock with another such task. Only the
/// attempt needs to be alone (it is what may kill the worker); a start that found its row held
/// (`StartOutcome::Busy`) hands the task back, and holding every slot until then would idle
/// the whole worker for nothing.
pub(super) struct Alone {
    slots: Arc<Semaphore>,
    concurrency: u32,
    /// How many times the task has been recovered.
    recovered: u32,
    held: std::sync::Mutex<Option<OwnedSemaphorePermit>>,
}

impl Alone {
    /// Gives up the task's own slot and waits for all of them.
    pub(super) async fn take_every_slot(&self) {
        drop(self.held.lock().expect("never poisoned").take());
        let all = self
            .slots
            .clone()
            .acquire_many_owned(self.concurrency)
            .await
            .expect("semaphore is never closed");
        *self.held.lock().expect("never poisoned") = Some(all);
        info!(
            recovered = self.recovered,
            "task recovered from a crashed worker; running it alone"
        );
    }
}
