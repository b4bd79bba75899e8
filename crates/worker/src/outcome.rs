//! What a worker reports: how processing one message ended, and why it could not.
use std::time::Duration;

use queue_core::store::RunStatus;
use queue_core::{QueueError, StoreError, SubmitError};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Failing a run from outside its attempt (`queue_core::fail_run`).
    #[error(transparent)]
    Submit(#[from] SubmitError),
    /// The task's kind could not plan its run (a fatal one refuses the task).
    #[error("cannot plan the run: {0}")]
    Plan(#[source] trawl_tasks::HandlerError),
}

impl WorkerError {
    /// Redis or PostgreSQL could not be reached: the same task may well go through later, so
    /// it is given back without counting against it.
    pub fn is_outage(&self) -> bool {
        match self {
            WorkerError::Store(err) => err.is_unavailable(),
            WorkerError::Queue(err) | WorkerError::Submit(SubmitError::Queue(err)) => {
                err.is_unavailable()
            }
            WorkerError::Submit(SubmitError::Store(err)) => err.is_unavailable(),
            WorkerError::Submit(_) => false,
            // Retryable: the kind could not reach what it plans with (its database).
            WorkerError::Plan(err) => err.is_retryable(),
        }
    }
}

/// What processing one message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// The run ended with this status and the task was acked.
    Finished { run_id: String, status: RunStatus },
    /// The message could not be run; it is in the dead-letter list with the reason.
    DeadLettered { reason: String },
    /// The run had already ended (a duplicate delivery); acked without running again.
    Duplicate { run_id: String, status: RunStatus },
    /// The attempt failed transiently; the task waits in the delayed set for retry `retry`.
    Retrying {
        run_id: String,
        retry: i32,
        delay: Duration,
    },
    /// A newer attempt of the run started elsewhere while this one ran; this worker wrote
    /// nothing and dropped its copy of the task.
    Superseded { run_id: String },
    /// Another run holds the site's lock; the task waits in the delayed set to try again.
    WaitingForLock { run_id: String, holder: String },
    /// The run could not start: another session holds its row (a worker cut off
    /// mid-transaction, not yet ended by PostgreSQL). The task waits in the delayed set.
    StartBlocked { run_id: String },
}

/// Outcome of one `run_once` step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ran(Processed),
    Empty,
    /// The queue is paused: nothing was taken.
    Paused,
}
