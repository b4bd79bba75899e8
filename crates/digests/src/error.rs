#[derive(Debug, thiserror::Error)]
pub enum DigestsError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] queue_core::StoreError),
    #[error(transparent)]
    Submit(#[from] queue_core::SubmitError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("no subscriber {0}")]
    UnknownSubscriber(i64),
    #[error("no subscription with this link (it may have been replaced)")]
    UnknownToken,
    #[error(transparent)]
    Send(#[from] crate::mailer::SendError),
    /// This worker has no SMTP_URL.
    #[error("this worker cannot send mail: SMTP_URL is not set")]
    NoMailer,
}
