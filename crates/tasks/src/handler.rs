//! The trait a kind of work implements.
use std::future::Future;
use std::time::Duration;

use queue_core::store::RunReport;
use queue_core::{Plan, Services};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One kind of work. Adding a kind is a module implementing this and one `register` line.
///
/// The payload type is the task's fields besides the envelope, read strictly: derive
/// `Deserialize` with `#[serde(deny_unknown_fields)]`, so a field the kind does not know sends
/// the task to the dead-letter list with the reason instead of being ignored.
pub trait Handler: Send + Sync + 'static {
    type Payload: Serialize + DeserializeOwned + Send + 'static;
    /// The name tasks give in `"kind"`.
    const KIND: &'static str;
    /// The queue its tasks go to.
    const QUEUE: &'static str;

    /// Checks the payload's values beyond their types (ranges, NUL, lengths). The reason is
    /// what the dead-letter list or the API's 400 says.
    fn check(_payload: &Self::Payload) -> Result<(), String> {
        Ok(())
    }

    /// Completes a payload before its run is recorded (defaults) and decides the run's plan:
    /// queue, run lock, retry budget. Called by the worker for tasks that arrive without a run
    /// (hand-written); submitters may call it too. A fatal error refuses the task.
    fn plan(
        &self,
        _payload: &mut Self::Payload,
    ) -> impl Future<Output = Result<Plan, HandlerError>> + Send {
        std::future::ready(Ok(Plan {
            queue: Self::QUEUE.to_owned(),
            lock_key: None,
            max_retries: 3,
        }))
    }

    /// Runs one attempt. `Ok` carries how the run ended (a `failed` report is a failure not
    /// worth retrying, like a site that answers 404); `Err` says whether it is worth retrying.
    /// It should stop by itself at `ctx.time_limit` and when `ctx.cancel` fires, returning what
    /// it did; the lifecycle stops it a few seconds later regardless.
    fn run(
        &self,
        ctx: RunContext,
        payload: Self::Payload,
    ) -> impl Future<Output = Result<RunReport, HandlerError>> + Send;

    /// Releases what the handler holds (a scrape's browsers) when its worker stops.
    fn close(&self) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }
}

/// What an attempt knows about itself.
#[derive(Clone)]
pub struct RunContext {
    pub services: Services,
    pub run_id: String,
    pub task_id: String,
    /// The attempt number: the fencing token every write of this attempt is compared with.
    pub attempt: i32,
    /// How long the attempt may run (JOB_TIMEOUT).
    pub time_limit: Duration,
    /// Fired when an operator cancels the run.
    pub cancel: CancellationToken,
}

/// How an attempt failed: worth another attempt (`Retryable`, optionally after `delay`) or not
/// (`Fatal`). The retry decision lives here, in the error, not in the caller.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("{error}")]
    Retryable {
        #[source]
        error: BoxError,
        /// Wait this long before the retry; None: the lifecycle's backoff.
        delay: Option<Duration>,
        /// What the attempt did before it failed, if it has more to say than the error.
        report: Option<Box<RunReport>>,
    },
    #[error("{error}")]
    Fatal {
        #[source]
        error: BoxError,
        report: Option<Box<RunReport>>,
    },
}

impl HandlerError {
    pub fn retryable(error: impl Into<BoxError>) -> Self {
        HandlerError::Retryable {
            error: error.into(),
            delay: None,
            report: None,
        }
    }

    pub fn fatal(error: impl Into<BoxError>) -> Self {
        HandlerError::Fatal {
            error: error.into(),
            report: None,
        }
    }

    /// Attaches what the attempt did (its figures, its detailed errors).
    pub fn with_report(mut self, with: RunReport) -> Self {
        match &mut self {
            HandlerError::Retryable { report, .. } | HandlerError::Fatal { report, .. } => {
                *report = Some(Box::new(with));
            }
        }
        self
    }

    /// Asks for the retry to wait `delay` rather than the lifecycle's backoff.
    pub fn with_delay(mut self, wait: Duration) -> Self {
        if let HandlerError::Retryable { delay, .. } = &mut self {
            *delay = Some(wait);
        }
        self
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, HandlerError::Retryable { .. })
    }

    /// The failed run's report: the handler's, or one made of the error and its sources.
    pub fn into_report(self) -> RunReport {
        let (error, report) = match self {
            HandlerError::Retryable { error, report, .. }
            | HandlerError::Fatal { error, report } => (error, report),
        };
        let mut report = report.map_or_else(|| RunReport::failed(error_chain(&*error)), |r| *r);
        report.status = queue_core::store::RunStatus::Failed;
        report
    }
}

pub use queue_core::error_chain;
