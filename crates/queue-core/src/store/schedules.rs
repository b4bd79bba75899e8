//! `schedules`: recurring work of any kind, a named task template and when it runs.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{Payload, Schedule, StoreError, check_text};

/// A row of `schedules`.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct RecurringTask {
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    pub queue: String,
    pub payload: serde_json::Value,
    pub enabled: bool,
    pub interval_minutes: Option<i32>,
    pub cron: Option<String>,
    pub time_zone: Option<String>,
    pub max_retries: i32,
    pub last_run_at: Option<DateTime<Utc>>,
    pub next_run_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl RecurringTask {
    pub fn schedule(&self) -> Result<Schedule, StoreError> {
        when(
            self.interval_minutes,
            self.cron.as_deref(),
            self.time_zone.as_deref(),
        )
    }

    /// The payload as a task carries it.
    pub fn payload(&self) -> Payload {
        self.payload.as_object().cloned().unwrap_or_default()
    }
}

fn when(
    interval_minutes: Option<i32>,
    cron: Option<&str>,
    time_zone: Option<&str>,
) -> Result<Schedule, StoreError> {
    if interval_minutes.is_some() == cron.is_some() {
        return Err(StoreError::InvalidSchedule(
            "give either interval_minutes or cron".into(),
        ));
    }
    Schedule::from_row(interval_minutes.unwrap_or(0), cron, time_zone)
        .map_err(|err| StoreError::InvalidSchedule(err.to_string()))
}

/// What an operator registers (`trawl schedule upsert`, `POST /schedules`): exactly one of
/// `interval_minutes` and `cron`. Its checks answer 400 naming the field.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRecurringTask {
    #[schema(pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    pub name: String,
    /// The kind of the tasks it queues: one trawl runs (`POST /schedules` and `trawl schedule
    /// upsert` refuse any other, and a payload the kind refuses).
    #[schema(pattern = r"^[a-z][a-z0-9_]{0,31}$")]
    pub kind: String,
    /// The queue they go to: the kind's queue, the only one whose workers run the kind
    /// (default: the kind's queue; `POST /schedules` and `trawl schedule upsert` refuse another).
    #[serde(default)]
    #[schema(pattern = r"^[a-z][a-z0-9_-]{0,31}$")]
    pub queue: String,
    /// The tasks' payload, as the kind reads it (strictly: an unknown field is refused).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub payload: Payload,
    #[serde(default = "enabled")]
    pub enabled: bool,
    #[serde(default, deserialize_with = "crate::integral::option")]
    #[schema(minimum = 1)]
    pub interval_minutes: Option<i32>,
    /// A 5-field cron expression (`30 0 * * *`).
    #[serde(default)]
    #[schema(format = "cron")]
    pub cron: Option<String>,
    /// The IANA time zone `cron` is read in; default UTC.
    #[serde(default)]
    #[schema(format = "time-zone")]
    pub time_zone: Option<String>,
    #[serde(default = "max_retries", deserialize_with = "crate::integral::exact")]
    #[schema(minimum = 0, maximum = 100)]
    pub max_retries: i32,
}

fn enabled() -> bool {
    true
}

fn max_retries() -> i32 {
    3
}

fn invalid(reason: impl Into<String>) -> StoreError {
    StoreError::InvalidSchedule(reason.into())
}

/// Checks a recurring task the way `schedules` will, naming the field, before anything is
/// written (for callers that write it inside a transaction of their own).
pub fn check_recurring(new: &NewRecurringTask) -> Result<Schedule, StoreError> {
    check(new)
}

/// Checks a schedule the way the table will, naming the field, before anything is written.
fn check(new: &NewRecurringTask) -> Result<Schedule, StoreError> {
    for (field, value, pattern_ok) in [
        ("name", &new.name, name_ok(&new.name)),
        ("kind", &new.kind, kind_ok(&new.kind)),
        ("queue", &new.queue, crate::is_queue_name(&new.queue)),
    ] {
        check_text(field, value).map_err(invalid)?;
        if !pattern_ok {
            return Err(invalid(format!(
                "{field} {value:?} must be lowercase letters, digits, '_' or '-'"
            )));
        }
    }
    if serde_json::Value::Object(new.payload.clone())
        .to_string()
        .contains("\\u0000")
    {
        return Err(invalid("payload contains a NUL character"));
    }
    if !(0..=100).contains(&new.max_retries) {
        return Err(invalid("max_retries must be between 0 and 100"));
    }
    when(
        new.interval_minutes,
        new.cron.as_deref(),
        new.time_zone.as_deref(),
    )
}

