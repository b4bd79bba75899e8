//! Snapshots, diffs and links in PostgreSQL. One transaction records a check: the snapshot, its
//! diff against the previous snapshot (once per diff hash), the links' state, the postings of
//! removed links marked inactive, and the detail runs of added links — so a snapshot delivered
//! twice, or a worker killed anywhere in it, queues each added link's detail task once.
use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use queue_core::{Plan, Task, Trigger};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::companies::Company;
use crate::detail::DetailTask;
use crate::links::{AtsBoard, PageLinks};
use crate::{CareersError, DETAIL_KIND, QUEUE};

/// Namespace of diff hashes (UUID v5), fixed forever.
const DIFF_NAMESPACE: Uuid = Uuid::from_u128(0x2b9e_41c7_0d5a_4f3e_8c61_7a90_d4e2_b815);

/// What recording a check did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Recorded {
    pub snapshot_id: i64,
    pub links: usize,
    pub added: usize,
    pub removed: usize,
    pub diff_hash: Option<String>,
    pub diff_enqueued: bool,
    /// Set when the page showed no links where it had some: nothing was removed.
    pub warning: Option<String>,
    /// Detail tasks recorded as queued runs, to be pushed to Redis after the commit (a crash
    /// in between leaves them to the reconciler, which pushes runs whose task is missing).
    #[serde(skip)]
    pub detail_tasks: Vec<Task>,
}

