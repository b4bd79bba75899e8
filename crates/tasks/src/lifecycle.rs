//! One attempt of a run, of any kind: run the handler in a task of its own (a panic fails the
//! run, not the worker), stop it at the time limit or when an operator cancels, and record how
//! it ended. Every write is compare-and-set on (run_id, attempt) and retried while PostgreSQL
//! is down, so a result is never dropped and a stale attempt never overwrites a newer one.
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use queue_core::store::{self, LedgerBatcher, RunReport, StartOutcome};
use queue_core::{Payload, Services, StoreError};
use rand::Rng;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::{Instrument, error, info};

use crate::{DynHandler, HandlerError, RunContext};

/// How long a handler gets past its time limit, or after a cancel, to stop by itself and say
/// what it did before the lifecycle stops it.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How often a running attempt checks whether it was cancelled: one cheap Redis read, and a
/// cancel takes effect within this much time.
const CANCEL_POLL: Duration = Duration::from_millis(500);
/// Longest wait between two tries of a result write while PostgreSQL is unreachable.
const MAX_WRITE_BACKOFF: Duration = Duration::from_secs(5);
/// Longest wait before a run's retry.
const MAX_RUN_RETRY_DELAY: Duration = Duration::from_secs(3600);

/// Runs attempts and records how they end.
#[derive(Clone)]
pub struct Lifecycle {
    pub services: Services,
    /// First delay before a transiently failed run is tried again (doubles per retry, with
    /// jitter). None: runs are never retried (the API's sync mode has no queue to wait in).
    pub retry_base: Option<Duration>,
    /// Batches the starts and ends of runs happening at the same moment into one statement
    /// each; None: one write per run (the API's sync mode runs one at a time).
    pub ledger: Option<LedgerBatcher>,
}

/// How one attempt of a run ended.
#[derive(Debug)]
pub enum Ended {
    /// The run's terminal status is written.
    Finished(RunReport),
    /// The attempt failed transiently: the run is `queued` again for its `retry`-th retry, due
    /// after `delay`; the caller parks the task in the delayed set.
    Retry {
        report: RunReport,
        retry: i32,
        delay: Duration,
    },
    /// A newer attempt of the run started elsewhere (this worker's task was recovered while it
    /// still ran): nothing was written, the newer attempt owns the run.
    Superseded(RunReport),
}

impl Ended {
    pub fn report(&self) -> &RunReport {
        match self {
            Ended::Finished(report) | Ended::Superseded(report) => report,
            Ended::Retry { report, .. } => report,
        }
    }
}

