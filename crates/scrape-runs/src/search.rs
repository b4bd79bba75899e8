//! Postings for people: filtered, full-text searched (`jobs.search`, a GIN-indexed tsvector),
//! newest first with keyset pagination (the page after a cursor is an index range scan).
use chrono::{DateTime, NaiveDate, Utc};
use queue_core::StoreError;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

/// Most postings one page may hold.
pub const MAX_PAGE: i64 = 100;

/// A search; every filter is optional and they all apply together.
#[derive(Debug, Clone, Default)]
pub struct PostingQuery {
    /// Full text, in web-search syntax (`rust -java "data engineer" or python`).
    pub q: Option<String>,
    pub site: Option<String>,
    /// Company name containing this, any case.
    pub company: Option<String>,
    /// Location containing this, any case.
    pub location: Option<String>,
    /// Skills listing containing this, any case.
    pub skill: Option<String>,
    pub posted_since: Option<NaiveDate>,
    pub has_salary: Option<bool>,
    /// The posting's top of range (or its only figure) is at least this.
    pub salary_at_least: Option<f64>,
    /// The page after this position (from the previous page's `next`).
    pub after: Option<Position>,
    pub limit: i64,
}

/// Where a page ended: the last posting's `(first_seen_at, job_id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub first_seen_at: DateTime<Utc>,
    pub job_id: Uuid,
}

impl Position {
    /// The cursor a client sends back: `<first_seen_at in µs>.<job_id>`.
    pub fn to_cursor(self) -> String {
        format!(
            "{}.{}",
            self.first_seen_at.timestamp_micros(),
            self.job_id.simple()
        )
    }

    /// A cursor `to_cursor` made; None for anything else.
    pub fn from_cursor(cursor: &str) -> Option<Self> {
        let (micros, id) = cursor.split_once('.')?;
        Some(Self {
            first_seen_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            job_id: Uuid::try_parse(id).ok()?,
        })
    }
}

/// A posting as people see it (the list leaves the description out).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PublicPosting {
    pub job_id: Uuid,
    pub site: String,
    pub job_title: String,
    pub company_name: Option<String>,
    pub location: String,
    pub is_remote: Option<bool>,
    pub department: Option<String>,
    pub posted_date: Option<NaiveDate>,
    pub salary_min: Option<f64>,
    pub salary_max: Option<f64>,
    pub salary_currency: Option<String>,
    pub salary_period: Option<String>,
    pub skills_required: Option<String>,
    pub url: String,
    pub data_quality_score: f32,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// Days from its posting date to today (seed 002's computed field), when it has one.
    pub days_since_posted: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_description: Option<String>,
}

/// A page of a search and where the next one starts (None: this was the last).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
// For the OpenAPI description only (`additionalProperties: false`), so a TF-IDF ranked page,
// which adds `model_version`, can never pass for one.
#[serde(deny_unknown_fields)]
pub struct PostingPage {
    pub postings: Vec<PublicPosting>,
    pub next: Option<String>,
}

/// A posting and its score in a ranked search (TF-IDF or cosine similarity, or a rank fusion).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScoredPosting {
    pub score: f64,
    pub posting: PublicPosting,
}

/// `%`, `_` and `\` in a filter are matched as themselves.
fn contains_pattern(text: &Option<String>) -> Option<String> {
    text.as_ref().map(|text| {
        let escaped = text
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    })
}

pub async fn search_postings(
    pool: &PgPool,
    query: &PostingQuery,
) -> Result<PostingPage, StoreError> {
    let limit = query.limit.clamp(1, MAX_PAGE);
    let (after_seen, after_id) = match query.after {
        Some(position) => (Some(position.first_seen_at), Some(position.job_id)),
        None => (None, None),
    };
    let postings = sqlx::query_as!(
        PublicPosting,
        r#"SELECT job_id, site, job_title, company_name, location, is_remote, department,
                  posted_date, salary_min, salary_max, salary_currency, salary_period,
                  skills_required, url, data_quality_score, first_seen_at, last_seen_at,
                  CURRENT_DATE - posted_date AS days_since_posted,
                  NULL::text AS job_description
           FROM jobs
           WHERE ($1::text IS NULL OR search @@ websearch_to_tsquery('english', $1))
             AND ($2::text IS NULL OR site = $2)
             AND ($3::text IS NULL OR company_name ILIKE $3)
             AND ($4::text IS NULL OR location ILIKE $4)
             AND ($5::text IS NULL OR skills_required ILIKE $5)
             AND ($6::date IS NULL OR posted_date >= $6)
             AND ($7::bool IS NULL OR has_salary = $7)
             AND ($8::float8 IS NULL OR coalesce(salary_max, salary_min) >= $8)
             AND ($9::timestamptz IS NULL OR (first_seen_at, job_id) < ($9, $10::uuid))
           ORDER BY first_seen_at DESC, job_id DESC
           LIMIT $11"#,
        query.q,
        query.site,
        contains_pattern(&query.company),
        contains_pattern(&query.location),
        contains_pattern(&query.skill),
        query.posted_since,
        query.has_salary,
        query.salary_at_least,
        after_seen,
        after_id,
        limit + 1,
    )
    .fetch_all(pool)
    .await?;
    Ok(page(postings, limit))
}

