//! The runs of one dequeued batch, read and started in one statement: the lifecycle's start
//! batched per `take_batch`, the way the acks are batched per finish.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::RunStatus;
use crate::StoreError;

/// A taken task's run as the batch statement found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenRun {
    /// The run's status before the statement (None: no such run).
    pub status: Option<RunStatus>,
    pub created_at: Option<DateTime<Utc>>,
    pub lock_key: Option<String>,
    /// Set when the statement started the run: its attempt number (the fencing token).
    pub started: Option<i32>,
    /// The run could have started but another transaction held its row, so the statement
    /// passed it by and changed nothing: see `StartOutcome::Busy`.
    pub busy: bool,
}

/// Reads the runs of `(run_id, task_id)` (one taken batch, each run once) and starts, as
/// `start_run` does each, those that need no lock: `queued` or `running` with no `lock_key`.
/// A run with a lock is only read: its worker claims the lock before it starts it.
pub async fn start_taken(
    pool: &PgPool,
    runs: &[(String, String)],
    worker_id: &str,
) -> Result<Vec<TakenRun>, StoreError> {
    let ids = runs.iter().map(|r| r.0.clone()).collect();
    let tasks = runs.iter().map(|r| r.1.clone()).collect();
    let workers = vec![worker_id.to_owned(); runs.len()];
    start_many(&mut *pool.acquire().await?, ids, tasks, workers, false).await
}

/// Reads the runs `ids` and starts those `queued` or `running` (and with no lock_key unless
/// `locked_too`) as the next attempt, task `tasks[i]` of worker `workers[i]`, in one statement.
/// A row another transaction holds is passed by (`busy`), never waited for.
pub(super) async fn start_many(
    conn: &mut PgConnection,
    ids: Vec<String>,
    tasks: Vec<String>,
    workers: Vec<String>,
    locked_too: bool,
) -> Result<Vec<TakenRun>, StoreError> {
    // The final SELECT sees the table as it was before the statement: a run it did not start
    // shows the status that stopped it. `run_id = ANY($1)` beside the joins with `task_runs`
    // keeps the plan on its run_id index whatever the planner guesses of unnest's size (a
    // prepared statement's generic plan otherwise scans the whole table per batch). The
    // attempts are reached from the rows changed, by primary key, with no `ANY`: beside it a
    // generic plan made while `task_run_attempts` was small prefers scanning the table once
    // per run (50 ms a batch in `trawl-bench lifecycle` once it had grown).
    //
    // `free` locks the startable rows first, SKIP LOCKED: a row held by another session (a
    // worker cut off mid-transaction keeps its rows until PostgreSQL ends its session, 30 s
    // and more) is passed by and reported busy. An UPDATE would wait for it, and with it this
    // worker's whole flush: every other task's start and end. NO KEY UPDATE is the lock the
    // UPDATE takes anyway, and the UPDATE finds its rows by `free`'s ids, not by joining it:
    // a 50-run start then costs PostgreSQL 3-4% more than with no lock (the join, 15%).
    // (`pgbench -f` of the statements in a rolled-back transaction, 2026-12-07.)
    let rows = sqlx::query!(
        r#"WITH asked AS (
               SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
                   AS a(run_id, task_id, worker_id)),
           free AS (
               SELECT run_id FROM task_runs
               WHERE run_id = ANY($1) AND status IN ('queued', 'running')
                   AND (lock_key IS NULL OR $4)
               FOR NO KEY UPDATE SKIP LOCKED),
           started AS (
               UPDATE task_runs r SET status = 'running', started_at = now(),
                   task_id = a.task_id, worker_id = a.worker_id, attempt = r.attempt + 1,
                   retry_at = NULL, message = NULL, updated_at = now()
               FROM asked a
               WHERE r.run_id = ANY(ARRAY(SELECT run_id FROM free)) AND r.run_id = a.run_id
                   AND r.status IN ('queued', 'running')
               RETURNING r.run_id, r.attempt, a.worker_id),
           abandoned AS (
               UPDATE task_run_attempts t SET status = 'abandoned', finished_at = now(),
                   message = 'attempt ' || s.attempt || ' started while this one was still running'
               FROM started s
               WHERE t.run_id = s.run_id AND t.status = 'running'),
           recorded AS (
               INSERT INTO task_run_attempts (run_id, attempt, worker_id)
               SELECT run_id, attempt, worker_id FROM started)
           SELECT a.run_id AS "run_id!", r.status AS "status?: RunStatus",
                  r.created_at AS "created_at?", r.lock_key, s.attempt AS "started?",
                  (s.attempt IS NULL AND r.status IN ('queued', 'running')
                      AND (r.lock_key IS NULL OR $4)) IS TRUE AS "busy!"
           FROM asked a LEFT JOIN started s USING (run_id)
               LEFT JOIN task_runs r ON r.run_id = a.run_id AND r.run_id = ANY($1)"#,
        &ids,
        &tasks,
        &workers,
        locked_too,
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut found: HashMap<String, TakenRun> = rows
        .into_iter()
        .map(|row| {
            let run = TakenRun {
                status: row.status,
                created_at: row.created_at,
                lock_key: row.lock_key,
                started: row.started,
                busy: row.busy,
            };
            (row.run_id, run)
        })
        .collect();
    Ok(ids
        .iter()
        .map(|id| {
            found.remove(id).unwrap_or(TakenRun {
                status: None,
                created_at: None,
                lock_key: None,
                started: None,
                busy: false,
            })
        })
        .collect())
}
