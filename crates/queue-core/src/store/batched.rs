//! Many runs' starts, and many runs' ends, each in one statement: the ledger's writes batched
//! the way the acks are. Tasks of one worker that start (or end) at the same moment share one
//! round trip, with the same compare-and-set as one run's write, and every write waiting when
//! a flush begins shares its transaction, so one commit (one WAL flush) serves them all: the
//! dequeued batches' starts, single starts and ends alike. Nothing is acked before its end is
//! committed, so a worker dying between a batch's PostgreSQL and Redis halves leaves its tasks
//! in flight, to be recovered and seen as already ended.
use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use sqlx::{PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::taken::{TakenRun, start_many};
use super::{RunReport, StartOutcome};
use crate::StoreError;

/// Starts `(run_id, task_id, worker_id)` as `start_run` does each, in one statement. A run may
/// appear once per call.
pub async fn start_runs(
    pool: &PgPool,
    runs: &[(String, String, String)],
) -> Result<Vec<StartOutcome>, StoreError> {
    start_runs_on(&mut *pool.acquire().await?, runs).await
}

async fn start_runs_on(
    conn: &mut PgConnection,
    runs: &[(String, String, String)],
) -> Result<Vec<StartOutcome>, StoreError> {
    let ids = runs.iter().map(|r| r.0.clone()).collect();
    let tasks = runs.iter().map(|r| r.1.clone()).collect();
    let workers = runs.iter().map(|r| r.2.clone()).collect();
    let found = start_many(conn, ids, tasks, workers, true).await?;
    Ok(found
        .into_iter()
        .map(|run| match (run.started, run.status) {
            (Some(attempt), _) => StartOutcome::Started { attempt },
            (None, _) if run.busy => StartOutcome::Busy,
            (None, Some(status)) => StartOutcome::AlreadyFinished { status },
            (None, None) => StartOutcome::Missing,
        })
        .collect())
}

/// Ends `(run_id, attempt, report)` as `finish_run` does each, in one statement. Returns, for
/// each, whether it was still its run's running attempt (compare-and-set).
pub async fn finish_runs(
    pool: &PgPool,
    runs: &[(String, i32, RunReport)],
) -> Result<Vec<bool>, StoreError> {
    finish_runs_on(&mut *pool.acquire().await?, runs).await
}

async fn finish_runs_on(
    conn: &mut PgConnection,
    runs: &[(String, i32, RunReport)],
) -> Result<Vec<bool>, StoreError> {
    let ids: Vec<String> = runs.iter().map(|r| r.0.clone()).collect();
    let attempts: Vec<i32> = runs.iter().map(|r| r.1).collect();
    let statuses: Vec<String> = runs
        .iter()
        .map(|r| r.2.status.as_str().to_owned())
        .collect();
    let messages: Vec<String> = runs.iter().map(|r| r.2.message.clone()).collect();
    let details: Vec<serde_json::Value> = runs.iter().map(|r| r.2.error_detail.clone()).collect();
    let results: Vec<serde_json::Value> = runs.iter().map(|r| r.2.result.clone()).collect();
    // `done` is MATERIALIZED: read once, it is otherwise inlined, and the prepared statement's
    // generic plan joins it by a nested loop that runs the six-array `unnest` again for every
    // run (`EXPLAIN ANALYZE` of that plan: `Function Scan on d ... loops=50` for 50 runs);
    // materialized, the arrays are unpacked once a statement.
    let finished = sqlx::query_scalar!(
        r#"WITH done AS MATERIALIZED (
               SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::jsonb[],
                   $6::jsonb[]) AS d(run_id, attempt, status, message, error_detail, result)),
           finished AS (
               UPDATE task_runs r SET status = d.status, finished_at = now(),
                   message = d.message, error_detail = d.error_detail, result = d.result,
                   updated_at = now()
               FROM done d
               WHERE r.run_id = ANY($1) AND r.run_id = d.run_id AND r.attempt = d.attempt
                   AND r.status = 'running'
               RETURNING r.run_id, r.attempt, d.status, d.message),
           ended AS (
               UPDATE task_run_attempts t SET status = f.status, finished_at = now(),
                   message = f.message, retried = false
               FROM finished f
               WHERE t.run_id = f.run_id AND t.attempt = f.attempt)
           SELECT run_id AS "run_id!" FROM finished"#,
        &ids,
        &attempts,
        &statuses,
        &messages,
        &details,
        &results,
    )
    .fetch_all(&mut *conn)
    .await?;
    let finished: HashSet<String> = finished.into_iter().collect();
    Ok(ids.iter().map(|id| finished.contains(id)).collect())
}

