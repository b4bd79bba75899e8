//! The scheduler loop. Any number of schedulers may run; one holds the leader lease and runs
//! the passes, the others wait to take over. Even a split-brain moment cannot start two runs of
//! one site: the per-site lock and the schedule's compare-and-set still guard each run.
use metrics::{counter, gauge};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use telemetry::metric;

use queue_core::Services;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::{error, info, warn};

use crate::run_pass_alerting;

pub struct Scheduler {
    pub services: Services,
    /// Names this instance: its lease token and the origin of its passes.
    pub id: String,
    /// Time between passes.
    pub interval: Duration,
    /// Most sites scheduled in one pass (the rest wait for the next).
    pub batch: i64,
    /// The leader lease lasts this long unless renewed (every third of it).
    pub leader_ttl: Duration,
    /// Where the pipelines' alerts go (ALERT_WEBHOOK_URL).
    pub alerts: trawl_pipeline::Alerts,
}

impl Scheduler {
    /// Runs until `shutdown`: keeps or seeks the leader lease, and passes while leading. A
    /// failing pass (database or Redis down) is logged when the outage starts and when it ends,
    /// not at every pass.
    pub async fn run(self, shutdown: CancellationToken) {
        info!(scheduler_id = %self.id, interval = ?self.interval, "scheduler started");
        let leading = Arc::new(AtomicBool::new(false));
        let lease = AbortOnDropHandle::new(tokio::spawn(hold_leadership(
            self.services.clone(),
            self.id.clone(),
            self.leader_ttl,
            leading.clone(),
            shutdown.clone(),
        )));
        // Dropping `lease` (this future aborted) stops the renewals too: a killed scheduler's
        // lease runs out and a follower takes over.
        let origin = format!("daemon:{}", self.id);
        let mut failing = false;
        loop {
            if leading.load(Ordering::SeqCst) {
                // Not cancelled midway: a pass is short, and stopping between a site's lock and
                // its enqueue would leave a queued run without a task until the reconciler.
                let pass =
                    run_pass_alerting(&self.services, &origin, self.batch, &self.alerts).await;
                let result = if pass.is_ok() { "ok" } else { "failed" };
                counter!(metric::SCHEDULER_PASSES, "result" => result).increment(1);
                match pass {
                    Ok(stats) => {
                        if std::mem::take(&mut failing) {
                            info!("scheduler passes work again");
                        }
                        if stats.due > 0 || stats.recovered_workers > 0 || stats.reconciled > 0 {
                            info!(
                                due = stats.due,
                                enqueued = stats.enqueued,
                                skipped_locked = stats.skipped_locked,
                                recovered_workers = stats.recovered_workers,
                                reconciled = stats.reconciled,
                                errors = stats.errors,
                                event = "pass",
                                "scheduler pass"
                            );
                        }
                    }
                    Err(err) => {
                        if !std::mem::replace(&mut failing, true) {
                            error!(
                                error = format!("{err:#}"),
                                "scheduler pass failed; retrying every interval"
                            );
                        }
                    }
                }
            }
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.interval) => {}
            }
        }
        let _ = lease.await;
        info!("scheduler stopped");
    }
}

/// Keeps the leader lease (renewing every third of its TTL) or tries to take it, and says which
/// in `leading`. The moment a renewal fails, this scheduler stops acting. At shutdown the lease
/// is given up so a follower takes over at once rather than after the TTL.
async fn hold_leadership(
    services: Services,
    token: String,
    ttl: Duration,
    leading: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let key = services.keys().scheduler_leader();
    let every = (ttl / 3).max(Duration::from_millis(50));
    loop {
        let was_leading = leading.load(Ordering::SeqCst);
        let holds = if was_leading {
            services.locks.renew_lease(&key, &token, ttl).await
        } else {
            services.locks.hold_lease(&key, &token, ttl).await
        };
        match (was_leading, holds) {
            (false, Ok(true)) => {
                leading.store(true, Ordering::SeqCst);
                counter!(metric::SCHEDULER_LEADER_CHANGES).increment(1);
                gauge!(metric::SCHEDULER_LEADER).set(1.0);
                info!(scheduler_id = %token, event = "leader", "this scheduler leads");
            }
            (true, Ok(false)) | (true, Err(_)) => {
                leading.store(false, Ordering::SeqCst);
                counter!(metric::SCHEDULER_LEADER_CHANGES).increment(1);
                gauge!(metric::SCHEDULER_LEADER).set(0.0);
                warn!(scheduler_id = %token, event = "follower", "leader lease lost; stopped scheduling");
            }
            _ => {}
        }
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(every) => {}
        }
    }
    if leading.swap(false, Ordering::SeqCst) {
        gauge!(metric::SCHEDULER_LEADER).set(0.0);
        let _ = services.locks.release_lease(&key, &token).await;
    }
}

/// `<host>-<pid>-<random>`, like worker ids.
pub fn new_scheduler_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    format!(
        "{host}-{}-{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}
