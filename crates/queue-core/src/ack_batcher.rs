//! Coalesces acks: tasks of one worker that finish around the same time are acked in one round
//! trip (`ack.lua`). A task is acked only after its result is stored, exactly as with a
//! single ack; if the process dies first, the task is still in flight and is recovered.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::{Queue, QueueError, RawTask};

struct PendingAck {
    /// (task as dequeued, task id, summary), as `Queue::ack_many` takes it.
    done: (RawTask, String, serde_json::Value),
    reply: oneshot::Sender<Result<bool, QueueError>>,
}

/// A handle to one worker's ack batching task; clones share it. The task ends when the last
/// handle is dropped.
#[derive(Clone)]
pub struct AckBatcher {
    tx: mpsc::Sender<PendingAck>,
    round_trips: Arc<AtomicU64>,
}

impl AckBatcher {
    /// Starts batching acks of `worker_id`'s tasks, at most `max_batch` per round trip. Needs a
    /// Tokio runtime.
    ///
    /// The batching task runs on `tracker` and ends once `stop` is cancelled and every ack
    /// already handed to it is written (or when the last handle is dropped).
    pub fn spawn(
        queue: Queue,
        worker_id: String,
        max_batch: usize,
        tracker: &TaskTracker,
        stop: CancellationToken,
    ) -> Self {
        let max_batch = max_batch.max(1);
        let (tx, mut rx) = mpsc::channel::<PendingAck>(max_batch * 4);
        let round_trips = Arc::new(AtomicU64::new(0));
        let counter = round_trips.clone();
        tracker.spawn(async move {
            let mut batch = Vec::with_capacity(max_batch);
            loop {
                // Waits for one ack, then takes whatever else is already waiting. On stop, no
                // new ack is taken in, and those already sent are still written.
                let received = tokio::select! {
                    biased;
                    n = rx.recv_many(&mut batch, max_batch) => n,
                    () = stop.cancelled() => {
                        rx.close();
                        rx.recv_many(&mut batch, max_batch).await
                    }
                };
                if received == 0 {
                    break;
                }
                let (done, replies): (Vec<_>, Vec<_>) =
                    batch.drain(..).map(|p| (p.done, p.reply)).unzip();
                counter.fetch_add(1, Ordering::Relaxed);
                match queue.ack_many(&worker_id, &done).await {
                    Ok(removed) => {
                        for (reply, removed) in replies.into_iter().zip(removed) {
                            let _ = reply.send(Ok(removed));
                        }
                    }
                    Err(err) => {
                        let reason = crate::error_chain(&err);
                        for reply in replies {
                            let _ = reply.send(Err(QueueError::BatchedAck(reason.clone())));
                        }
                    }
                }
            }
        });
        Self { tx, round_trips }
    }

    /// Acks one task (with the others waiting at the same moment). Returns false if it was no
    /// longer in flight.
    pub async fn ack(
        &self,
        raw: &[u8],
        task_id: &str,
        summary: serde_json::Value,
    ) -> Result<bool, QueueError> {
        let (reply, answer) = oneshot::channel();
        let pending = PendingAck {
            done: (raw.to_vec(), task_id.to_owned(), summary),
            reply,
        };
        let gone = || QueueError::BatchedAck("the ack batcher stopped".into());
        self.tx.send(pending).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// Round trips made so far (for the benchmark).
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }
}