enum Write {
    /// A dequeued batch's runs, read and started as `start_taken` does.
    StartTaken {
        runs: Vec<(String, String)>,
        worker_id: String,
        reply: oneshot::Sender<Result<Vec<TakenRun>, StoreError>>,
    },
    Start {
        run: (String, String, String),
        reply: oneshot::Sender<Result<StartOutcome, StoreError>>,
    },
    Finish {
        run: (String, i32, RunReport),
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
}

impl Write {
    fn run_ids(&self) -> Vec<&str> {
        match self {
            Write::StartTaken { runs, .. } => runs.iter().map(|r| r.0.as_str()).collect(),
            Write::Start { run, .. } => vec![&run.0],
            Write::Finish { run, .. } => vec![&run.0],
        }
    }
}

/// A handle to one worker's ledger batching task (started on first use); clones share it.
#[derive(Clone)]
pub struct LedgerBatcher {
    pool: PgPool,
    max_batch: usize,
    tracker: TaskTracker,
    stop: CancellationToken,
    tx: Arc<OnceLock<mpsc::Sender<Write>>>,
}

impl LedgerBatcher {
    /// Batches at most `max_batch` writes per statement. The batching task runs on `tracker`
    /// and ends once `stop` is cancelled and every write handed to it is done.
    pub fn new(
        pool: PgPool,
        max_batch: usize,
        tracker: TaskTracker,
        stop: CancellationToken,
    ) -> Self {
        Self {
            pool,
            max_batch: max_batch.max(1),
            tracker,
            stop,
            tx: Arc::new(OnceLock::new()),
        }
    }

    /// `start_taken`, in the transaction of the starts and ends waiting at the same moment.
    pub async fn start_taken(
        &self,
        runs: &[(String, String)],
        worker_id: &str,
    ) -> Result<Vec<TakenRun>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let (runs, worker_id) = (runs.to_vec(), worker_id.to_owned());
        self.send(Write::StartTaken {
            runs,
            worker_id,
            reply,
        })
        .await?;
        answer.await.map_err(|_| stopped())?
    }

    /// `start_run`, batched with the starts and ends waiting at the same moment.
    pub async fn start(
        &self,
        run_id: &str,
        task_id: &str,
        worker_id: &str,
    ) -> Result<StartOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        let run = (run_id.to_owned(), task_id.to_owned(), worker_id.to_owned());
        self.send(Write::Start { run, reply }).await?;
        answer.await.map_err(|_| stopped())?
    }

    /// `finish_run`, batched likewise.
    pub async fn finish(
        &self,
        run_id: &str,
        attempt: i32,
        report: &RunReport,
    ) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        let run = (run_id.to_owned(), attempt, report.clone());
        self.send(Write::Finish { run, reply }).await?;
        answer.await.map_err(|_| stopped())?
    }

    async fn send(&self, write: Write) -> Result<(), StoreError> {
        let tx = self.tx.get_or_init(|| self.spawn());
        tx.send(write).await.map_err(|_| stopped())
    }

    fn spawn(&self) -> mpsc::Sender<Write> {
        let (tx, mut rx) = mpsc::channel::<Write>(self.max_batch * 4);
        let (pool, max_batch, stop) = (self.pool.clone(), self.max_batch, self.stop.clone());
        self.tracker.spawn(async move {
            let mut waiting = Vec::with_capacity(max_batch);
            loop {
                let received = tokio::select! {
                    biased;
                    n = rx.recv_many(&mut waiting, max_batch) => n,
                    () = stop.cancelled() => {
                        rx.close();
                        rx.recv_many(&mut waiting, max_batch).await
                    }
                };
                if received == 0 {
                    break;
                }
                // One write per run per statement; a second write of the same run waits for
                // the next one.
                while !waiting.is_empty() {
                    let mut seen = HashSet::new();
                    let (now, later): (Vec<_>, Vec<_>) = waiting.drain(..).partition(|w| {
                        let ids = w.run_ids();
                        let fresh = ids.iter().all(|id| !seen.contains(*id));
                        if fresh {
                            seen.extend(ids.into_iter().map(str::to_owned));
                        }
                        fresh
                    });
                    write_batch(&pool, now).await;
                    waiting = later;
                }
            }
        });
        tx
    }
}