/// The first `limit` postings, and a cursor if there were more.
fn page(mut postings: Vec<PublicPosting>, limit: i64) -> PostingPage {
    let more = postings.len() as i64 > limit;
    postings.truncate(limit as usize);
    let next = more.then(|| postings.last()).flatten().map(|last| {
        Position {
            first_seen_at: last.first_seen_at,
            job_id: last.job_id,
        }
        .to_cursor()
    });
    PostingPage { postings, next }
}

/// Postings among `ranked` (ids, best first) that pass the query's filters other than `q`,
/// in `ranked`'s order: the TF-IDF ranking of `GET /jobs/postings?rank=tfidf`.
pub async fn filter_ranked(
    pool: &PgPool,
    query: &PostingQuery,
    ranked: &[Uuid],
) -> Result<Vec<PublicPosting>, StoreError> {
    Ok(sqlx::query_as!(
        PublicPosting,
        r#"SELECT job_id, site, job_title, company_name, location, is_remote, department,
                  posted_date, salary_min, salary_max, salary_currency, salary_period,
                  skills_required, url, data_quality_score, first_seen_at, last_seen_at,
                  CURRENT_DATE - posted_date AS days_since_posted,
                  NULL::text AS job_description
           FROM jobs
           WHERE job_id = ANY($1)
             AND ($2::text IS NULL OR site = $2)
             AND ($3::text IS NULL OR company_name ILIKE $3)
             AND ($4::text IS NULL OR location ILIKE $4)
             AND ($5::text IS NULL OR skills_required ILIKE $5)
             AND ($6::date IS NULL OR posted_date >= $6)
             AND ($7::bool IS NULL OR has_salary = $7)
             AND ($8::float8 IS NULL OR coalesce(salary_max, salary_min) >= $8)
           ORDER BY array_position($1, job_id)
           LIMIT $9"#,
        ranked,
        query.site,
        contains_pattern(&query.company),
        contains_pattern(&query.location),
        contains_pattern(&query.skill),
        query.posted_since,
        query.has_salary,
        query.salary_at_least,
        query.limit.clamp(1, MAX_PAGE),
    )
    .fetch_all(pool)
    .await?)
}

/// One posting, description included.
pub async fn get_posting(pool: &PgPool, job_id: Uuid) -> Result<Option<PublicPosting>, StoreError> {
    Ok(sqlx::query_as!(
        PublicPosting,
        r#"SELECT job_id, site, job_title, company_name, location, is_remote, department,
                  posted_date, salary_min, salary_max, salary_currency, salary_period,
                  skills_required, url, data_quality_score, first_seen_at, last_seen_at,
                  CURRENT_DATE - posted_date AS days_since_posted,
                  job_description
           FROM jobs WHERE job_id = $1"#,
        job_id,
    )
    .fetch_optional(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_anything_else_is_refused() {
        let position = Position {
            first_seen_at: DateTime::from_timestamp_micros(1_795_000_000_123_456).unwrap(),
            job_id: Uuid::new_v4(),
        };
        assert_eq!(Position::from_cursor(&position.to_cursor()), Some(position));
        for bad in ["", "12", "x.y", "12.not-a-uuid", "99999999999999999999.00"] {
            assert_eq!(Position::from_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn filters_match_percent_and_underscore_as_themselves() {
        assert_eq!(
            contains_pattern(&Some(r"50%_off\".into())),
            Some(r"%50\%\_off\\%".into())
        );
        assert_eq!(contains_pattern(&None), None);
    }
}
