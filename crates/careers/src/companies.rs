//! Companies whose career pages are watched: added one by one or imported from seed 004's
//! `companies.csv` (all rows or none), listed, disabled. Each has its check schedule in
//! `schedules` (`career-<slug>`), so interval, cron and time zone work as for any recurring task.
use chrono::{DateTime, Utc};
use queue_core::store::{self, NewRecurringTask};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use trawl_scrape::FetchMode;

use crate::{CareersError, QUEUE, SNAPSHOT_KIND};

/// A company's check interval when none is given: four times a day.
pub const DEFAULT_INTERVAL_MINUTES: i32 = 360;

/// A company as an operator describes it (`trawl careers add`, `POST /careers/companies`, a
/// CSV row).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCompany {
    #[schema(min_length = 1, max_length = 200, pattern = r"^[^\x00]*\S[^\x00]*$")]
    pub name: String,
    /// The career page: http(s), not a private address (unless the deployment allows them).
    pub url: String,
    #[serde(default)]
    #[schema(value_type = String, pattern = "^(http|browser)$", example = "http")]
    pub fetch: FetchMode,
    #[serde(default)]
    pub wait_for: Option<String>,
    #[serde(default)]
    pub load_more: Option<String>,
    #[serde(default)]
    pub next_page: Option<String>,
    /// Pages (or "load more" clicks + 1) read per check, 1-50; default 5.
    #[serde(default, deserialize_with = "queue_core::integral::option")]
    #[schema(minimum = 1, maximum = 50)]
    pub max_pages: Option<i32>,
    /// Check every N minutes (default 360) — or on `cron`, not both.
    #[serde(default, deserialize_with = "queue_core::integral::option")]
    pub interval_minutes: Option<i32>,
    #[serde(default)]
    #[schema(format = "cron")]
    pub cron: Option<String>,
    #[serde(default)]
    #[schema(format = "time-zone")]
    pub time_zone: Option<String>,
}

/// A watched company.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Company {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub url: String,
    pub fetch: String,
    pub wait_for: Option<String>,
    pub load_more: Option<String>,
    pub next_page: Option<String>,
    pub max_pages: i32,
    pub enabled: bool,
    pub interval_minutes: Option<i32>,
    pub cron: Option<String>,
    pub time_zone: Option<String>,
    pub next_check_at: Option<DateTime<Utc>>,
    pub last_snapshot_at: Option<DateTime<Utc>>,
    /// Job links on the page at the last check.
    pub links: Option<i32>,
}

/// The part of a name a slug keeps: lower-case letters and digits, `-` between words.
pub fn slug(name: &str) -> String {
    let folded = trawl_scrape::text::fold(name);
    let mut slug = String::new();
    for c in folded.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let mut slug: String = slug.trim_end_matches('-').chars().take(48).collect();
    while slug.ends_with('-') {
        slug.pop();
    }
    slug
}

/// A company checked and ready to write.
struct Checked {
    slug: String,
    new: NewCompany,
    schedule: NewRecurringTask,
}

async fn check(new: NewCompany, allow_private: bool) -> Result<Checked, CareersError> {
    let invalid = |why: &str| CareersError::Invalid(why.to_owned());
    let name = new.name.trim();
    if name.is_empty() || name.len() > 200 || name.contains('\0') {
        return Err(invalid("name must be 1-200 characters"));
    }
    let slug = slug(name);
    if slug.is_empty() {
        return Err(invalid("name must contain a letter or a digit"));
    }
    let url = crate::address::check_url(&new.url, allow_private).await?;
    if !(1..=50).contains(&new.max_pages.unwrap_or(5)) {
        return Err(invalid("max_pages must be between 1 and 50"));
    }
    for (field, value) in [
        ("wait_for", &new.wait_for),
        ("load_more", &new.load_more),
        ("next_page", &new.next_page),
    ] {
        if let Some(css) = value
            && scraper::Selector::parse(css).is_err()
        {
            return Err(CareersError::Invalid(format!(
                "{field} {css:?} is not a CSS selector"
            )));
        }
    }
    if new.fetch == FetchMode::Http && (new.wait_for.is_some() || new.load_more.is_some()) {
        return Err(invalid(
            "wait_for and load_more need a browser: set fetch to \"browser\"",
        ));
    }
    let interval = match (&new.cron, new.interval_minutes) {
        (None, None) => Some(DEFAULT_INTERVAL_MINUTES),
        (_, interval) => interval,
    };
    let schedule = NewRecurringTask {
        name: schedule_name(&slug),
        kind: SNAPSHOT_KIND.to_owned(),
        queue: QUEUE.to_owned(),
        payload: queue_core::payload_of(&crate::snapshot::SnapshotTask {
            company: slug.clone(),
        }),
        enabled: true,
        interval_minutes: interval,
        cron: new.cron.clone(),
        time_zone: new.time_zone.clone(),
        max_retries: 3,
    };
    store::check_recurring(&schedule).map_err(|e| CareersError::Invalid(e.to_string()))?;
    Ok(Checked {
        slug,
        new: NewCompany {
            name: name.to_owned(),
            url: url.to_string(),
            ..new
        },
        schedule,
    })
}

/// The schedule row of a company.
pub fn schedule_name(slug: &str) -> String {
    format!("career-{slug}")
}

