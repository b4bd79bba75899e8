//! The export stage and its undo. Export: the postings COPYed into `batch_export_rows` with their
//! search vectors computed there on every core (`stage_rows`), then one transaction per batch
//! (`export`): a before-image of every row it will change, `INSERT … ON CONFLICT` into `jobs`
//! (a row whose content is unchanged is left alone), the batch's model activated.
//! Rollback: every row the export touched put back as it was, audited as a `rollback` row.
use sqlx::{PgConnection, PgPool};
use trawl_scrape::Posting;
use uuid::Uuid;

use crate::PipelineError;

#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
pub struct Exported {
    pub inserted: i32,
    pub updated: i32,
    pub unchanged: i32,
    pub failed: i32,
    pub model_version: Option<String>,
}

/// One CSV field: NULL unquoted and empty, anything else quoted with quotes doubled.
fn field(out: &mut String, value: Option<&str>) {
    if let Some(value) = value {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    }
    out.push(',');
}

fn csv_rows(batch_id: Uuid, postings: &[Posting]) -> String {
    let mut out = String::with_capacity(postings.len() * 512);
    let batch = batch_id.to_string();
    for p in postings {
        let number = |v: Option<f64>| v.map(|v| v.to_string());
        let flag = |v: bool| Some(if v { "t" } else { "f" });
        field(&mut out, Some(&batch));
        field(&mut out, Some(&p.job_id.to_string()));
        field(&mut out, Some(&p.site));
        field(&mut out, Some(&p.external_id));
        field(&mut out, Some(&p.job_title));
        field(&mut out, p.company_name.as_deref());
        field(&mut out, Some(&p.location));
        field(&mut out, p.posted_date.map(|d| d.to_string()).as_deref());
        field(&mut out, p.job_description.as_deref());
        field(&mut out, p.skills_required.as_deref());
        field(&mut out, number(p.salary_min).as_deref());
        field(&mut out, number(p.salary_max).as_deref());
        field(&mut out, p.salary_currency.as_deref());
        field(&mut out, p.salary_period.as_deref());
        field(&mut out, flag(p.has_salary));
        field(&mut out, flag(p.has_skills));
        field(&mut out, Some(&p.url));
        field(&mut out, Some(&p.source));
        field(&mut out, p.search_query.as_deref());
        field(&mut out, Some(&p.data_quality_score.to_string()));
        field(&mut out, Some(&p.content_hash));
        field(&mut out, p.is_remote.map(|r| if r { "t" } else { "f" }));
        field(&mut out, p.department.as_deref());
        out.pop();
        out.push('\n');
    }
    out
}

/// Stages the batch's postings for `export`: COPYed into `batch_export_rows` (what an earlier
/// attempt left there dropped first), then their search vectors computed by as many
/// statements at once as there are cores, outside the export's transaction (a staging row is
/// the batch's alone; the transaction only copies it).
pub async fn stage_rows(
    db: &PgPool,
    batch_id: Uuid,
    postings: &[Posting],
) -> Result<(), PipelineError> {
    sqlx::query!(
        "DELETE FROM batch_export_rows WHERE batch_id = $1",
        batch_id
    )
    .execute(db)
    .await?;
    let mut conn = db.acquire().await?;
    let mut copy = conn
        .copy_in_raw(
            "COPY batch_export_rows (batch_id, job_id, site, external_id, job_title, company_name, \
             location, posted_date, job_description, skills_required, salary_min, salary_max, \
             salary_currency, salary_period, has_salary, has_skills, url, source, search_query, \
             data_quality_score, content_hash, is_remote, department) FROM STDIN WITH (FORMAT csv)",
        )
        .await?;
    copy.send(csv_rows(batch_id, postings).into_bytes()).await?;
    copy.finish().await?;
    drop(conn);
    let parts = std::thread::available_parallelism().map_or(1, |n| n.get()) as i32;
    let mut computing = tokio::task::JoinSet::new();
    for part in 0..parts {
        let db = db.clone();
        computing.spawn(async move {
            sqlx::query!(
                "UPDATE batch_export_rows SET search = posting_search(job_title, company_name, \
                     skills_required, job_description) \
                 WHERE batch_id = $1 AND (hashtext(job_id::text) & 2147483647) % $2 = $3",
                batch_id,
                parts,
                part,
            )
            .execute(&db)
            .await
        });
    }
    while let Some(done) = computing.join_next().await {
        done.map_err(|err| PipelineError::Refused(format!("computing search vectors: {err}")))??;
    }
    Ok(())
}

