//! `jobs` and `scrape_run_postings`: the postings a scrape stores and what each run saw.
use serde::Serialize;
use sqlx::PgPool;
use trawl_scrape::Posting;

use queue_core::StoreError;

/// What storing one posting did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PostingOutcome {
    Inserted,
    Updated,
    Unchanged,
}

impl PostingOutcome {
    fn as_str(self) -> &'static str {
        match self {
            PostingOutcome::Inserted => "inserted",
            PostingOutcome::Updated => "updated",
            PostingOutcome::Unchanged => "unchanged",
        }
    }
}

/// Upserts one page of postings for a run, in one transaction, and links each to the run.
///
/// A posting whose content hash is unchanged is not rewritten, only marked seen; so is one seen
/// without its detail page (`details_missing`) when a row exists, since a partial view never
/// replaces richer stored data (new postings are stored from what there is). The link row's
/// primary key (run_id, job_id) keeps the first outcome, so a redelivered task or a posting
/// listed twice is counted once.
pub async fn upsert_page(
    pool: &PgPool,
    run_id: &str,
    postings: &[Posting],
) -> Result<Vec<PostingOutcome>, StoreError> {
    let mut tx = pool.begin().await?;
    let mut outcomes = Vec::with_capacity(postings.len());
    for posting in postings {
        let written = sqlx::query_scalar!(
            "INSERT INTO jobs (job_id, site, external_id, job_title, company_name, location, \
                 posted_date, job_description, skills_required, salary_min, salary_max, \
                 salary_currency, salary_period, has_salary, has_skills, url, source, \
                 search_query, data_quality_score, content_hash, last_run_id, is_remote, department) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
                 $18, $19, $20, $21, $22, $23) \
             ON CONFLICT (job_id) DO UPDATE SET job_title = EXCLUDED.job_title, \
                 company_name = EXCLUDED.company_name, location = EXCLUDED.location, \
                 posted_date = EXCLUDED.posted_date, job_description = EXCLUDED.job_description, \
                 skills_required = EXCLUDED.skills_required, salary_min = EXCLUDED.salary_min, \
                 salary_max = EXCLUDED.salary_max, salary_currency = EXCLUDED.salary_currency, \
                 salary_period = EXCLUDED.salary_period, has_salary = EXCLUDED.has_salary, \
                 has_skills = EXCLUDED.has_skills, url = EXCLUDED.url, \
                 search_query = EXCLUDED.search_query, \
                 data_quality_score = EXCLUDED.data_quality_score, \
                 content_hash = EXCLUDED.content_hash, last_run_id = EXCLUDED.last_run_id, \
                 is_remote = EXCLUDED.is_remote, department = EXCLUDED.department, \
                 last_seen_at = now(), is_active = true, updated_at = now() \
             WHERE jobs.content_hash IS DISTINCT FROM EXCLUDED.content_hash AND NOT $24 \
             RETURNING (xmax = 0) AS \"inserted!\"",
            posting.job_id,
            posting.site,
            posting.external_id,
            posting.job_title,
            posting.company_name,
            posting.location,
            posting.posted_date,
            posting.job_description,
            posting.skills_required,
            posting.salary_min,
            posting.salary_max,
            posting.salary_currency,
            posting.salary_period,
            posting.has_salary,
            posting.has_skills,
            posting.url,
            posting.source,
            posting.search_query,
            posting.data_quality_score,
            posting.content_hash,
            run_id,
            posting.is_remote,
            posting.department,
            posting.details_missing,
        )
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = match written {
            Some(true) => PostingOutcome::Inserted,
            Some(false) => PostingOutcome::Updated,
            None => {
                sqlx::query!(
                    "UPDATE jobs SET last_seen_at = now(), is_active = true, last_run_id = $2 \
                     WHERE job_id = $1",
                    posting.job_id,
                    run_id,
                )
                .execute(&mut *tx)
                .await?;
                PostingOutcome::Unchanged
            }
        };
        sqlx::query!(
            "INSERT INTO scrape_run_postings (run_id, job_id, outcome) VALUES ($1, $2, $3) \
             ON CONFLICT (run_id, job_id) DO NOTHING",
            run_id,
            posting.job_id,
            outcome.as_str(),
        )
        .execute(&mut *tx)
        .await?;
        outcomes.push(outcome);
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// A posting as a run's results show it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct RunPosting {
    pub job_id: uuid::Uuid,
    pub outcome: String,
    pub job_title: String,
    pub company_name: Option<String>,
    pub location: String,
    pub posted_date: Option<chrono::NaiveDate>,
    pub salary_min: Option<f64>,
    pub salary_max: Option<f64>,
    pub salary_currency: Option<String>,
    pub skills_required: Option<String>,
    pub url: String,
    pub data_quality_score: f32,
}

/// The postings a run saw, newest first, at most `limit`.
pub async fn run_postings(
    pool: &PgPool,
    run_id: &str,
    limit: i64,
) -> Result<Vec<RunPosting>, StoreError> {
    Ok(sqlx::query_as!(
        RunPosting,
        "SELECT j.job_id, p.outcome, j.job_title, j.company_name, j.location, j.posted_date, \
             j.salary_min, j.salary_max, j.salary_currency, j.skills_required, j.url, \
             j.data_quality_score \
         FROM scrape_run_postings p JOIN jobs j USING (job_id) \
         WHERE p.run_id = $1 ORDER BY j.posted_date DESC NULLS LAST, j.job_id LIMIT $2",
        run_id,
        limit,
    )
    .fetch_all(pool)
    .await?)
}