async fn write(tx: &mut sqlx::PgConnection, checked: &Checked) -> Result<i64, CareersError> {
    let new = &checked.new;
    let fetch = match new.fetch {
        FetchMode::Http => "http",
        FetchMode::Browser => "browser",
    };
    let id = sqlx::query_scalar!(
        "INSERT INTO companies (slug, name, url, fetch_mode, wait_for, load_more, next_page, max_pages) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (slug) DO UPDATE SET name = EXCLUDED.name, url = EXCLUDED.url, \
             fetch_mode = EXCLUDED.fetch_mode, wait_for = EXCLUDED.wait_for, \
             load_more = EXCLUDED.load_more, next_page = EXCLUDED.next_page, \
             max_pages = EXCLUDED.max_pages, enabled = true, updated_at = now() \
         RETURNING id",
        checked.slug,
        new.name,
        new.url,
        fetch,
        new.wait_for,
        new.load_more,
        new.next_page,
        new.max_pages.unwrap_or(5),
    )
    .fetch_one(&mut *tx)
    .await?;
    store::upsert_recurring(&mut *tx, &checked.schedule).await?;
    Ok(id)
}

/// Adds a company (or replaces the one with the same slug) with its schedule.
pub async fn add(
    db: &PgPool,
    new: NewCompany,
    allow_private: bool,
) -> Result<Company, CareersError> {
    let checked = check(new, allow_private).await?;
    let mut tx = db.begin().await?;
    write(&mut tx, &checked).await?;
    tx.commit().await?;
    get(db, &checked.slug)
        .await?
        .ok_or_else(|| CareersError::UnknownCompany(checked.slug.clone()))
}

/// Imports `company,url` rows (a header line, seed 004's `inputs/companies.csv`): every row is
/// checked first; one bad row refuses the whole file, naming each bad line, and nothing is
/// written. Returns the companies written.
pub async fn import_csv(
    db: &PgPool,
    csv_text: &str,
    allow_private: bool,
) -> Result<Vec<String>, CareersError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(csv_text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| CareersError::Invalid(format!("line 1: {e}")))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(name_at), Some(url_at)) = (column("company"), column("url")) else {
        return Err(CareersError::Invalid(format!(
            "line 1: the header must name the columns company and url, found {:?}",
            headers.iter().collect::<Vec<_>>()
        )));
    };
    let (mut rows, mut errors) = (Vec::new(), Vec::new());
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push(format!("line {line}: {e}"));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let new = NewCompany {
            name: record.get(name_at).unwrap_or_default().to_owned(),
            url: record.get(url_at).unwrap_or_default().to_owned(),
            fetch: FetchMode::Http,
            wait_for: None,
            load_more: None,
            next_page: None,
            max_pages: None,
            interval_minutes: None,
            cron: None,
            time_zone: None,
        };
        match check(new, allow_private).await {
            Ok(checked)
                if rows
                    .iter()
                    .any(|r: &(u64, Checked)| r.1.slug == checked.slug) =>
            {
                errors.push(format!("line {line}: {} is listed twice", checked.slug));
            }
            Ok(checked) => rows.push((line, checked)),
            Err(e) => errors.push(format!("line {line}: {e}")),
        }
    }
    if !errors.is_empty() {
        return Err(CareersError::Csv(errors));
    }
    let mut tx = db.begin().await?;
    for (_, checked) in &rows {
        write(&mut tx, checked).await?;
    }
    tx.commit().await?;
    Ok(rows.into_iter().map(|(_, c)| c.slug).collect())
}

/// Every company, with its schedule and last check.
pub async fn list(db: &PgPool) -> Result<Vec<Company>, CareersError> {
    companies(db, None).await
}

pub async fn get(db: &PgPool, slug: &str) -> Result<Option<Company>, CareersError> {
    Ok(companies(db, Some(slug)).await?.pop())
}

/// Every company, or the one named `slug`.
async fn companies(db: &PgPool, slug: Option<&str>) -> Result<Vec<Company>, CareersError> {
    Ok(sqlx::query_as!(
        Company,
        r#"SELECT c.id, c.slug, c.name, c.url, c.fetch_mode AS fetch, c.wait_for, c.load_more, c.next_page,
               c.max_pages, c.enabled, s.interval_minutes, s.cron, s.time_zone,
               s.next_run_at AS next_check_at, last.taken_at AS "last_snapshot_at?",
               cardinality(last.links) AS links
           FROM companies c
           LEFT JOIN schedules s ON s.name = 'career-' || c.slug
           LEFT JOIN LATERAL (SELECT taken_at, links FROM career_snapshots
                              WHERE company_id = c.id ORDER BY id DESC LIMIT 1) last ON true
           WHERE $1::text IS NULL OR c.slug = $1
           ORDER BY c.slug"#,
        slug
    )
    .fetch_all(db)
    .await?)
}

/// Enables or disables a company and its schedule. Returns false for an unknown slug.
pub async fn set_enabled(db: &PgPool, slug: &str, enabled: bool) -> Result<bool, CareersError> {
    let mut tx = db.begin().await?;
    let changed = sqlx::query!(
        "UPDATE companies SET enabled = $2, updated_at = now() WHERE slug = $1",
        slug,
        enabled
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query!(
        "UPDATE schedules SET enabled = $2, updated_at = now() WHERE name = $1",
        schedule_name(slug),
        enabled
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(changed == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_keep_letters_and_digits() {
        assert_eq!(slug("  Acme Corp. (Paris) "), "acme-corp-paris");
        assert_eq!(slug("Société Générale"), "societe-generale");
        assert_eq!(slug("!!!"), "");
    }
}
