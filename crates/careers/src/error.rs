#[derive(Debug, thiserror::Error)]
pub enum CareersError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] queue_core::StoreError),
    #[error(transparent)]
    Submit(#[from] queue_core::SubmitError),
    #[error("{0}")]
    Invalid(String),
    /// A CSV file refused, every bad line named; nothing was imported.
    #[error("nothing imported: {}", .0.join("; "))]
    Csv(Vec<String>),
    #[error("no company {0:?}")]
    UnknownCompany(String),
    #[error(transparent)]
    Page(trawl_scrape::ScrapeError),
    /// The page is not a posting the validate stage accepts.
    #[error("refused: {0}")]
    Refused(String),
    /// A later attempt of the run took over: this one must not write.
    #[error("run {0} was taken over by a later attempt")]
    Superseded(String),
}
