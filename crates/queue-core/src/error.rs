use std::time::Duration;

/// Errors from the Redis side of trawl (queue, locks, metrics).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    #[error("redis command failed")]
    Redis(#[from] redis::RedisError),
    #[error("no redis connection available")]
    Pool(#[from] deadpool_redis::PoolError),
    #[error("could not connect to redis within {0:?}")]
    ConnectTimeout(Duration),
    /// A setting no process can run with; the message names its variable.
    #[error("{0}")]
    Config(String),
    #[error("batched ack failed: {0}")]
    BatchedAck(String),
}

impl QueueError {
    /// Redis could not be reached, or is not serving yet (loading, failing over): the same
    /// command may well succeed later. Anything else (a script error, a reply of the wrong
    /// shape) is a fault of trawl's, not an outage.
    pub fn is_unavailable(&self) -> bool {
        match self {
            QueueError::Redis(err) => {
                err.is_io_error()
                    || err.is_connection_dropped()
                    || err.is_connection_refusal()
                    || err.is_timeout()
                    || matches!(
                        err.kind(),
                        redis::ErrorKind::Server(
                            redis::ServerErrorKind::BusyLoading
                                | redis::ServerErrorKind::TryAgain
                                | redis::ServerErrorKind::MasterDown
                                | redis::ServerErrorKind::ClusterDown
                        )
                    )
            }
            QueueError::Pool(_) | QueueError::ConnectTimeout(_) | QueueError::BatchedAck(_) => true,
            QueueError::Config(_) => false,
        }
    }
}

/// Errors from the PostgreSQL side (runs, sites, postings).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database query failed")]
    Database(#[from] sqlx::Error),
    #[error("invalid site definition: {0}")]
    InvalidSite(String),
    /// A schedule refused at upsert; the text names the field.
    #[error("invalid schedule: {0}")]
    InvalidSchedule(String),
    /// A batched ledger write (several runs' starts or ends in one statement) failed; every
    /// run in the batch gets this, and whether the database was unreachable.
    #[error("batched ledger write failed: {reason}")]
    Batched { reason: String, unavailable: bool },
    /// Another session held the run's row longer than a writer outside its attempt waits
    /// (`store::HELD_ROW_WAIT` for a cancel, a few milliseconds for the reconciler); nothing
    /// was changed.
    #[error("run {run_id}'s row is held by another session")]
    RowHeld { run_id: String },
}

impl StoreError {
    /// PostgreSQL could not be reached or is restarting: the same statement may well succeed
    /// later, so callers holding a result retry instead of dropping it.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(err) => match err {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Protocol(_)
                | sqlx::Error::WorkerCrashed => true,
                // Class 08: connection exceptions; 57P01-03: shutting down, crashed, starting up.
                sqlx::Error::Database(db) => db
                    .code()
                    .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
                _ => false,
            },
            StoreError::InvalidSite(_)
            | StoreError::InvalidSchedule(_)
            | StoreError::RowHeld { .. } => false,
            StoreError::Batched { unavailable, .. } => *unavailable,
        }
    }
}

/// An error and its sources, outermost first: "a: b: c" (a top-level message rarely says what
/// went wrong; its sources do). A source whose text its parent already ends with is not
/// repeated.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