fn stopped() -> StoreError {
    StoreError::Batched {
        reason: "the ledger batcher stopped".into(),
        unavailable: false,
    }
}

fn shared(err: &StoreError) -> StoreError {
    StoreError::Batched {
        reason: crate::error_chain(err),
        unavailable: err.is_unavailable(),
    }
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;
/// `(run_id, task_id, worker_id)`: a run to start.
type StartArgs = (String, String, String);
/// `(run_id, attempt, report)`: a run to end.
type FinishArgs = (String, i32, RunReport);

/// Every write of one flush in one transaction: one commit for the lot. A failure fails them
/// all (nothing was committed), each caller seeing the error.
async fn write_batch(pool: &PgPool, batch: Vec<Write>) {
    // The dequeued batches' runs one after the other, with how many each asked for.
    let (mut taken, mut taken_replies) = (Vec::new(), Vec::new());
    let (mut starts, mut start_replies) = (Vec::new(), Vec::new());
    let (mut finishes, mut finish_replies) = (Vec::new(), Vec::new());
    for write in batch {
        match write {
            Write::StartTaken {
                runs,
                worker_id,
                reply,
            } => {
                taken_replies.push((reply, runs.len()));
                taken.extend(
                    runs.into_iter()
                        .map(|(run_id, task_id)| (run_id, task_id, worker_id.clone())),
                );
            }
            Write::Start { run, reply } => {
                starts.push(run);
                start_replies.push(reply);
            }
            Write::Finish { run, reply } => {
                finishes.push(run);
                finish_replies.push(reply);
            }
        }
    }
    match write_all(pool, taken, starts, finishes).await {
        Ok((found, started, ended)) => {
            let mut found = found.into_iter();
            for (reply, asked) in taken_replies {
                let _ = reply.send(Ok(found.by_ref().take(asked).collect()));
            }
            answer(start_replies, Ok(started));
            answer(finish_replies, Ok(ended));
        }
        Err(err) => {
            let replies = taken_replies.into_iter().map(|(reply, _)| reply);
            answer(replies.collect(), Err(&err));
            answer(start_replies, Err(&err));
            answer(finish_replies, Err(&err));
        }
    }
}

/// Each of `replies` its answer, or all of them the error.
fn answer<T>(replies: Vec<Reply<T>>, answers: Result<Vec<T>, &StoreError>) {
    match answers {
        Ok(answers) => replies
            .into_iter()
            .zip(answers)
            .for_each(|(reply, answer)| {
                let _ = reply.send(Ok(answer));
            }),
        Err(err) => replies.into_iter().for_each(|reply| {
            let _ = reply.send(Err(shared(err)));
        }),
    }
}

/// The taken runs (as `start_taken`: a run with a lock only read), the starts and the ends, in
/// one transaction.
async fn write_all(
    pool: &PgPool,
    taken: Vec<StartArgs>,
    starts: Vec<StartArgs>,
    finishes: Vec<FinishArgs>,
) -> Result<(Vec<TakenRun>, Vec<StartOutcome>, Vec<bool>), StoreError> {
    let mut tx = pool.begin().await?;
    let found = if taken.is_empty() {
        Vec::new()
    } else {
        let (ids, tasks, workers) = columns(taken);
        start_many(&mut tx, ids, tasks, workers, false).await?
    };
    let started = if starts.is_empty() {
        Vec::new()
    } else {
        start_runs_on(&mut tx, &starts).await?
    };
    let ended = if finishes.is_empty() {
        Vec::new()
    } else {
        finish_runs_on(&mut tx, &finishes).await?
    };
    tx.commit().await?;
    Ok((found, started, ended))
}

fn columns(runs: Vec<StartArgs>) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut columns = (Vec::new(), Vec::new(), Vec::new());
    for (run_id, task_id, worker_id) in runs {
        columns.0.push(run_id);
        columns.1.push(task_id);
        columns.2.push(worker_id);
    }
    columns
}