/// Writes the batch's staged postings to `jobs` inside `tx` (the caller's stage transaction).
pub async fn export(
    tx: &mut PgConnection,
    batch_id: Uuid,
    run_id: &str,
    postings: &[Posting],
) -> Result<Exported, PipelineError> {
    // A posting whose detail page failed never replaces a stored row; one that is new is kept.
    let partial: Vec<Uuid> = postings
        .iter()
        .filter(|p| p.details_missing)
        .map(|p| p.job_id)
        .collect();
    sqlx::query!(
        "DELETE FROM batch_export_rows s USING jobs j \
         WHERE s.batch_id = $1 AND s.job_id = ANY($2) AND j.job_id = s.job_id",
        batch_id,
        &partial,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO batch_job_images (batch_id, job_id, before) \
         SELECT $1, s.job_id, CASE WHEN j.job_id IS NULL THEN NULL ELSE to_jsonb(j) - 'search' END \
         FROM batch_export_rows s LEFT JOIN jobs j ON j.job_id = s.job_id \
         WHERE s.batch_id = $1 AND j.content_hash IS DISTINCT FROM s.content_hash \
         ON CONFLICT DO NOTHING",
        batch_id
    )
    .execute(&mut *tx)
    .await?;
    let written = sqlx::query_scalar!(
        "INSERT INTO jobs (job_id, site, external_id, job_title, company_name, location, \
             posted_date, job_description, skills_required, salary_min, salary_max, \
             salary_currency, salary_period, has_salary, has_skills, url, source, search_query, \
             data_quality_score, content_hash, is_remote, department, last_run_id, search) \
         SELECT job_id, site, external_id, job_title, company_name, location, posted_date, \
             job_description, skills_required, salary_min, salary_max, salary_currency, \
             salary_period, has_salary, has_skills, url, source, search_query, \
             data_quality_score, content_hash, is_remote, department, $2, search \
         FROM batch_export_rows WHERE batch_id = $1 \
         ON CONFLICT (job_id) DO UPDATE SET job_title = EXCLUDED.job_title, \
             company_name = EXCLUDED.company_name, location = EXCLUDED.location, \
             posted_date = EXCLUDED.posted_date, job_description = EXCLUDED.job_description, \
             skills_required = EXCLUDED.skills_required, salary_min = EXCLUDED.salary_min, \
             salary_max = EXCLUDED.salary_max, salary_currency = EXCLUDED.salary_currency, \
             salary_period = EXCLUDED.salary_period, has_salary = EXCLUDED.has_salary, \
             has_skills = EXCLUDED.has_skills, url = EXCLUDED.url, \
             search_query = EXCLUDED.search_query, data_quality_score = EXCLUDED.data_quality_score, \
             content_hash = EXCLUDED.content_hash, is_remote = EXCLUDED.is_remote, \
             department = EXCLUDED.department, last_run_id = EXCLUDED.last_run_id, \
             search = EXCLUDED.search, \
             last_seen_at = now(), is_active = true, updated_at = now() \
         WHERE jobs.content_hash IS DISTINCT FROM EXCLUDED.content_hash \
         RETURNING (xmax = 0) AS \"inserted!\"",
        batch_id,
        run_id,
    )
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query!(
        "DELETE FROM batch_export_rows WHERE batch_id = $1",
        batch_id
    )
    .execute(&mut *tx)
    .await?;
    let inserted = written.iter().filter(|i| **i).count() as i32;
    let updated = written.len() as i32 - inserted;
    let model_version = crate::models::activate_staged(tx, batch_id).await?;
    Ok(Exported {
        inserted,
        updated,
        unchanged: postings.len() as i32 - inserted - updated,
        failed: 0,
        model_version,
    })
}

