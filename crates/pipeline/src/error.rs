//! Errors of the pipeline library and of a stage's attempt.
use crate::definition::DefinitionError;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Definition(#[from] DefinitionError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] queue_core::StoreError),
    #[error(transparent)]
    Submit(#[from] queue_core::SubmitError),
    #[error("{0}")]
    Refused(String),
}

/// How a stage's attempt failed: worth retrying (a source timing out, PostgreSQL away) or
/// permanent (a schema mismatch, every record refused): the batch stops at once.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{0}")]
    Transient(String),
    #[error("{0}")]
    Permanent(String),
}

impl StageError {
    pub fn transient(message: impl Into<String>) -> Self {
        StageError::Transient(message.into())
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        StageError::Permanent(message.into())
    }

    pub fn kind(&self) -> &'static str {
        match self {
            StageError::Transient(_) => "transient",
            StageError::Permanent(_) => "permanent",
        }
    }
}

/// The database failing mid-stage is worth another try.
impl From<PipelineError> for StageError {
    fn from(err: PipelineError) -> Self {
        match err {
            PipelineError::Definition(err) => StageError::permanent(err.to_string()),
            other => StageError::transient(queue_core::error_chain(&other)),
        }
    }
}

impl From<sqlx::Error> for StageError {
    fn from(err: sqlx::Error) -> Self {
        StageError::transient(format!("database: {err}"))
    }
}
