//! `site_schedules`: the sites to scrape, their schedules and definitions.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use trawl_scrape::SiteSpec;
use uuid::Uuid;

use queue_core::{Schedule, StoreError};

/// A row of `site_schedules`.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct SiteSchedule {
    pub id: Uuid,
    pub site_name: String,
    pub enabled: bool,
    pub interval_minutes: i32,
    pub last_run_at: Option<DateTime<Utc>>,
    pub next_run_at: Option<DateTime<Utc>>,
    pub payload: serde_json::Value,
    pub min_pause_seconds: i32,
    pub max_pause_seconds: i32,
    pub max_retries: i32,
    /// Runs on this 5-field cron expression instead of every `interval_minutes` when set.
    pub cron: Option<String>,
    /// The IANA zone `cron` is read in (default UTC).
    pub time_zone: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl SiteSchedule {
    /// When the site runs: its cron when it has one, else its interval.
    pub fn schedule(&self) -> Result<Schedule, StoreError> {
        Schedule::from_row(
            self.interval_minutes,
            self.cron.as_deref(),
            self.time_zone.as_deref(),
        )
        .map_err(|err| StoreError::InvalidSite(err.to_string()))
    }

    /// The site definition held in `payload`.
    pub fn spec(&self) -> Result<SiteSpec, StoreError> {
        SiteSpec::from_json(&self.payload).map_err(|err| StoreError::InvalidSite(err.to_string()))
    }
}

/// What an operator registers: a site, its schedule and its definition.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSite {
    pub site_name: String,
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default = "default_interval")]
    pub interval_minutes: i32,
    pub payload: serde_json::Value,
    #[serde(default = "default_min_pause")]
    pub min_pause_seconds: i32,
    #[serde(default = "default_max_pause")]
    pub max_pause_seconds: i32,
    #[serde(default = "default_max_retries")]
    pub max_retries: i32,
    /// A 5-field cron expression (`30 0 * * *`) to run on instead of `interval_minutes`.
    #[serde(default)]
    pub cron: Option<String>,
    /// The IANA time zone the cron expression is read in (`Europe/Paris`); default UTC.
    #[serde(default)]
    pub time_zone: Option<String>,
}

fn default_true() -> bool {
    true
}
fn default_interval() -> i32 {
    60
}
fn default_min_pause() -> i32 {
    2
}
fn default_max_pause() -> i32 {
    8
}
fn default_max_retries() -> i32 {
    3
}

