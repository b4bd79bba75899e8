//! Stored TF-IDF models: the vectorize stage writes one (`staged`), the export that follows
//! activates it, `trawl model activate` rolls back to another; the active one scores
//! "similar postings" and `rank=tfidf` (see `similarity`).
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::PipelineError;
use crate::tfidf::{Model, Settings, SparseVector};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ModelVersion {
    pub model_version: String,
    pub model_type: String,
    pub trained_on_jobs_count: i32,
    pub feature_count: i32,
    pub ngram_range: String,
    /// staged | active | archived
    pub status: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// Stores a fitted model (`staged`) with its vectors; returns its version id,
/// `tfidf_vYYYYMMDD_HHMMSS` of now, or of the next free second when taken.
pub async fn store_model(
    tx: &mut PgConnection,
    model: &Model,
    vectors: &[(Uuid, SparseVector)],
    batch_id: Uuid,
) -> Result<String, PipelineError> {
    let settings = serde_json::to_value(&model.settings).expect("settings serialize");
    let ngrams = format!(
        "({}, {})",
        model.settings.ngram_range.0, model.settings.ngram_range.1
    );
    let mut at = Utc::now();
    let version = loop {
        let version = at.format("tfidf_v%Y%m%d_%H%M%S").to_string();
        let inserted = sqlx::query!(
            "INSERT INTO model_versions (model_version, trained_on_jobs_count, feature_count, \
                 ngram_range, settings, status, created_by) \
             VALUES ($1, $2, $3, $4, $5, 'staged', $6) ON CONFLICT DO NOTHING",
            version,
            vectors.len() as i32,
            model.terms.len() as i32,
            ngrams,
            settings,
            batch_id,
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 1 {
            break version;
        }
        at += chrono::Duration::seconds(1);
    };
    let features: Vec<i32> = (0..model.terms.len() as i32).collect();
    sqlx::query!(
        "INSERT INTO model_terms (model_version, feature, term, idf) \
         SELECT $1, * FROM unnest($2::int[], $3::text[], $4::float8[])",
        version,
        &features,
        &model.terms,
        &model.idf,
    )
    .execute(&mut *tx)
    .await?;
    for chunk in vectors.chunks(5_000) {
        let ids: Vec<Uuid> = chunk.iter().map(|(id, _)| *id).collect();
        let packed: Vec<Vec<u8>> = chunk.iter().map(|(_, v)| v.pack()).collect();
        sqlx::query!(
            "INSERT INTO posting_vectors (model_version, job_id, vector) \
             SELECT $1, id, v FROM unnest($2::uuid[], $3::bytea[]) AS t(id, v)",
            version,
            &ids,
            &packed,
        )
        .execute(&mut *tx)
        .await?;
    }
    Ok(version)
}

/// Makes the model a batch staged the active one (the batch's export, in its transaction).
pub async fn activate_staged(
    tx: &mut PgConnection,
    batch_id: Uuid,
) -> Result<Option<String>, PipelineError> {
    let staged = sqlx::query_scalar!(
        "SELECT model_version FROM model_versions WHERE created_by = $1 AND status = 'staged' \
         ORDER BY created_at DESC LIMIT 1",
        batch_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(version) = &staged {
        switch_active(tx, version).await?;
    }
    Ok(staged)
}

async fn switch_active(tx: &mut PgConnection, version: &str) -> Result<(), PipelineError> {
    sqlx::query!("UPDATE model_versions SET status = 'archived' WHERE status = 'active' AND model_version <> $1", version)
        .execute(&mut *tx)
        .await?;
    sqlx::query!(
        "UPDATE model_versions SET status = 'active' WHERE model_version = $1",
        version
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Activates `version` (a rollback to an earlier model, or forward again) in one step.
pub async fn activate(pool: &PgPool, version: &str) -> Result<ModelVersion, PipelineError> {
    let mut tx = pool.begin().await?;
    let exists = sqlx::query_scalar!(
        "SELECT status FROM model_versions WHERE model_version = $1 FOR UPDATE",
        version
    )
    .fetch_optional(&mut *tx)
    .await?;
    match exists.as_deref() {
        None => return Err(PipelineError::Refused(format!("no model {version:?}"))),
        Some("staged") => {
            return Err(PipelineError::Refused(format!(
                "model {version} is staged: its batch has not exported it"
            )));
        }
        Some(_) => switch_active(&mut tx, version).await?,
    }
    tx.commit().await?;
    list_models(pool)
        .await?
        .into_iter()
        .find(|m| m.model_version == version)
        .ok_or_else(|| PipelineError::Refused(format!("no model {version:?}")))
}

pub async fn list_models(pool: &PgPool) -> Result<Vec<ModelVersion>, PipelineError> {
    Ok(sqlx::query_as!(
        ModelVersion,
        "SELECT model_version, model_type, trained_on_jobs_count, feature_count, ngram_range, \
                status, created_by, created_at \
         FROM model_versions ORDER BY created_at DESC, model_version DESC"
    )
    .fetch_all(pool)
    .await?)
}

/// The active model's version id.
pub async fn active_version(pool: &PgPool) -> Result<Option<String>, PipelineError> {
    Ok(
        sqlx::query_scalar!("SELECT model_version FROM model_versions WHERE status = 'active'")
            .fetch_optional(pool)
            .await?,
    )
}

/// The active model, read back whole.
pub async fn active_model(pool: &PgPool) -> Result<Option<(String, Model)>, PipelineError> {
    let Some(row) =
        sqlx::query!("SELECT model_version, settings FROM model_versions WHERE status = 'active'")
            .fetch_optional(pool)
            .await?
    else {
        return Ok(None);
    };
    let settings: Settings = serde_json::from_value(row.settings).map_err(|err| {
        PipelineError::Refused(format!("model {}: settings: {err}", row.model_version))
    })?;
    let terms = sqlx::query!(
        "SELECT term, idf FROM model_terms WHERE model_version = $1 ORDER BY feature",
        row.model_version
    )
    .fetch_all(pool)
    .await?;
    let (terms, idf) = terms.into_iter().map(|t| (t.term, t.idf)).unzip();
    Ok(Some((
        row.model_version,
        Model::from_parts(settings, terms, idf),
    )))
}
