//! What keeps a worker known and its queues moving: heartbeats, promoting due retries, and
//! the drain at shutdown.
use std::sync::Arc;

use queue_core::{Task, store};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::{PROMOTE_EVERY, Worker};

impl Worker {
    /// Waits for running tasks up to the grace period, then stops the rest and requeues them.
    pub(super) async fn drain(&self, mut running: JoinSet<()>) {
        let waiting = running.len();
        if waiting > 0 {
            info!(running = waiting, grace = ?self.settings.shutdown_grace, "waiting for running tasks");
        }
        let finished = tokio::time::timeout(self.settings.shutdown_grace, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if finished.is_err() {
            warn!(
                still_running = running.len(),
                "grace period over; stopping and requeueing the rest"
            );
            running.shutdown().await;
        }
        for served in &self.served {
            self.requeue_left(&served.queue).await;
        }
    }

    /// Puts back what is still in this worker's in-flight list of `queue`, its runs `queued`.
    async fn requeue_left(&self, queue: &queue_core::Queue) {
        match queue.inflight(self.id()).await {
            Ok(left) => {
                for raw in &left {
                    if let Some(run_id) = Task::parse_bytes(raw).ok().and_then(|t| t.run_id) {
                        let _ = store::requeue_run(
                            &self.services.db,
                            &run_id,
                            None,
                            "requeued at worker shutdown",
                        )
                        .await;
                    }
                }
                match queue.requeue_inflight(self.id()).await {
                    Ok(moved) if moved > 0 => info!(requeued = moved, "requeued unfinished tasks"),
                    Ok(_) => {}
                    Err(err) => error!(
                        error = format!("{err:#}"),
                        "could not requeue unfinished tasks"
                    ),
                }
            }
            Err(err) => error!(
                error = format!("{err:#}"),
                "could not read in-flight tasks at shutdown"
            ),
        }
    }

    /// One heartbeat in every served queue (each queue's recovery reads its own `workers`).
    /// Says this worker is alive on every queue it serves, and that those queues are in use:
    /// registered again on every beat, so the set of queues heals after Redis lost its data
    /// (recovery and the reconciler reach only the queues in it).
    pub(super) async fn beat(&self) -> Result<(), queue_core::QueueError> {
        self.services.register_queues(&self.queues()).await?;
        for served in &self.served {
            served
                .queue
                .heartbeat(self.id(), self.settings.heartbeat_ttl)
                .await?;
        }
        Ok(())
    }

    pub(super) async fn heartbeat(self: Arc<Self>, shutdown: CancellationToken) {
        let every = self.settings.heartbeat_ttl / 3;
        let mut failing = false;
        loop {
            match self.beat().await {
                Ok(()) if std::mem::take(&mut failing) => info!("heartbeat restored"),
                Ok(()) => {}
                Err(err) if !std::mem::replace(&mut failing, true) => {
                    warn!(error = format!("{err:#}"), "heartbeat failed; retrying");
                }
                Err(_) => {}
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// Moves due retries to the queue every PROMOTE_EVERY, until shutdown.
    pub(super) async fn promote_retries(self: Arc<Self>, shutdown: CancellationToken) {
        let mut failing = false;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(PROMOTE_EVERY) => {}
            }
            let mut promoted = Ok(0);
            for served in &self.served {
                match served.queue.promote_due().await {
                    Ok(moved) => promoted = promoted.map(|sum| sum + moved),
                    Err(err) => promoted = Err(err),
                }
            }
            match promoted {
                Ok(moved) => {
                    failing = false;
                    if moved > 0 {
                        info!(moved, "due retries moved to the queue");
                    }
                }
                // The dequeue loop reports Redis outages; one line here is enough.
                Err(err) if !std::mem::replace(&mut failing, true) => {
                    warn!(error = format!("{err:#}"), "could not promote due retries");
                }
                Err(_) => {}
            }
        }
    }
}
