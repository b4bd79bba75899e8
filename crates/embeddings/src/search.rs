//! Ranking postings for a query: full text (`ts_rank_cd` over `jobs.search`), semantic (cosine
//! distance to the query's vector through the HNSW index, the active model's vectors only) and
//! hybrid (reciprocal rank fusion of the two). Each gives posting ids best first; the caller
//! applies the postings API's filters in that order (`trawl_scrape_runs::search::filter_ranked`).
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::EmbeddingsError;

/// Candidates each ranking returns before filters; a filtered search shows the best of these.
pub const CANDIDATES: i64 = 200;
/// Reciprocal rank fusion's constant (Cormack et al. 2009): a posting's fused score is
/// Σ 1 / (K + rank) over the rankings it appears in.
pub const RRF_K: f64 = 60.0;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Words: PostgreSQL full text, ranked by cover density.
    Fulltext,
    /// Meaning: nearest vectors of the active model.
    Semantic,
    /// Both, fused by reciprocal rank.
    #[default]
    Hybrid,
}

/// Postings holding every word of `q` (web-search syntax, as the postings API's `q`), best
/// first: hybrid search's words side. Precise rather than broad — meaning brings the recall,
/// and a posting that also has all the words the user typed rises to the top; an OR match
/// here would lift postings that share one common word ("engineer") over better meanings.
pub async fn fulltext_all_ranked(
    db: &PgPool,
    q: &str,
    limit: i64,
) -> Result<Vec<Uuid>, EmbeddingsError> {
    Ok(sqlx::query_scalar!(
        "SELECT job_id FROM jobs, websearch_to_tsquery('english', $1) query \
         WHERE is_active AND search @@ query \
         ORDER BY ts_rank_cd(search, query) DESC, first_seen_at DESC, job_id LIMIT $2",
        q,
        limit,
    )
    .fetch_all(db)
    .await?)
}

/// Postings sharing words with `q`, best first: any of its words matches (the postings API's
/// `q` filter wants all of them, which finds nothing for most phrasings), ranked by how many
/// and how close together (`ts_rank_cd`).
pub async fn fulltext_ranked(
    db: &PgPool,
    q: &str,
    limit: i64,
) -> Result<Vec<Uuid>, EmbeddingsError> {
    Ok(sqlx::query_scalar!(
        "SELECT job_id FROM jobs, \
             CAST(replace(plainto_tsquery('english', $1)::text, ' & ', ' | ') AS tsquery) query \
         WHERE is_active AND search @@ query \
         ORDER BY ts_rank_cd(search, query) DESC, first_seen_at DESC, job_id LIMIT $2",
        q,
        limit,
    )
    .fetch_all(db)
    .await?)
}

/// Postings whose `model` vectors are nearest `vector` by cosine, best first, with their
/// similarity (1 − distance).
pub async fn semantic_ranked(
    db: &PgPool,
    model: &str,
    vector: &[f32],
    limit: i64,
) -> Result<Vec<(Uuid, f64)>, EmbeddingsError> {
    let mut tx = db.begin().await?;
    // The index returns at most ef_search rows; it must cover the candidates asked for.
    // Iterative scans keep going when the model filter drops rows (another model's vectors).
    sqlx::query!(
        "SELECT set_config('hnsw.ef_search', $1, true) AS ef_search, \
                set_config('hnsw.iterative_scan', 'relaxed_order', true) AS iterative_scan",
        limit.clamp(40, 1000).to_string(),
    )
    .fetch_one(&mut *tx)
    .await?;
    let rows = sqlx::query!(
        "SELECT e.job_id, 1 - (e.embedding <=> $2::float4[]::vector) AS \"similarity!\" \
         FROM posting_embeddings e JOIN jobs j USING (job_id) \
         WHERE e.model = $1 AND j.is_active \
         ORDER BY e.embedding <=> $2::float4[]::vector LIMIT $3",
        model,
        vector,
        limit,
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows.into_iter().map(|r| (r.job_id, r.similarity)).collect())
}

/// Postings nearest a posting by its own vector (itself left out), with their similarity.
pub async fn similar(
    db: &PgPool,
    model: &str,
    job_id: Uuid,
    limit: i64,
) -> Result<Option<Vec<(Uuid, f64)>>, EmbeddingsError> {
    let vector = sqlx::query_scalar!(
        "SELECT embedding::float4[] AS \"v!\" FROM posting_embeddings WHERE job_id = $1 AND model = $2",
        job_id,
        model,
    )
    .fetch_optional(db)
    .await?;
    let Some(vector) = vector else {
        return Ok(None);
    };
    let mut nearest = semantic_ranked(db, model, &vector, limit + 1).await?;
    nearest.retain(|(id, _)| *id != job_id);
    nearest.truncate(limit as usize);
    Ok(Some(nearest))
}

/// Reciprocal rank fusion: each list's i-th posting scores 1 / (K + i + 1); ties keep the
/// first list's order.
pub fn fuse(rankings: &[&[Uuid]]) -> Vec<Uuid> {
    let mut scores: HashMap<Uuid, (f64, usize)> = HashMap::new();
    let mut order = 0;
    for ranking in rankings {
        for (rank, id) in ranking.iter().enumerate() {
            let entry = scores.entry(*id).or_insert_with(|| {
                order += 1;
                (0.0, order)
            });
            entry.0 += 1.0 / (RRF_K + rank as f64 + 1.0);
        }
    }
    let mut fused: Vec<(Uuid, (f64, usize))> = scores.into_iter().collect();
    fused.sort_by(|a, b| b.1.0.total_cmp(&a.1.0).then(a.1.1.cmp(&b.1.1)));
    fused.into_iter().map(|(id, _)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fusion_rewards_agreement_and_keeps_single_list_order() {
        let [a, b, c, d] = [0u128, 1, 2, 3].map(Uuid::from_u128);
        // b is second in both lists: it beats a (first in one, absent in the other).
        assert_eq!(fuse(&[&[a, b, c], &[d, b]]), vec![b, a, d, c]);
        assert_eq!(fuse(&[&[c, a]]), vec![c, a]);
        assert!(fuse(&[]).is_empty());
    }
}
