//! The mail ledger: a mail is `prepared` (its postings and Message-ID fixed) in one transaction
//! before it is sent, then `sent` or `failed`. Each posting is in at most one mail per
//! subscriber (`mailed_postings`' key), so a posting is mailed at most once; a mail left
//! `prepared` by a crash is sent again as it was, same Message-ID, before anything new.
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::DigestsError;
use crate::render::DigestPosting;
use crate::subscribers::Subscriber;

/// Most postings in one digest; the rest wait for the next one.
pub const MAX_POSTINGS: i64 = 50;

/// A mail ready to (re-)send.
#[derive(Debug, Clone, Serialize)]
pub struct Prepared {
    pub id: i64,
    pub message_id: String,
    /// Sends already tried (0: a fresh mail; more: a re-send after a crash or a 4xx).
    pub sends: i32,
}

/// The mail of this kind left `prepared` for the subscriber, if any.
pub async fn prepared(
    db: impl sqlx::PgExecutor<'_>,
    subscriber: i64,
    kind: &str,
) -> Result<Option<Prepared>, DigestsError> {
    Ok(sqlx::query_as!(
        Prepared,
        "SELECT id, message_id, sends FROM mails \
         WHERE subscriber_id = $1 AND kind = $2 AND state = 'prepared'",
        subscriber,
        kind
    )
    .fetch_optional(db)
    .await?)
}

fn message_id(kind: &str, domain: &str) -> String {
    format!("<{kind}-{}@{domain}>", Uuid::new_v4().simple())
}

/// Prepares a confirmation mail (or returns the one already prepared).
pub async fn prepare_confirmation(
    db: &PgPool,
    subscriber: i64,
    run_id: &str,
    domain: &str,
) -> Result<Prepared, DigestsError> {
    if let Some(mail) = prepared(db, subscriber, "confirm").await? {
        return Ok(mail);
    }
    Ok(sqlx::query_as!(
        Prepared,
        "INSERT INTO mails (subscriber_id, kind, run_id, message_id) VALUES ($1, 'confirm', $2, $3) \
         RETURNING id, message_id, sends",
        subscriber,
        run_id,
        message_id("confirm", domain)
    )
    .fetch_one(db)
    .await?)
}

/// Escapes `%`, `_` and `\` for ILIKE.
fn like(word: &str) -> String {
    let escaped = word
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Prepares the subscriber's next digest: the active postings first seen since it confirmed,
/// matching its filters and never in a mail to it, claimed for a new mail in one transaction.
/// A digest left `prepared` is returned instead (nothing new is added to it). None: nothing new.
pub async fn prepare_digest(
    db: &PgPool,
    subscriber: &Subscriber,
    run_id: &str,
    domain: &str,
) -> Result<Option<Prepared>, DigestsError> {
    let mut tx = db.begin().await?;
    // One digest of a subscriber is prepared at a time.
    sqlx::query!(
        "SELECT id FROM subscribers WHERE id = $1 FOR UPDATE",
        subscriber.id
    )
    .fetch_one(&mut *tx)
    .await?;
    if let Some(mail) = prepared(&mut *tx, subscriber.id, "digest").await? {
        return Ok(Some(mail));
    }
    let keywords: Vec<String> = subscriber.keywords.iter().map(|w| like(w)).collect();
    let locations: Vec<String> = subscriber.locations.iter().map(|w| like(w)).collect();
    let companies: Vec<String> = subscriber
        .companies
        .iter()
        .map(|w| w.to_lowercase())
        .collect();
    let due = sqlx::query_scalar!(
        r#"SELECT j.job_id FROM jobs j
           LEFT JOIN posting_experience e ON e.job_id = j.job_id
           WHERE j.is_active AND j.first_seen_at >= $2
             AND NOT EXISTS (SELECT 1 FROM mailed_postings m
                             WHERE m.subscriber_id = $1 AND m.job_id = j.job_id)
             AND (cardinality($3::text[]) = 0 OR EXISTS (SELECT 1 FROM unnest($3::text[]) k
                  WHERE j.job_title ILIKE k OR j.job_description ILIKE k))
             AND (cardinality($4::text[]) = 0 OR lower(j.company_name) = ANY($4)
                  OR EXISTS (SELECT 1 FROM career_links l JOIN companies c ON c.id = l.company_id
                             WHERE l.job_id = j.job_id AND c.slug = ANY($4)))
             AND (cardinality($5::text[]) = 0 OR EXISTS (SELECT 1 FROM unnest($5::text[]) k
                  WHERE j.location ILIKE k))
             AND (NOT $6 OR j.is_remote IS TRUE)
             AND ($7::real IS NULL OR e.min_years IS NULL OR e.min_years <= $7)
             AND ($8::float8 IS NULL OR COALESCE(j.salary_max, j.salary_min) >= $8)
           ORDER BY j.first_seen_at, j.job_id LIMIT $9"#,
        subscriber.id,
        subscriber.since,
        &keywords,
        &companies,
        &locations,
        subscriber.remote_only,
        subscriber.max_min_years,
        subscriber.salary_at_least,
        MAX_POSTINGS,
    )
    .fetch_all(&mut *tx)
    .await?;
    if due.is_empty() {
        return Ok(None);
    }
    let mail = sqlx::query_as!(
        Prepared,
        "INSERT INTO mails (subscriber_id, kind, run_id, message_id, postings) \
         VALUES ($1, 'digest', $2, $3, $4) RETURNING id, message_id, sends",
        subscriber.id,
        run_id,
        message_id("digest", domain),
        due.len() as i32
    )
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO mailed_postings (subscriber_id, job_id, mail_id) \
         SELECT $1, unnest($2::uuid[]), $3",
        subscriber.id,
        &due,
        mail.id
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(mail))
}