/// What a rollback did.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct RolledBack {
    pub batch_id: Uuid,
    /// Rows the batch inserted, deleted again.
    pub deleted: i32,
    /// Rows the batch updated, put back as they were.
    pub restored: i32,
    /// Rows the batch wrote that a later run has written since (a scrape saw them again): left
    /// as they are, since putting the batch's before-image back would undo newer data.
    pub kept: i32,
}

/// Undoes what a successful batch's export changed in `jobs`, in one transaction, audited as
/// the batch's `rollback` row; the batch becomes `rolled_back`. A row some later run has
/// written since (its `last_run_id` is no longer the export's) is kept and counted. Refused for
/// a batch that did not export, or was rolled back already.
pub async fn rollback(pool: &PgPool, batch_id: Uuid) -> Result<RolledBack, PipelineError> {
    let mut tx = pool.begin().await?;
    let status = sqlx::query_scalar!(
        "SELECT status FROM batches WHERE batch_id = $1 FOR UPDATE",
        batch_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    match status.as_deref() {
        None => return Err(PipelineError::Refused(format!("no batch {batch_id}"))),
        Some("success") => {}
        Some(other) => {
            return Err(PipelineError::Refused(format!(
                "batch {batch_id} is {other}: only a batch that exported can be rolled back"
            )));
        }
    }
    let started = std::time::Instant::now();
    let export_run = sqlx::query_scalar!(
        "SELECT run_id FROM batch_runs WHERE batch_id = $1 AND stage = 'export'",
        batch_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let images = sqlx::query_scalar!(
        "SELECT count(*) AS \"n!\" FROM batch_job_images WHERE batch_id = $1",
        batch_id
    )
    .fetch_one(&mut *tx)
    .await? as i32;
    let deleted = sqlx::query!(
        "DELETE FROM jobs j USING batch_job_images i \
         WHERE i.batch_id = $1 AND i.before IS NULL AND j.job_id = i.job_id \
             AND j.last_run_id = $2",
        batch_id,
        export_run,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected() as i32;
    let restored = sqlx::query!(
        "UPDATE jobs j SET (site, external_id, job_title, company_name, location, posted_date, \
             job_description, skills_required, salary_min, salary_max, salary_currency, \
             salary_period, has_salary, has_skills, url, source, search_query, \
             data_quality_score, content_hash, first_seen_at, last_seen_at, is_active, \
             last_run_id, created_at, updated_at, is_remote, department) = \
           (b.site, b.external_id, b.job_title, b.company_name, b.location, b.posted_date, \
             b.job_description, b.skills_required, b.salary_min, b.salary_max, b.salary_currency, \
             b.salary_period, b.has_salary, b.has_skills, b.url, b.source, b.search_query, \
             b.data_quality_score, b.content_hash, b.first_seen_at, b.last_seen_at, b.is_active, \
             b.last_run_id, b.created_at, b.updated_at, b.is_remote, b.department) \
         FROM batch_job_images i, jsonb_populate_record(NULL::jobs, i.before) b \
         WHERE i.batch_id = $1 AND i.before IS NOT NULL AND j.job_id = i.job_id \
             AND j.last_run_id = $2",
        batch_id,
        export_run,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected() as i32;
    let kept = images - deleted - restored;
    sqlx::query!(
        "INSERT INTO batch_runs (batch_id, batch_date, stage, status, jobs_updated, jobs_failed, \
             execution_time_seconds, report, started_at, finished_at) \
         SELECT batch_id, batch_date, 'rollback', 'success', $2, 0, $3, $4, now(), now() \
         FROM batches WHERE batch_id = $1",
        batch_id,
        deleted + restored,
        started.elapsed().as_secs_f64(),
        serde_json::json!({"deleted": deleted, "restored": restored, "kept": kept}),
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE batches SET status = 'rolled_back' WHERE batch_id = $1",
        batch_id
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(%batch_id, deleted, restored, kept, "batch rolled back");
    Ok(RolledBack {
        batch_id,
        deleted,
        restored,
        kept,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_quotes_and_nulls() {
        let mut out = String::new();
        super::field(&mut out, Some("say \"hi\", ok\nnext"));
        super::field(&mut out, None);
        super::field(&mut out, Some(""));
        assert_eq!(out, "\"say \"\"hi\"\", ok\nnext\",,\"\",");
    }
}
