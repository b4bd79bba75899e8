//! One scheduler pass: find due sites, and for each take its lock, record a `queued` run,
//! enqueue its task and move its `next_run_at` on.
use std::collections::HashSet;

use chrono::{DateTime, Utc};
use queue_core::{QueueError, Services, StoreError, Task, Trigger};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use trawl_pipeline::Alerts;
use trawl_scrape_runs::ScrapeTask;
use trawl_scrape_runs::sites::SiteSchedule;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PassError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Reconcile(#[from] queue_core::ReconcileError),
    #[error(transparent)]
    Submit(#[from] queue_core::SubmitError),
    #[error(transparent)]
    Pipeline(#[from] trawl_pipeline::PipelineError),
    #[error(transparent)]
    Embeddings(#[from] trawl_embeddings::EmbeddingsError),
}

/// What a pass did; the latest is kept in Redis for `GET /scheduler/status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct PassStats {
    /// Who ran the pass: `daemon` or `api`.
    pub origin: String,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Sites and recurring tasks due.
    pub due: u32,
    pub enqueued: u32,
    /// Due, but a run of the site (or recurring task) still holds its lock.
    pub skipped_locked: u32,
    /// Due, but another scheduler pass scheduled it first.
    pub skipped_claimed: u32,
    pub errors: u32,
    /// Dead workers whose in-flight tasks this pass recovered.
    pub recovered_workers: u32,
    /// Tasks of dead workers put back in the queue.
    pub requeued: u64,
    /// Tasks dead-lettered as poison (their workers kept dying).
    pub poisoned: u32,
    /// Retries whose delay was over, moved from the delayed set to the queue (workers do this
    /// too; whoever comes first moves each).
    #[serde(default)]
    pub promoted: u64,
    /// Runs whose task was lost from Redis, queued again by the reconciler.
    pub reconciled: u32,
    /// Runs whose task was lost once too often, failed by the reconciler.
    pub lost: u32,
    /// Lost runs left for the next pass because another session held their row (a worker cut
    /// off mid-write, until PostgreSQL ends its session).
    #[serde(default)]
    pub reconcile_held: u32,
    /// The runs this pass queued.
    pub run_ids: Vec<String>,
    /// What the pipelines' sweep found: slow stages and batches, batches stopped past their
    /// SLA, stages whose run ended outside them.
    #[serde(default)]
    pub pipelines: trawl_pipeline::Swept,
    /// Postings waiting for embedding, and the `embed_batch` runs this pass queued for them.
    #[serde(default)]
    pub embeddings: trawl_embeddings::Swept,
}

/// Runs one pass over at most `batch` due sites. Failures of single sites are counted and
/// logged; only a failure to read the due sites fails the pass.
pub async fn run_pass(
    services: &Services,
    origin: &str,
    batch: i64,
) -> Result<PassStats, PassError> {
    run_pass_alerting(services, origin, batch, &Alerts::default()).await
}

/// `run_pass` whose pipeline alerts also go to `alerts`' webhook.
pub async fn run_pass_alerting(
    services: &Services,
    origin: &str,
    batch: i64,
    alerts: &Alerts,
) -> Result<PassStats, PassError> {
    pass(services, origin, batch, Utc::now(), alerts).await
}

/// `run_pass` as if it were `now`: what is due, and when each site runs next, are reckoned
/// from it (tests drive schedules on a controlled clock this way).
pub async fn run_pass_at(
    services: &Services,
    origin: &str,
    batch: i64,
    now: DateTime<Utc>,
) -> Result<PassStats, PassError> {
    pass(services, origin, batch, now, &Alerts::default()).await
}

async fn pass(
    services: &Services,
    origin: &str,
    batch: i64,
    now: DateTime<Utc>,
    alerts: &Alerts,
) -> Result<PassStats, PassError> {
    let mut stats = PassStats {
        origin: origin.to_owned(),
        started_at: Some(Utc::now()),
        ..Default::default()
    };
    // First give dead workers' tasks back: they are older than anything this pass queues.
    recover_crashed(services, &mut stats).await?;
    for queue in services.known_queues().await? {
        stats.promoted += queue.promote_due().await?;
        // The dashboard's last-hour chart: a sample a minute, whoever passes.
        queue.record_depth().await?;
    }
    let reconciled = queue_core::reconcile(services, services.reconcile_grace).await?;
    for run_id in &reconciled.requeued {
        warn!(run_id = %run_id, event = "reconciled", "run's task was not in Redis; queued again");
    }
    stats.reconciled = reconciled.requeued.len() as u32;
    stats.lost = reconciled.failed.len() as u32;
    stats.reconcile_held = reconciled.held.len() as u32;
    count_repairs(&stats);
    let due = trawl_scrape_runs::sites::due_sites(&services.db, batch, now).await?;
    stats.due = due.len() as u32;
    for site in &due {
        match schedule_site(services, site, now).await {
            Ok(SiteOutcome::Enqueued(run_id)) => {
                stats.enqueued += 1;
                stats.run_ids.push(run_id);
            }
            Ok(SiteOutcome::Locked(holder)) => {
                info!(site_name = %site.site_name, held_by = %holder, event = "skipped", "site still running; skipped");
                stats.skipped_locked += 1;
            }
            Ok(SiteOutcome::Claimed) => stats.skipped_claimed += 1,
            Err(err) => {
                warn!(site_name = %site.site_name, error = format!("{err:#}"), "could not schedule site");
                stats.errors += 1;
            }
        }
    }
    crate::recurring::fire_due(services, batch, now, &mut stats).await?;
    stats.pipelines = trawl_pipeline::sweep(services, alerts).await?;
    stats.embeddings = trawl_embeddings::sweep(services).await?;
    stats.finished_at = Some(Utc::now());
    record(services, &stats).await?;
    Ok(stats)
}

/// Gives dead workers' tasks back to their queues (every queue in use); a poison task's run
/// fails with the reason.
async fn recover_crashed(services: &Services, stats: &mut PassStats) -> Result<(), PassError> {
    let (mut workers, mut requeued, mut poisoned) = (HashSet::new(), 0, 0);
    for queue in services.known_queues().await? {
        let recovery = queue.recover_crashed(services.max_deliveries).await?;
        for worker in &recovery.workers {
            warn!(worker_id = %worker, queue = queue.keys().queue_name(), event = "recovered", "worker presumed dead; its tasks were recovered");
        }
        for (raw, reason) in &recovery.poisoned {
            if let Some(run_id) = Task::parse_bytes(raw).ok().and_then(|task| task.run_id) {
                warn!(run_id = %run_id, event = "dead_letter", reason = %reason, "poison task dead-lettered");
                queue_core::fail_run(services, &run_id, reason).await?;
            }
        }
        workers.extend(recovery.workers);
        requeued += recovery.requeued;
        poisoned += recovery.poisoned.len() as u32;
    }
    stats.recovered_workers = workers.len() as u32;
    stats.requeued = requeued;
    stats.poisoned = poisoned;
    Ok(())
}

/// What recovery and the reconciler repaired, as counters (every pass adds, zeros included,
/// so each series exists from the first pass and `increase()` sees its first repair).
fn count_repairs(stats: &PassStats) {
    use metrics::counter;
    use telemetry::metric;
    counter!(metric::WORKERS_PRESUMED_DEAD).increment(stats.recovered_workers.into());
    counter!(metric::TASKS_RECOVERED, "outcome" => "requeued").increment(stats.requeued);
    counter!(metric::TASKS_RECOVERED, "outcome" => "poisoned").increment(stats.poisoned.into());
    counter!(metric::RUNS_RECONCILED, "outcome" => "requeued").increment(stats.reconciled.into());
    counter!(metric::RUNS_RECONCILED, "outcome" => "failed").increment(stats.lost.into());
    counter!(metric::RUNS_RECONCILED, "outcome" => "held").increment(stats.reconcile_held.into());
}

enum SiteOutcome {
    Enqueued(String),
    Locked(String),
    Claimed,
}

async fn schedule_site(
    services: &Services,
    site: &SiteSchedule,
    now: DateTime<Utc>,
) -> Result<SiteOutcome, PassError> {
    let run_id = queue_core::new_run_id(Trigger::Schedule);
    if let Some(holder) = queue_core::take_run_lock(services, &site.site_name, &run_id).await? {
        return Ok(SiteOutcome::Locked(holder));
    }
    // A definition or schedule that went bad after it was stored fails its run, saying why.
    let spec = site.schedule().and_then(|_| site.spec());
    let mut scrape = ScrapeTask::new(&site.site_name);
    if let Ok(spec) = &spec {
        scrape.apply_defaults(spec);
    }
    let task = scrape.into_task(run_id.clone(), Trigger::Schedule);
    let task_id = task.task_id.clone().unwrap_or_default();
    let plan = trawl_scrape_runs::plan_for(site);
    let run = queue_core::new_run(&task, &plan);
    // From now, never from the fire that was due: missed fires are caught up once.
    let next = match site.schedule() {
        Ok(schedule) => schedule.next_after(now, &mut rand::rng()),
        // A schedule that went bad in the table: try again in an hour, and say so below.
        Err(_) => now + chrono::Duration::hours(1),
    };
    let claimed =
        trawl_scrape_runs::runs::create_scheduled_run(&services.db, site.id, &run, now, next).await;
    if !matches!(claimed, Ok(true)) {
        services.locks.release(&site.site_name, &run_id).await?;
        return claimed
            .map(|_| SiteOutcome::Claimed)
            .map_err(PassError::from);
    }
    // A definition that went bad after it was stored still gets a run that says so.
    if let Err(err) = spec {
        queue_core::fail_run(services, &run_id, &err.to_string()).await?;
        return Err(err.into());
    }
    queue_core::enqueue_or_fail(services, &plan.queue, &task).await?;
    info!(site_name = %site.site_name, run_id = %run_id, task_id = %task_id, event = "enqueued", status = "queued", "run queued");
    Ok(SiteOutcome::Enqueued(run_id))
}

/// Keeps the pass's stats for `GET /scheduler/status` and adds them to the running totals.
async fn record(services: &Services, stats: &PassStats) -> Result<(), QueueError> {
    let keys = services.keys();
    let mut conn = services.redis.get().await?;
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("SET")
        .arg(keys.scheduler_last_pass())
        .arg(serde_json::to_string(stats).expect("stats serialize"))
        .ignore();
    for (field, value) in [
        ("passes", 1),
        ("enqueued", stats.enqueued.into()),
        ("skipped_locked", stats.skipped_locked.into()),
        ("skipped_claimed", stats.skipped_claimed.into()),
        ("errors", stats.errors.into()),
        ("recovered_workers", stats.recovered_workers.into()),
        ("requeued", stats.requeued),
        ("poisoned", stats.poisoned.into()),
        ("reconciled", stats.reconciled.into()),
        ("lost", stats.lost.into()),
        ("reconcile_held", stats.reconcile_held.into()),
    ] {
        pipe.cmd("HINCRBY")
            .arg(keys.scheduler_totals())
            .arg(field)
            .arg(value)
            .ignore();
    }
    pipe.query_async::<()>(&mut conn)
        .await
        .map_err(QueueError::from)
}

/// The latest pass and the totals over all passes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SchedulerStatus {
    pub last_pass: Option<PassStats>,
    pub totals: std::collections::BTreeMap<String, u64>,
}

pub async fn status(services: &Services) -> Result<SchedulerStatus, QueueError> {
    let keys = services.keys();
    let last_pass = services
        .queue
        .get_json(&keys.scheduler_last_pass())
        .await?
        .and_then(|value| serde_json::from_value(value).ok());
    let mut conn = services.redis.get().await?;
    let totals = redis::cmd("HGETALL")
        .arg(keys.scheduler_totals())
        .query_async(&mut conn)
        .await?;
    Ok(SchedulerStatus { last_pass, totals })
}