/// The postings of a digest, as it shows them.
pub async fn postings_of(db: &PgPool, mail: i64) -> Result<Vec<DigestPosting>, DigestsError> {
    let rows = sqlx::query!(
        r#"SELECT j.job_id, j.job_title, j.company_name, j.location, j.is_remote, j.url,
               j.salary_min, j.salary_max, j.salary_currency, e.min_years, e.max_years
           FROM mailed_postings m JOIN jobs j ON j.job_id = m.job_id
           LEFT JOIN posting_experience e ON e.job_id = j.job_id
           WHERE m.mail_id = $1 ORDER BY j.first_seen_at, j.job_id"#,
        mail
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| DigestPosting {
            job_id: r.job_id,
            title: r.job_title,
            company: r.company_name,
            location: r.location,
            remote: r.is_remote.unwrap_or(false),
            url: r.url,
            experience: r.min_years.map(|min| match r.max_years {
                Some(max) => format!("{min}-{max} years"),
                None => format!("{min}+ years"),
            }),
            salary: match (r.salary_min, r.salary_max) {
                (None, None) => None,
                (min, max) => Some(format!(
                    "{}-{} {}",
                    min.or(max).unwrap_or_default().round(),
                    max.or(min).unwrap_or_default().round(),
                    r.salary_currency.unwrap_or_default()
                )),
            },
        })
        .collect())
}

/// Counts a send about to be tried (before the SMTP conversation: a crash mid-send still
/// counts it).
pub async fn note_send(db: &PgPool, mail: i64) -> Result<(), DigestsError> {
    sqlx::query!("UPDATE mails SET sends = sends + 1 WHERE id = $1", mail)
        .execute(db)
        .await?;
    Ok(())
}

/// Records the server's answer: `sent` or `failed` (a 5xx: its postings stay claimed, so they
/// are never mailed to this subscriber, and the answer is kept).
pub async fn record(
    db: &PgPool,
    mail: i64,
    sent: bool,
    response: &str,
) -> Result<(), DigestsError> {
    sqlx::query!(
        "UPDATE mails SET state = CASE WHEN $2 THEN 'sent' ELSE 'failed' END, \
             smtp_response = $3, sent_at = CASE WHEN $2 THEN now() END \
         WHERE id = $1 AND state = 'prepared'",
        mail,
        sent,
        response
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Seconds since the oldest mail still `prepared` was prepared (0 when none is).
pub async fn oldest_prepared_seconds(db: &PgPool) -> Result<f64, DigestsError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT COALESCE(extract(epoch FROM now() - min(created_at)), 0)::float8 AS "age!"
           FROM mails WHERE state = 'prepared'"#
    )
    .fetch_one(db)
    .await?)
}

/// A mail as `GET /careers/mails` lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Mail {
    pub id: i64,
    pub subscriber_id: i64,
    pub email: String,
    pub kind: String,
    pub run_id: String,
    pub message_id: String,
    pub state: String,
    pub postings: i32,
    pub sends: i32,
    pub smtp_response: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub async fn recent(db: &PgPool, limit: i64) -> Result<Vec<Mail>, DigestsError> {
    Ok(sqlx::query_as!(
        Mail,
        "SELECT m.id, m.subscriber_id, s.email, m.kind, m.run_id, m.message_id, m.state, \
             m.postings, m.sends, m.smtp_response, m.created_at, m.sent_at \
         FROM mails m JOIN subscribers s ON s.id = m.subscriber_id ORDER BY m.id DESC LIMIT $1",
        limit
    )
    .fetch_all(db)
    .await?)
}
