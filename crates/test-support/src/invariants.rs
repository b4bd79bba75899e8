//! What must hold once trawl is quiet (after a fault test, or any test): a check any test can
//! call. Each broken invariant is reported with the run or key at fault.
//!
//! - no site lock is held by a run that has ended;
//! - no task sits in the in-flight list of a live worker unless that worker is running its run;
//! - every ended run's counts equal its links in `scrape_run_postings`;
//! - Redis agrees with the ledger: every task in Redis belongs to a run that is still queued or
//!   running, and every queued run has its task in Redis.
use std::collections::{HashMap, HashSet};

use queue_core::{Services, Task};

/// Every broken invariant, described; empty when all hold.
pub async fn violations(services: &Services) -> Vec<String> {
    let mut found = Vec::new();
    let db = &services.db;
    let keys = services.keys();
    let mut conn = services.redis.get().await.expect("redis connection");

    let runs: Vec<(String, String, Option<String>)> =
        sqlx::query!("SELECT run_id, status, worker_id FROM task_runs")
            .fetch_all(db)
            .await
            .expect("runs")
            .into_iter()
            .map(|row| (row.run_id, row.status, row.worker_id))
            .collect();
    let status: HashMap<&str, (&str, Option<&str>)> = runs
        .iter()
        .map(|(id, status, worker)| (id.as_str(), (status.as_str(), worker.as_deref())))
        .collect();
    let ended = |run: &str| {
        status
            .get(run)
            .is_some_and(|(s, _)| !matches!(*s, "queued" | "running"))
    };

    // Locks.
    let lock_prefix = keys.run_lock("");
    let locks: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{lock_prefix}*"))
        .query_async(&mut conn)
        .await
        .expect("lock keys");
    for key in locks {
        let holder: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("lock holder");
        if let Some(run) = holder
            && ended(&run)
        {
            found.push(format!("{key} is held by run {run}, which has ended"));
        }
    }

    // In-flight lists of live workers, in every queue in use.
    let mut in_redis = HashSet::new();
    for queue in services.known_queues().await.expect("known queues") {
        let live = queue.live_workers().await.expect("live workers");
        for worker in &live {
            for raw in queue.inflight(worker).await.expect("in-flight") {
                let Ok(task) = Task::parse_bytes(&raw) else {
                    found.push(format!(
                        "worker {worker} holds an unparsable task in flight: {}",
                        String::from_utf8_lossy(&raw)
                    ));
                    continue;
                };
                let run = task.run_id.unwrap_or_default();
                in_redis.insert(run.clone());
                match status.get(run.as_str()) {
                    Some(("running", Some(owner))) if owner == worker => {}
                    other => found.push(format!(
                        "worker {worker} holds run {run}'s task in flight but is not running \
                         it ({other:?})"
                    )),
                }
            }
        }
        for raw in queue.snapshot().await.expect("snapshot") {
            if let Some(run) = Task::parse_bytes(&raw).ok().and_then(|t| t.run_id) {
                if ended(&run) {
                    found.push(format!(
                        "run {run} has ended but its task is still in Redis"
                    ));
                }
                in_redis.insert(run);
            }
        }
    }
    for (run, state, _) in &runs {
        if state == "queued" && !in_redis.contains(run) {
            found.push(format!(
                "run {run} is queued but its task is nowhere in Redis"
            ));
        }
    }

    // Counts against links.
    // Counted here independently of `scrape_run_counts`, which the code under test uses.
    let mismatched = sqlx::query!(
        r#"SELECT r.run_id, r.jobs_found, count(p.job_id) AS "linked!" FROM task_runs r
         LEFT JOIN scrape_run_postings p USING (run_id)
         WHERE r.kind = 'scrape' AND r.status NOT IN ('queued', 'running')
         GROUP BY r.run_id, r.jobs_found, r.jobs_inserted, r.jobs_updated, r.jobs_unchanged
         HAVING r.jobs_found <> count(p.job_id)
             OR r.jobs_inserted <> count(*) FILTER (WHERE p.outcome = 'inserted')
             OR r.jobs_updated <> count(*) FILTER (WHERE p.outcome = 'updated')
             OR r.jobs_unchanged <> count(*) FILTER (WHERE p.outcome = 'unchanged')"#,
    )
    .fetch_all(db)
    .await
    .expect("counts");
    for row in mismatched {
        found.push(format!(
            "run {} reports {} postings but {} are linked to it",
            row.run_id, row.jobs_found, row.linked
        ));
    }
    found
}

/// How long trawl may take to settle: a run is recorded as ended a moment before its task is
/// acked, so a check right after a run may see that moment.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(10);

/// Panics with every broken invariant, unless they all hold within `SETTLE`.
pub async fn assert_invariants(services: &Services) {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let found = violations(services).await;
        if found.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "invariants broken:\n  {}",
            found.join("\n  ")
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
