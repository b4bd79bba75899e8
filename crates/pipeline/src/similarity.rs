//! "Similar postings" and `rank=tfidf`: the active model's vectors held in memory with an
//! inverted index (feature → the postings that have it, with their weight), so a query's cosine
//! with every posting is one pass over its own features' lists. Loaded once per model version
//! per process, reloaded when another version becomes active.
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::PipelineError;
use crate::models::{active_model, active_version};
use crate::tfidf::{Model, SparseVector};

/// A posting and how close it is.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Scored {
    pub job_id: Uuid,
    pub score: f64,
}

/// A model with its postings' vectors, ready to answer.
pub struct ActiveModel {
    pub version: String,
    pub model: Model,
    ids: Vec<Uuid>,
    by_id: FxHashMap<Uuid, usize>,
    vectors: Vec<SparseVector>,
    /// Per feature: (posting, weight).
    lists: Vec<Vec<(u32, f32)>>,
}

impl ActiveModel {
    /// Reads the model and every vector it stored.
    async fn load(pool: &PgPool) -> Result<Option<ActiveModel>, PipelineError> {
        let Some((version, model)) = active_model(pool).await? else {
            return Ok(None);
        };
        let rows = sqlx::query!(
            "SELECT job_id, vector FROM posting_vectors WHERE model_version = $1",
            version
        )
        .fetch_all(pool)
        .await?;
        let mut lists: Vec<Vec<(u32, f32)>> = vec![Vec::new(); model.terms.len()];
        let (mut ids, mut vectors) = (
            Vec::with_capacity(rows.len()),
            Vec::with_capacity(rows.len()),
        );
        for row in rows {
            let vector = SparseVector::unpack(&row.vector).ok_or_else(|| {
                PipelineError::Refused(format!(
                    "model {version}: a vector of {} is corrupt",
                    row.job_id
                ))
            })?;
            let at = ids.len() as u32;
            for (feature, weight) in vector.features.iter().zip(&vector.weights) {
                if let Some(list) = lists.get_mut(*feature as usize) {
                    list.push((at, *weight as f32));
                }
            }
            ids.push(row.job_id);
            vectors.push(vector);
        }
        let by_id = ids.iter().enumerate().map(|(at, id)| (*id, at)).collect();
        Ok(Some(ActiveModel {
            version,
            model,
            ids,
            by_id,
            vectors,
            lists,
        }))
    }

    /// A stored posting's vector.
    pub fn vector_of(&self, job_id: Uuid) -> Option<&SparseVector> {
        self.by_id.get(&job_id).map(|at| &self.vectors[*at])
    }

    /// The `limit` postings closest to `vector` (cosine, highest first; ties by id), `except`
    /// left out.
    pub fn nearest(
        &self,
        vector: &SparseVector,
        except: Option<Uuid>,
        limit: usize,
    ) -> Vec<Scored> {
        let mut scores: FxHashMap<u32, f64> = FxHashMap::default();
        for (feature, weight) in vector.features.iter().zip(&vector.weights) {
            for (posting, theirs) in self.lists.get(*feature as usize).into_iter().flatten() {
                *scores.entry(*posting).or_default() += weight * f64::from(*theirs);
            }
        }
        let mut scored: Vec<Scored> = scores
            .into_iter()
            .map(|(at, score)| Scored {
                job_id: self.ids[at as usize],
                score,
            })
            .filter(|s| s.score > 0.0 && Some(s.job_id) != except)
            .collect();
        scored.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.job_id.cmp(&b.job_id)));
        scored.truncate(limit);
        scored
    }
}

/// The active model of this process, reloaded when another version becomes active.
#[derive(Clone, Default)]
pub struct SimilarityCache(Arc<tokio::sync::Mutex<Option<Arc<ActiveModel>>>>);

impl SimilarityCache {
    /// The active model (None before any batch exported one).
    pub async fn active(&self, pool: &PgPool) -> Result<Option<Arc<ActiveModel>>, PipelineError> {
        let Some(version) = active_version(pool).await? else {
            return Ok(None);
        };
        let mut cached = self.0.lock().await;
        if let Some(model) = cached.as_ref().filter(|m| m.version == version) {
            return Ok(Some(model.clone()));
        }
        let loaded = ActiveModel::load(pool).await?.map(Arc::new);
        cached.clone_from(&loaded);
        Ok(loaded)
    }
}