/// Inserts or replaces a site. The definition is checked here, at load time, so a bad one is
/// refused with the field named instead of failing later in a worker.
pub async fn upsert_site(pool: &PgPool, site: &NewSite) -> Result<SiteSchedule, StoreError> {
    queue_core::check_text("site_name", &site.site_name).map_err(StoreError::InvalidSite)?;
    if site.site_name.trim().is_empty() {
        return Err(StoreError::InvalidSite("site_name is empty".into()));
    }
    // PostgreSQL's jsonb refuses NUL (`\u0000`) in any string of the definition.
    if site.payload.to_string().contains("\\u0000") {
        return Err(StoreError::InvalidSite(
            "payload contains a NUL character".into(),
        ));
    }
    SiteSpec::from_json(&site.payload).map_err(|err| StoreError::InvalidSite(err.to_string()))?;
    let schedule = Schedule::from_row(
        site.interval_minutes,
        site.cron.as_deref(),
        site.time_zone.as_deref(),
    )
    .map_err(|err| StoreError::InvalidSite(err.to_string()))?;
    // A new cron site waits for its first fire; an interval site runs at once, as before. A
    // site whose schedule changes is rescheduled by its new one.
    let first_run = matches!(schedule, Schedule::Cron { .. })
        .then(|| schedule.next_after(Utc::now(), &mut rand::rng()));
    if site.min_pause_seconds < 0 || site.max_pause_seconds < site.min_pause_seconds {
        return Err(StoreError::InvalidSite(
            "pauses must satisfy 0 <= min_pause_seconds <= max_pause_seconds".into(),
        ));
    }
    if !(0..=10).contains(&site.max_retries) {
        return Err(StoreError::InvalidSite(
            "max_retries must be between 0 and 10".into(),
        ));
    }
    let row = sqlx::query_as!(
        SiteSchedule,
        "INSERT INTO site_schedules (id, site_name, enabled, interval_minutes, payload, \
             min_pause_seconds, max_pause_seconds, max_retries, cron, time_zone, next_run_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (site_name) DO UPDATE SET enabled = EXCLUDED.enabled, \
             interval_minutes = EXCLUDED.interval_minutes, payload = EXCLUDED.payload, \
             min_pause_seconds = EXCLUDED.min_pause_seconds, \
             max_pause_seconds = EXCLUDED.max_pause_seconds, \
             max_retries = EXCLUDED.max_retries, cron = EXCLUDED.cron, \
             time_zone = EXCLUDED.time_zone, \
             next_run_at = CASE WHEN site_schedules.cron IS DISTINCT FROM EXCLUDED.cron \
                     OR site_schedules.time_zone IS DISTINCT FROM EXCLUDED.time_zone \
                     OR site_schedules.interval_minutes <> EXCLUDED.interval_minutes \
                 THEN EXCLUDED.next_run_at ELSE site_schedules.next_run_at END, \
             updated_at = now() \
         RETURNING id, site_name, enabled, interval_minutes, last_run_at, next_run_at, payload, \
             min_pause_seconds, max_pause_seconds, max_retries, cron, time_zone, created_at, \
             updated_at",
        Uuid::new_v4(),
        site.site_name,
        site.enabled,
        site.interval_minutes,
        site.payload,
        site.min_pause_seconds,
        site.max_pause_seconds,
        site.max_retries,
        site.cron,
        site.time_zone,
        first_run,
    )
    .fetch_one(pool)
    .await
    .map_err(|err| match &err {
        sqlx::Error::Database(db) if db.constraint().is_some() => {
            StoreError::InvalidSite(format!("violates {}", db.constraint().unwrap_or_default()))
        }
        _ => StoreError::Database(err),
    })?;
    Ok(row)
}

pub async fn get_site(pool: &PgPool, site_name: &str) -> Result<Option<SiteSchedule>, StoreError> {
    Ok(sqlx::query_as!(
        SiteSchedule,
        "SELECT id, site_name, enabled, interval_minutes, last_run_at, next_run_at, payload, \
             min_pause_seconds, max_pause_seconds, max_retries, cron, time_zone, created_at, \
             updated_at \
         FROM site_schedules WHERE site_name = $1",
        site_name
    )
    .fetch_optional(pool)
    .await?)
}

pub async fn list_sites(pool: &PgPool) -> Result<Vec<SiteSchedule>, StoreError> {
    Ok(sqlx::query_as!(
        SiteSchedule,
        "SELECT id, site_name, enabled, interval_minutes, last_run_at, next_run_at, payload, \
             min_pause_seconds, max_pause_seconds, max_retries, cron, time_zone, created_at, \
             updated_at \
         FROM site_schedules ORDER BY site_name"
    )
    .fetch_all(pool)
    .await?)
}

/// Enabled sites whose `next_run_at` is unset or not after `now`, most overdue first.
pub async fn due_sites(
    pool: &PgPool,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<SiteSchedule>, StoreError> {
    Ok(sqlx::query_as!(
        SiteSchedule,
        "SELECT id, site_name, enabled, interval_minutes, last_run_at, next_run_at, payload, \
             min_pause_seconds, max_pause_seconds, max_retries, cron, time_zone, created_at, \
             updated_at \
         FROM site_schedules WHERE enabled AND (next_run_at IS NULL OR next_run_at <= $2) \
         ORDER BY next_run_at NULLS FIRST, site_name LIMIT $1",
        limit,
        now
    )
    .fetch_all(pool)
    .await?)
}
