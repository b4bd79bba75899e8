//! Subscribers: their filters, double opt-in (a `pending` subscriber gets a confirmation mail;
//! its link confirms and starts the digest schedule), and unsubscribing (the link in every
//! mail, or `List-Unsubscribe`), which stops the schedule.
use std::str::FromStr;

use chrono::{DateTime, Utc};
use queue_core::store::{self, NewRecurringTask};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{DIGEST_KIND, DigestsError, QUEUE};

/// What a subscriber asks for (`POST /careers/subscribers`, `trawl careers subscribe`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscriber {
    #[schema(format = "email", max_length = 254)]
    pub email: String,
    /// Postings whose title or text holds any of these words (none: every posting).
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Companies: career-page slugs or company names (none: every company).
    #[serde(default)]
    pub companies: Vec<String>,
    /// Locations containing any of these (none: anywhere).
    #[serde(default)]
    pub locations: Vec<String>,
    /// Remote postings only.
    #[serde(default)]
    pub remote_only: bool,
    /// Postings asking for at most this many years (postings that say nothing are kept).
    #[serde(default)]
    pub max_min_years: Option<f32>,
    /// Postings whose salary (top of its range) is at least this.
    #[serde(default)]
    pub salary_at_least: Option<f64>,
    /// When the digest goes out, a 5-field cron (default `0 8 * * *`: daily at 08:00)...
    #[serde(default)]
    #[schema(format = "cron")]
    pub cron: Option<String>,
    /// ...in this IANA time zone (default UTC).
    #[serde(default)]
    #[schema(format = "time-zone")]
    pub time_zone: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Subscriber {
    pub id: i64,
    pub email: String,
    pub keywords: Vec<String>,
    pub companies: Vec<String>,
    pub locations: Vec<String>,
    pub remote_only: bool,
    pub max_min_years: Option<f32>,
    pub salary_at_least: Option<f64>,
    /// pending | confirmed | unsubscribed
    pub status: String,
    pub cron: String,
    pub time_zone: String,
    pub since: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub unsubscribed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    #[serde(skip)]
    pub token: Uuid,
}

/// Checks an e-mail address the way the mailer will read it.
pub fn check_email(email: &str) -> Result<String, DigestsError> {
    let email = email.trim();
    if email.len() > 254 {
        return Err(DigestsError::Invalid(
            "email: longer than 254 characters".into(),
        ));
    }
    lettre::Address::from_str(email)
        .map(|a| a.to_string())
        .map_err(|e| DigestsError::Invalid(format!("email {email:?} is not an address: {e}")))
}

fn check_words(field: &str, words: &[String]) -> Result<Vec<String>, DigestsError> {
    if words.len() > 50 {
        return Err(DigestsError::Invalid(format!("{field}: at most 50")));
    }
    words
        .iter()
        .map(|w| w.trim())
        .filter(|w| !w.is_empty())
        .map(|w| {
            if w.len() > 200 || w.contains('\0') {
                Err(DigestsError::Invalid(format!(
                    "{field}: {w:?} is longer than 200 characters or holds NUL"
                )))
            } else {
                Ok(w.to_owned())
            }
        })
        .collect()
}

/// The schedule a confirmed subscriber's digests run on.
fn schedule(id: i64, cron: &str, time_zone: &str, enabled: bool) -> NewRecurringTask {
    NewRecurringTask {
        name: format!("digest-{id}"),
        kind: DIGEST_KIND.to_owned(),
        queue: QUEUE.to_owned(),
        payload: queue_core::payload_of(&crate::digest::DigestTask { subscriber: id }),
        enabled,
        interval_minutes: None,
        cron: Some(cron.to_owned()),
        time_zone: Some(time_zone.to_owned()),
        max_retries: 5,
    }
}

