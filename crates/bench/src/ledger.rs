//! The ledger's statements alone: runs started and finished by the very batch statements a
//! worker's `LedgerBatcher` sends (`store::start_taken`, `store::finish_runs`), one batch after
//! another (one statement at a time), with no Redis, no worker and no handler. What PostgreSQL
//! spends per run here is the floor of the lifecycle's database work: no change to the workers,
//! the queue or the batching takes a run below it; only a change to the rows and statements can.
use anyhow::Context;
use queue_core::store::{self, NewRun, RunReport, RunStatus};
use queue_core::{Services, Trigger};

use crate::cpu::{Span, wall_ms};

/// Runs per statement: about what the lifecycle's workers send (a statement log of a 3,000-run
/// lifecycle with 32 slots showed ~45 runs a statement).
pub const BATCH: usize = 50;

/// What a no-op run ends with: succeeded, with nothing to say.
pub fn noop_report() -> RunReport {
    RunReport {
        status: RunStatus::Succeeded,
        message: String::new(),
        error_detail: serde_json::json!({}),
        result: serde_json::json!({}),
    }
}

/// Records `n` no-op runs of `kind` on `queue` (not timed), then starts and finishes them in
/// batches of `BATCH`, one statement at a time.
pub async fn start_and_finish(
    services: &Services,
    kind: &str,
    queue: &str,
    n: usize,
) -> anyhow::Result<Span> {
    let ids: Vec<(String, String)> = (0..n)
        .map(|i| (format!("ledger_{i}"), format!("task_ledger_{i}")))
        .collect();
    let payload = serde_json::Map::new();
    for chunk in ids.chunks(BATCH) {
        let mut tx = services.db.begin().await?;
        for (run_id, task_id) in chunk {
            let run = NewRun {
                run_id,
                kind,
                queue,
                task_id,
                trigger: Trigger::Manual,
                payload: &payload,
                lock_key: None,
                max_retries: 0,
            };
            store::insert_run(&mut *tx, &run).await?;
        }
        tx.commit().await?;
    }
    let report = noop_report();
    let first_ms = wall_ms()?;
    for chunk in ids.chunks(BATCH) {
        let taken = store::start_taken(&services.db, chunk, "ledger-alone").await?;
        let ends = chunk
            .iter()
            .zip(taken)
            .map(|((run_id, _), run)| {
                let attempt = run.started.context("a recorded run did not start")?;
                Ok((run_id.clone(), attempt, report.clone()))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let finished = store::finish_runs(&services.db, &ends).await?;
        anyhow::ensure!(
            finished.iter().all(|&done| done),
            "a started run did not finish"
        );
    }
    Ok(Span {
        first_ms,
        last_ms: wall_ms()?,
    })
}

#[cfg(test)]
mod tests {
    use sqlx::PgPool;

    use super::*;

    /// The measured loop does what its figure says: every run it records is started once and
    /// finished, through more than one batch.
    #[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
    async fn every_run_is_started_once_and_finished(db: PgPool) -> anyhow::Result<()> {
        let redis = test_support::TestRedis::new();
        let services = redis.services(&db);
        let n = BATCH * 2 + 7;
        let span = start_and_finish(&services, "noop", "bench", n).await?;
        assert!(span.last_ms >= span.first_ms && span.per_second(n) > 0.0);
        for i in 0..n {
            let run_id = format!("ledger_{i}");
            let run = store::get_run(&db, &run_id)
                .await?
                .context("a recorded run")?;
            assert_eq!(
                (run.status, run.attempt),
                (RunStatus::Succeeded, 1),
                "{run_id}"
            );
            let attempts: Vec<_> = store::run_attempts(&db, &run_id)
                .await?
                .into_iter()
                .map(|attempt| (attempt.attempt, attempt.status))
                .collect();
            assert_eq!(attempts, [(1, store::AttemptStatus::Succeeded)], "{run_id}");
        }
        Ok(())
    }
}
