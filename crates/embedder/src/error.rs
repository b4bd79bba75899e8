use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// Worth trying again: the server is busy (429, with its Retry-After), broken for now
    /// (5xx), unreachable or slow.
    #[error("embedding provider unavailable: {message}")]
    Unavailable {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The provider refused the request (4xx other than 429): trying again would not help.
    #[error("embedding provider refused the request: {0}")]
    Refused(String),
    /// The answer did not have the shape of embeddings.
    #[error("malformed embeddings: {0}")]
    Malformed(String),
    /// The in-process model failed (a tensor operation, the tokenizer).
    #[error("model: {0}")]
    Model(String),
    /// The configuration cannot work; names the variable.
    #[error("{variable}: {message}")]
    Config {
        variable: &'static str,
        message: String,
    },
}

impl EmbedError {
    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            EmbedError::Unavailable { .. } | EmbedError::Malformed(_)
        )
    }

    pub(crate) fn config(variable: &'static str, message: impl Into<String>) -> Self {
        EmbedError::Config {
            variable,
            message: message.into(),
        }
    }
}