/// Records a `pending` subscriber (or refreshes a not yet confirmed one with the same address)
/// and queues its confirmation mail. A confirmed address keeps its subscription: 409.
pub async fn subscribe(
    services: &queue_core::Services,
    new: NewSubscriber,
) -> Result<(Subscriber, String), DigestsError> {
    let email = check_email(&new.email)?;
    let keywords = check_words("keywords", &new.keywords)?;
    let companies = check_words("companies", &new.companies)?;
    let locations = check_words("locations", &new.locations)?;
    if new
        .max_min_years
        .is_some_and(|y| !(0.0..=40.0).contains(&y))
    {
        return Err(DigestsError::Invalid("max_min_years: 0 to 40".into()));
    }
    if new
        .salary_at_least
        .is_some_and(|s| !s.is_finite() || s < 0.0)
    {
        return Err(DigestsError::Invalid("salary_at_least: 0 or more".into()));
    }
    let cron = new.cron.unwrap_or_else(|| "0 8 * * *".to_owned());
    let time_zone = new.time_zone.unwrap_or_else(|| "UTC".to_owned());
    store::check_recurring(&schedule(1, &cron, &time_zone, true))
        .map_err(|e| DigestsError::Invalid(e.to_string()))?;
    let id = sqlx::query_scalar!(
        "INSERT INTO subscribers (email, keywords, companies, locations, remote_only, \
             max_min_years, salary_at_least, token, cron, time_zone) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (email) DO UPDATE SET keywords = EXCLUDED.keywords, \
             companies = EXCLUDED.companies, locations = EXCLUDED.locations, \
             remote_only = EXCLUDED.remote_only, max_min_years = EXCLUDED.max_min_years, \
             salary_at_least = EXCLUDED.salary_at_least, cron = EXCLUDED.cron, \
             time_zone = EXCLUDED.time_zone, status = 'pending', unsubscribed_at = NULL \
         WHERE subscribers.status <> 'confirmed' \
         RETURNING id",
        email,
        &keywords,
        &companies,
        &locations,
        new.remote_only,
        new.max_min_years,
        new.salary_at_least,
        Uuid::new_v4(),
        cron,
        time_zone,
    )
    .fetch_optional(&services.db)
    .await?
    .ok_or_else(|| DigestsError::Conflict(format!("{email} is already subscribed")))?;
    let run_id = crate::confirm::submit(services, id).await?;
    let subscriber = get(&services.db, id)
        .await?
        .ok_or(DigestsError::UnknownSubscriber(id))?;
    Ok((subscriber, run_id))
}

pub async fn get(db: &PgPool, id: i64) -> Result<Option<Subscriber>, DigestsError> {
    Ok(sqlx::query_as!(
        Subscriber,
        "SELECT id, email, keywords, companies, locations, remote_only, max_min_years, \
             salary_at_least, status, cron, time_zone, since, confirmed_at, unsubscribed_at, \
             created_at, token \
         FROM subscribers WHERE id = $1",
        id
    )
    .fetch_optional(db)
    .await?)
}

pub async fn list(db: &PgPool) -> Result<Vec<Subscriber>, DigestsError> {
    Ok(sqlx::query_as!(
        Subscriber,
        "SELECT id, email, keywords, companies, locations, remote_only, max_min_years, \
             salary_at_least, status, cron, time_zone, since, confirmed_at, unsubscribed_at, \
             created_at, token \
         FROM subscribers ORDER BY id"
    )
    .fetch_all(db)
    .await?)
}

/// Confirms the subscriber whose link carries `token` and starts its digest schedule; postings
/// first seen from now on are new to it. Confirming twice is harmless.
pub async fn confirm(db: &PgPool, token: Uuid) -> Result<Subscriber, DigestsError> {
    let mut tx = db.begin().await?;
    let row = sqlx::query!(
        "UPDATE subscribers SET status = 'confirmed', confirmed_at = COALESCE(confirmed_at, now()), \
             since = CASE WHEN status = 'confirmed' THEN since ELSE now() END \
         WHERE token = $1 AND status IN ('pending', 'confirmed') \
         RETURNING id, cron, time_zone",
        token
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(DigestsError::UnknownToken)?;
    store::upsert_recurring(&mut *tx, &schedule(row.id, &row.cron, &row.time_zone, true)).await?;
    tx.commit().await?;
    get(db, row.id).await?.ok_or(DigestsError::UnknownToken)
}

/// Unsubscribes the subscriber whose link carries `token` and stops its digests.
pub async fn unsubscribe(db: &PgPool, token: Uuid) -> Result<Subscriber, DigestsError> {
    let mut tx = db.begin().await?;
    let id = sqlx::query_scalar!(
        "UPDATE subscribers SET status = 'unsubscribed', \
             unsubscribed_at = COALESCE(unsubscribed_at, now()) \
         WHERE token = $1 RETURNING id",
        token
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(DigestsError::UnknownToken)?;
    sqlx::query!(
        "UPDATE schedules SET enabled = false, updated_at = now() WHERE name = $1",
        format!("digest-{id}")
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    get(db, id).await?.ok_or(DigestsError::UnknownToken)
}

/// The token of a subscriber, by address (the operator's `trawl careers unsubscribe EMAIL`).
pub async fn token_of(db: &PgPool, email: &str) -> Result<Uuid, DigestsError> {
    sqlx::query_scalar!(
        "SELECT token FROM subscribers WHERE email = $1",
        email.trim()
    )
    .fetch_optional(db)
    .await?
    .ok_or_else(|| DigestsError::Invalid(format!("no subscriber {email:?}")))
}