/// The patterns `schedules` CHECKs: a name may start with a digit, a kind has no `-`.
fn name_ok(name: &str) -> bool {
    name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn kind_ok(kind: &str) -> bool {
    crate::is_queue_name(kind) && !kind.contains('-')
}

/// Inserts or replaces a recurring task. A new or rescheduled one waits for its first fire
/// (an interval: one interval from now).
pub async fn upsert_recurring(
    executor: impl sqlx::PgExecutor<'_>,
    new: &NewRecurringTask,
) -> Result<RecurringTask, StoreError> {
    let schedule = check(new)?;
    let first = schedule.next_after(Utc::now(), &mut rand::rng());
    Ok(sqlx::query_as!(
        RecurringTask,
        "INSERT INTO schedules (id, name, kind, queue, payload, enabled, interval_minutes, cron, \
             time_zone, max_retries, next_run_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, queue = EXCLUDED.queue, \
             payload = EXCLUDED.payload, enabled = EXCLUDED.enabled, \
             interval_minutes = EXCLUDED.interval_minutes, cron = EXCLUDED.cron, \
             time_zone = EXCLUDED.time_zone, max_retries = EXCLUDED.max_retries, \
             next_run_at = CASE WHEN schedules.cron IS DISTINCT FROM EXCLUDED.cron \
                     OR schedules.time_zone IS DISTINCT FROM EXCLUDED.time_zone \
                     OR schedules.interval_minutes IS DISTINCT FROM EXCLUDED.interval_minutes \
                 THEN EXCLUDED.next_run_at ELSE schedules.next_run_at END, \
             updated_at = now() \
         RETURNING id, name, kind, queue, payload, enabled, interval_minutes, cron, time_zone, \
             max_retries, last_run_at, next_run_at, created_at, updated_at",
        Uuid::new_v4(),
        new.name,
        new.kind,
        new.queue,
        serde_json::Value::Object(new.payload.clone()),
        new.enabled,
        new.interval_minutes,
        new.cron,
        new.time_zone,
        new.max_retries,
        first,
    )
    .fetch_one(executor)
    .await?)
}

pub async fn list_recurring(pool: &PgPool) -> Result<Vec<RecurringTask>, StoreError> {
    Ok(sqlx::query_as!(
        RecurringTask,
        "SELECT id, name, kind, queue, payload, enabled, interval_minutes, cron, time_zone, \
             max_retries, last_run_at, next_run_at, created_at, updated_at \
         FROM schedules ORDER BY name"
    )
    .fetch_all(pool)
    .await?)
}

/// Deletes a recurring task; its past runs stay. Returns whether it existed.
pub async fn delete_recurring(pool: &PgPool, name: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query!("DELETE FROM schedules WHERE name = $1", name)
        .execute(pool)
        .await?
        .rows_affected()
        == 1)
}

/// Enabled recurring tasks due at `now`, most overdue first.
pub async fn due_recurring(
    pool: &PgPool,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<RecurringTask>, StoreError> {
    Ok(sqlx::query_as!(
        RecurringTask,
        "SELECT id, name, kind, queue, payload, enabled, interval_minutes, cron, time_zone, \
             max_retries, last_run_at, next_run_at, created_at, updated_at \
         FROM schedules WHERE enabled AND (next_run_at IS NULL OR next_run_at <= $2) \
         ORDER BY next_run_at NULLS FIRST, name LIMIT $1",
        limit,
        now
    )
    .fetch_all(pool)
    .await?)
}

/// Claims one fire of a recurring task and records its run, in one transaction: the
/// compare-and-set on `next_run_at` makes racing passes queue one run, not two. Returns false
/// when another pass got there first (nothing written).
pub async fn claim_fire(
    pool: &PgPool,
    recurring: &RecurringTask,
    run: &super::NewRun<'_>,
    now: DateTime<Utc>,
    next_run_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await?;
    let claimed = sqlx::query!(
        "UPDATE schedules SET last_run_at = now(), next_run_at = $2, updated_at = now() \
         WHERE id = $1 AND enabled AND (next_run_at IS NULL OR next_run_at <= $3)",
        recurring.id,
        next_run_at,
        now,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if claimed == 0 {
        return Ok(false);
    }
    super::insert_run(&mut *tx, run).await?;
    sqlx::query!(
        "UPDATE task_runs SET schedule_id = $2 WHERE run_id = $1",
        run.run_id,
        recurring.id
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}