impl Lifecycle {
    /// Runs attempt `ctx.attempt` of a `running` run with `handler` and records how it ended.
    pub async fn run_attempt(
        &self,
        handler: &Arc<dyn DynHandler>,
        ctx: RunContext,
        payload: Payload,
    ) -> Result<Ended, StoreError> {
        let (run_id, attempt, limit) = (ctx.run_id.clone(), ctx.attempt, ctx.time_limit);
        let cancel = ctx.cancel.clone();
        // Aborted if this future is dropped (shutdown after the grace period), so no attempt
        // outlives the task that owns it.
        let mut handle =
            AbortOnDropHandle::new(tokio::spawn(handler.run(ctx, payload).in_current_span()));
        let stopped = |message: &str| Err(HandlerError::fatal(message.to_owned()));
        let outcome = tokio::select! {
            joined = tokio::time::timeout(limit + STOP_GRACE, &mut handle) => match joined {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(join)) if join.is_panic() => stopped("the task panicked"),
                Ok(Err(_)) => stopped("the task was cancelled"),
                Err(_) => Err(HandlerError::retryable(format!(
                    "timed out after {} s (JOB_TIMEOUT)",
                    limit.as_secs()
                ))),
            },
            () = self.cancel_requested(&run_id) => {
                // Asked to stop: the handler gets STOP_GRACE to say what it did.
                cancel.cancel();
                match tokio::time::timeout(STOP_GRACE, &mut handle).await {
                    Ok(Ok(Err(err))) => Err(err),
                    Ok(Ok(Ok(report))) => Err(HandlerError::fatal(format!(
                        "cancelled by an operator; {}", report.message
                    ))),
                    _ => stopped("cancelled by an operator"),
                }
            }
        };
        if let Err(err) = &outcome {
            error!(event = "attempt_failed", retryable = err.is_retryable(), error = %crate::handler::error_chain(err), "attempt failed");
        }
        self.end_attempt(&run_id, attempt, outcome).await
    }

    /// Writes how the attempt ended: a retry when it failed in a retryable way and the run has
    /// retries left, else the terminal status.
    pub async fn end_attempt(
        &self,
        run_id: &str,
        attempt: i32,
        outcome: Result<RunReport, HandlerError>,
    ) -> Result<Ended, StoreError> {
        let report = match outcome {
            Ok(report) => report,
            Err(err) => {
                let asked_delay = match &err {
                    HandlerError::Retryable { delay, .. } => Some(*delay),
                    HandlerError::Fatal { .. } => None,
                };
                let report = err.into_report();
                if let (Some(asked), Some(base)) = (asked_delay, self.retry_base) {
                    let retried = self
                        .persist("retry", || {
                            store::retry_run(
                                &self.services.db,
                                run_id,
                                attempt,
                                |n| asked.unwrap_or_else(|| retry_delay(base, n, &mut rand::rng())),
                                &report,
                            )
                        })
                        .await?;
                    if let Some((retry, delay)) = retried {
                        return Ok(Ended::Retry {
                            report,
                            retry,
                            delay,
                        });
                    }
                }
                report
            }
        };
        let finished = self
            .persist("result", || async {
                match &self.ledger {
                    Some(ledger) => ledger.finish(run_id, attempt, &report).await,
                    None => store::finish_run(&self.services.db, run_id, attempt, &report).await,
                }
            })
            .await?;
        Ok(if finished {
            Ended::Finished(report)
        } else {
            Ended::Superseded(report)
        })
    }

    /// Runs a result write until it lands. While PostgreSQL is unreachable it tries again with
    /// capped backoff, logging once per outage; the task stays in flight meanwhile. Any other
    /// error is returned (and the task stays in flight for recovery to judge).
    async fn persist<T, F, Fut>(&self, what: &str, mut write: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let mut backoff = Duration::from_millis(100);
        let mut failing = false;
        loop {
            match write().await {
                Ok(value) => {
                    if failing {
                        info!(write = what, "database is back; result stored");
                    }
                    return Ok(value);
                }
                Err(err) if err.is_unavailable() => {
                    if !std::mem::replace(&mut failing, true) {
                        error!(
                            write = what,
                            error = format!("{err:#}"),
                            "cannot store the run's result; keeping the task and retrying"
                        );
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_WRITE_BACKOFF);
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Resolves once someone asked to cancel the run (checked every `CANCEL_POLL`).
    async fn cancel_requested(&self, run_id: &str) {
        loop {
            tokio::time::sleep(CANCEL_POLL).await;
            if matches!(
                self.services.queue.is_cancel_requested(run_id).await,
                Ok(true)
            ) {
                return;
            }
        }
    }

    /// Starts a run as its next attempt (`store::start_run`, batched when there is a ledger
    /// batcher).
    pub async fn start(
        &self,
        run_id: &str,
        task_id: &str,
        worker_id: &str,
    ) -> Result<StartOutcome, StoreError> {
        match &self.ledger {
            Some(ledger) => ledger.start(run_id, task_id, worker_id).await,
            None => store::start_run(&self.services.db, run_id, task_id, worker_id).await,
        }
    }

    /// A context for attempt `attempt` of `run_id`.
    pub fn context(&self, run_id: &str, task_id: &str, attempt: i32) -> RunContext {
        RunContext {
            services: self.services.clone(),
            run_id: run_id.to_owned(),
            task_id: task_id.to_owned(),
            attempt,
            time_limit: self.services.job_timeout,
            cancel: CancellationToken::new(),
        }
    }
}

/// The delay before retry `n` (1-based): `base * 2^(n-1)`, capped at an hour, times a random
/// factor in [0.5, 1.5) so runs that failed together do not all come back together.
pub fn retry_delay(base: Duration, n: i32, rng: &mut impl Rng) -> Duration {
    let doubling = 2u32.saturating_pow(n.clamp(1, 31) as u32 - 1);
    let delay = base.saturating_mul(doubling).min(MAX_RUN_RETRY_DELAY);
    delay.mul_f64(rng.random_range(0.5..1.5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_with_jitter_and_a_cap() {
        let base = Duration::from_secs(10);
        let mut rng = rand::rng();
        for n in 1..=4 {
            let expected = base * 2u32.pow(n as u32 - 1);
            for _ in 0..50 {
                let delay = retry_delay(base, n, &mut rng);
                assert!(
                    delay >= expected / 2 && delay < expected.mul_f64(1.5),
                    "retry {n}: {delay:?}"
                );
            }
        }
        assert!(retry_delay(base, 30, &mut rng) < MAX_RUN_RETRY_DELAY.mul_f64(1.5));
        let spread: std::collections::HashSet<_> =
            (0..20).map(|_| retry_delay(base, 1, &mut rng)).collect();
        assert!(spread.len() > 1, "jitter varies the delay");
    }
}
