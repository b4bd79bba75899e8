//! The vectorize stage: a TF-IDF model fitted on the active postings (those in `jobs` and the
//! batch's own, the batch's version winning), computed off the async threads.
use std::collections::HashSet;

use sqlx::PgPool;
use trawl_scrape::Posting;
use uuid::Uuid;

use crate::error::StageError;
use crate::tfidf::{Model, Settings, SparseVector};
use crate::transform::posting_text;

pub struct Fitted {
    pub model: Model,
    pub vectors: Vec<(Uuid, SparseVector)>,
    pub from_batch: usize,
}

pub async fn fit(db: &PgPool, postings: &[Posting]) -> Result<Fitted, StageError> {
    let batch_ids: Vec<Uuid> = postings.iter().map(|p| p.job_id).collect();
    let stored = sqlx::query!(
        "SELECT job_id, job_title, job_description FROM jobs \
         WHERE is_active AND job_id <> ALL($1) ORDER BY job_id",
        &batch_ids,
    )
    .fetch_all(db)
    .await?;
    let mut ids: Vec<Uuid> = Vec::with_capacity(stored.len() + postings.len());
    let mut texts: Vec<String> = Vec::with_capacity(ids.capacity());
    let mut seen = HashSet::new();
    for p in postings {
        if seen.insert(p.job_id) {
            ids.push(p.job_id);
            texts.push(posting_text(&p.job_title, p.job_description.as_deref()));
        }
    }
    let from_batch = ids.len();
    for row in stored {
        ids.push(row.job_id);
        texts.push(posting_text(&row.job_title, row.job_description.as_deref()));
    }
    if texts.len() < 2 {
        return Err(StageError::permanent(format!(
            "{} posting(s) to fit on: TF-IDF with min_df 2 needs at least 2",
            texts.len()
        )));
    }
    let (model, vectors) =
        tokio::task::spawn_blocking(move || Model::fit(&texts, Settings::default()))
            .await
            .map_err(|err| StageError::permanent(format!("fitting panicked: {err}")))?;
    if model.terms.is_empty() {
        return Err(StageError::permanent(
            "no term appears in 2 postings and in at most 80% of them: nothing to vectorize",
        ));
    }
    Ok(Fitted {
        model,
        vectors: ids.into_iter().zip(vectors).collect(),
        from_batch,
    })
}
