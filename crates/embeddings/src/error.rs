#[derive(Debug, thiserror::Error)]
pub enum EmbeddingsError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Submit(#[from] queue_core::SubmitError),
    #[error(transparent)]
    Queue(#[from] queue_core::QueueError),
    #[error("no embedding model {0:?} (a worker registers its model when it starts)")]
    UnknownModel(String),
    /// No model is active yet: no worker has embedded anything.
    #[error("no active embedding model yet (start a worker that serves the embeddings queue)")]
    NoActiveModel,
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Embed(#[from] trawl_embedder::EmbedError),
}
