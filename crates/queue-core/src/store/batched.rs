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

use super::taken::{TakenRun, start_taken_on};
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
    let found = super::taken::start_many(conn, ids, tasks, workers, true).await?;
    Ok(found
        .into_iter()
        .map(|run| match (run.started, run.status) {
            (Some(attempt), _) => StartOutcome::Started { attempt },
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
    let finished = sqlx::query_scalar!(
        r#"WITH done AS (
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

/// Every write of one flush in one transaction: one commit for the lot. A failure fails them
/// all (nothing was committed), each caller seeing the error.
async fn write_batch(pool: &PgPool, batch: Vec<Write>) {
    let (mut taken, mut starts, mut finishes) = (Vec::new(), Vec::new(), Vec::new());
    for write in batch {
        match write {
            Write::StartTaken {
                runs,
                worker_id,
                reply,
            } => taken.push((runs, worker_id, reply)),
            Write::Start { run, reply } => starts.push((run, reply)),
            Write::Finish { run, reply } => finishes.push((run, reply)),
        }
    }
    let written = write_all(pool, &taken, &starts, &finishes).await;
    match written {
        Ok((found, started, ended)) => {
            for ((_, _, reply), found) in taken.into_iter().zip(found) {
                let _ = reply.send(Ok(found));
            }
            for ((_, reply), outcome) in starts.into_iter().zip(started) {
                let _ = reply.send(Ok(outcome));
            }
            for ((_, reply), done) in finishes.into_iter().zip(ended) {
                let _ = reply.send(Ok(done));
            }
        }
        Err(err) => {
            taken.into_iter().for_each(|(_, _, r)| {
                let _ = r.send(Err(shared(&err)));
            });
            starts.into_iter().for_each(|(_, r)| {
                let _ = r.send(Err(shared(&err)));
            });
            finishes.into_iter().for_each(|(_, r)| {
                let _ = r.send(Err(shared(&err)));
            });
        }
    }
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;
/// A dequeued batch's `(run_id, task_id)`s, its worker, and who waits for the answer.
type TakenAsk = (Vec<(String, String)>, String, Reply<Vec<TakenRun>>);
/// `(run_id, task_id, worker_id)` to start.
type StartAsk = ((String, String, String), Reply<StartOutcome>);
/// `(run_id, attempt, report)` to end.
type FinishAsk = ((String, i32, RunReport), Reply<bool>);
type Written = (Vec<Vec<TakenRun>>, Vec<StartOutcome>, Vec<bool>);

async fn write_all(
    pool: &PgPool,
    taken: &[TakenAsk],
    starts: &[StartAsk],
    finishes: &[FinishAsk],
) -> Result<Written, StoreError> {
    let mut tx = pool.begin().await?;
    // The dequeued batches' runs in one statement per worker (a worker's batcher sees one).
    let mut found = vec![Vec::new(); taken.len()];
    let mut workers: Vec<&str> = taken.iter().map(|t| t.1.as_str()).collect();
    workers.sort_unstable();
    workers.dedup();
    for worker_id in workers {
        let requests: Vec<usize> = (0..taken.len())
            .filter(|&i| taken[i].1 == worker_id)
            .collect();
        let runs: Vec<(String, String)> = requests
            .iter()
            .flat_map(|&i| taken[i].0.iter().cloned())
            .collect();
        let mut answers = start_taken_on(&mut tx, &runs, worker_id).await?.into_iter();
        for i in requests {
            found[i] = answers.by_ref().take(taken[i].0.len()).collect();
        }
    }
    let started = if starts.is_empty() {
        Vec::new()
    } else {
        let runs: Vec<_> = starts.iter().map(|(run, _)| run.clone()).collect();
        start_runs_on(&mut tx, &runs).await?
    };
    let ended = if finishes.is_empty() {
        Vec::new()
    } else {
        let runs: Vec<_> = finishes.iter().map(|(run, _)| run.clone()).collect();
        finish_runs_on(&mut tx, &runs).await?
    };
    tx.commit().await?;
    Ok((found, started, ended))
}