/// The run this attempt belongs to is still its own (attempt = fencing token).
async fn still_ours(
    tx: &mut sqlx::PgConnection,
    run_id: &str,
    attempt: i32,
) -> Result<(), CareersError> {
    let ours = sqlx::query_scalar!(
        "SELECT attempt FROM task_runs WHERE run_id = $1 AND status = 'running' FOR UPDATE",
        run_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    if ours != Some(attempt) {
        return Err(CareersError::Superseded(run_id.to_owned()));
    }
    Ok(())
}

/// Records one check of `company` by attempt `attempt` of `run_id`.
pub async fn record(
    db: &PgPool,
    company: &Company,
    run_id: &str,
    attempt: i32,
    page: &PageLinks,
    pages: i32,
) -> Result<Recorded, CareersError> {
    let mut tx = db.begin().await?;
    still_ours(&mut tx, run_id, attempt).await?;
    // One check of a company at a time records: the next one diffs against this one.
    sqlx::query!(
        "SELECT id FROM companies WHERE id = $1 FOR UPDATE",
        company.id
    )
    .fetch_one(&mut *tx)
    .await?;
    let previous = sqlx::query!(
        "SELECT id, links FROM career_snapshots WHERE company_id = $1 AND warning IS NULL \
         ORDER BY id DESC LIMIT 1",
        company.id
    )
    .fetch_optional(&mut *tx)
    .await?;
    let before: BTreeSet<String> = previous
        .as_ref()
        .map(|p| p.links.iter().cloned().collect())
        .unwrap_or_default();
    let now: Vec<String> = page.jobs.iter().cloned().collect();
    let boards = serde_json::to_value(page.boards.iter().collect::<Vec<&AtsBoard>>())
        .expect("boards serialize");
    if now.is_empty() && page.boards.is_empty() {
        let warning = if before.is_empty() {
            "the page shows no job links".to_owned()
        } else {
            format!(
                "the page shows no job links where it had {}: not read as every posting removed \
                 (site down or layout changed?)",
                before.len()
            )
        };
        let snapshot_id = sqlx::query_scalar!(
            "INSERT INTO career_snapshots (company_id, run_id, links, boards, pages, added, \
                 removed, warning) VALUES ($1, $2, '{}', $3, $4, 0, 0, $5) RETURNING id",
            company.id,
            run_id,
            boards,
            pages,
            warning
        )
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        return Ok(Recorded {
            snapshot_id,
            warning: Some(warning),
            ..Default::default()
        });
    }
    let added: Vec<String> = now
        .iter()
        .filter(|l| !before.contains(*l))
        .cloned()
        .collect();
    let removed: Vec<String> = before
        .iter()
        .filter(|l| !page.jobs.contains(*l))
        .cloned()
        .collect();
    let diff_hash = (!added.is_empty() || !removed.is_empty()).then(|| {
        let basis =
            serde_json::json!([company.id, previous.as_ref().map(|p| p.id), added, removed]);
        Uuid::new_v5(&DIFF_NAMESPACE, basis.to_string().as_bytes()).to_string()
    });
    let snapshot_id = sqlx::query_scalar!(
        "INSERT INTO career_snapshots (company_id, run_id, links, boards, pages, added, removed, \
             diff_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        company.id,
        run_id,
        &now,
        boards,
        pages,
        added.len() as i32,
        removed.len() as i32,
        diff_hash
    )
    .fetch_one(&mut *tx)
    .await?;
    // Seed 004's diff queue: a diff is enqueued only when links were added, once per hash.
    let diff_enqueued = match (&diff_hash, added.is_empty()) {
        (Some(hash), false) => sqlx::query_scalar!(
            "INSERT INTO career_diffs (diff_hash, company_id, snapshot_id, added, removed) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (diff_hash) DO NOTHING RETURNING true",
            hash,
            company.id,
            snapshot_id,
            &added,
            &removed
        )
        .fetch_optional(&mut *tx)
        .await?
        .is_some(),
        _ => false,
    };
    sqlx::query!(
        "INSERT INTO career_links (company_id, url) SELECT $1, unnest($2::text[]) \
         ON CONFLICT (company_id, url) DO UPDATE SET last_seen_at = now()",
        company.id,
        &now
    )
    .execute(&mut *tx)
    .await?;
    // Removed links: gone from the page, their postings inactive.
    sqlx::query!(
        "WITH gone AS (UPDATE career_links SET removed_at = now() \
             WHERE company_id = $1 AND url = ANY($2) AND removed_at IS NULL RETURNING job_id) \
         UPDATE jobs SET is_active = false, updated_at = now() \
         WHERE job_id IN (SELECT job_id FROM gone WHERE job_id IS NOT NULL)",
        company.id,
        &removed
    )
    .execute(&mut *tx)
    .await?;
    // Added links (new, or back after being removed) get one detail run each.
    let due = sqlx::query_scalar!(
        "SELECT url FROM career_links WHERE company_id = $1 AND url = ANY($2) \
             AND (detail_run_id IS NULL OR removed_at IS NOT NULL) ORDER BY url",
        company.id,
        &added
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut detail_tasks = Vec::with_capacity(due.len());
    for url in due {
        let run_id = queue_core::new_run_id(Trigger::Schedule);
        let payload = DetailTask {
            company: company.slug.clone(),
            url: url.clone(),
        };
        let task = Task::new(
            DETAIL_KIND,
            queue_core::payload_of(&payload),
            run_id.clone(),
            Trigger::Schedule,
        );
        let plan = detail_plan();
        queue_core::store::insert_run(&mut *tx, &queue_core::new_run(&task, &plan)).await?;
        sqlx::query!(
            "UPDATE career_links SET detail_run_id = $3, removed_at = NULL \
             WHERE company_id = $1 AND url = $2",
            company.id,
            url,
            run_id
        )
        .execute(&mut *tx)
        .await?;
        detail_tasks.push(task);
    }
    tx.commit().await?;
    Ok(Recorded {
        snapshot_id,
        links: now.len(),
        added: added.len(),
        removed: removed.len(),
        diff_hash,
        diff_enqueued,
        warning: None,
        detail_tasks,
    })
}

/// How a detail run is planned: the careers queue, no run lock (a page per run), three retries.
pub fn detail_plan() -> Plan {
    Plan {
        queue: QUEUE.to_owned(),
        lock_key: None,
        max_retries: 3,
    }
}

/// One check of a company, as the API and CLI list them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Snapshot {
    pub id: i64,
    pub company: String,
    pub run_id: String,
    pub taken_at: DateTime<Utc>,
    pub links: i32,
    pub pages: i32,
    pub added: i32,
    pub removed: i32,
    pub warning: Option<String>,
    pub diff_hash: Option<String>,
    pub diff_enqueued: bool,
    /// The links added and removed by this check's diff (empty when it made none).
    pub added_links: Vec<String>,
    pub removed_links: Vec<String>,
}

/// The latest `limit` checks, of one company or all.
pub async fn recent(
    db: &PgPool,
    company: Option<&str>,
    limit: i64,
) -> Result<Vec<Snapshot>, CareersError> {
    Ok(sqlx::query_as!(
        Snapshot,
        r#"SELECT s.id, c.slug AS company, s.run_id, s.taken_at,
               cardinality(s.links) AS "links!", s.pages, s.added, s.removed, s.warning,
               s.diff_hash, (d.diff_hash IS NOT NULL) AS "diff_enqueued!",
               COALESCE(d.added, '{}') AS "added_links!", COALESCE(d.removed, '{}') AS "removed_links!"
           FROM career_snapshots s JOIN companies c ON c.id = s.company_id
           LEFT JOIN career_diffs d ON d.snapshot_id = s.id
           WHERE $1::text IS NULL OR c.slug = $1
           ORDER BY s.id DESC LIMIT $2"#,
        company,
        limit
    )
    .fetch_all(db)
    .await?)
}
