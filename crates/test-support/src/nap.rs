//! `nap`: a kind of work that exists only in the tests. It sleeps as long as its task says, so
//! a test can hold a worker busy for a known time, and it proves that a kind other than
//! `scrape` gets the whole lifecycle (ledger, retries, recovery, cancel) with no code of its own.
use std::time::Duration;

use queue_core::store::{RunReport, RunStatus};
use queue_core::{Plan, Services, Trigger};
use serde::{Deserialize, Serialize};
use trawl_tasks::{Handler, HandlerError, RunContext};

/// Sleeps; fails retryably on its first `fail_first` attempts when asked to. Queue `naps`.
pub struct Nap;

/// The same on a queue of its own (`snoozes`): the backlog a test piles up beside naps.
pub struct Snooze;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NapTask {
    pub millis: u64,
    /// Attempts before this one fail with a retryable error (0: none).
    #[serde(default)]
    pub fail_first: i32,
    /// The delay those failures ask for (none: the lifecycle's backoff).
    #[serde(default)]
    pub retry_after_ms: Option<u64>,
    /// Panic instead of sleeping (a bug in a kind).
    #[serde(default)]
    pub panic: bool,
}

impl NapTask {
    pub fn new(millis: u64) -> Self {
        Self {
            millis,
            fail_first: 0,
            retry_after_ms: None,
            panic: false,
        }
    }
}

/// Longest nap a task may ask for.
const MAX_NAP_MS: u64 = 60_000;

impl Handler for Nap {
    type Payload = NapTask;
    const KIND: &'static str = "nap";
    const QUEUE: &'static str = "naps";

    fn check(payload: &NapTask) -> Result<(), String> {
        check_nap(payload)
    }

    async fn run(&self, ctx: RunContext, task: NapTask) -> Result<RunReport, HandlerError> {
        nap(ctx, task).await
    }
}

impl Handler for Snooze {
    type Payload = NapTask;
    const KIND: &'static str = "snooze";
    const QUEUE: &'static str = "snoozes";

    fn check(payload: &NapTask) -> Result<(), String> {
        check_nap(payload)
    }

    async fn run(&self, ctx: RunContext, task: NapTask) -> Result<RunReport, HandlerError> {
        nap(ctx, task).await
    }
}

fn check_nap(payload: &NapTask) -> Result<(), String> {
    if payload.millis > MAX_NAP_MS {
        return Err(format!(
            "millis must be at most {MAX_NAP_MS}, got {}",
            payload.millis
        ));
    }
    Ok(())
}

async fn nap(ctx: RunContext, task: NapTask) -> Result<RunReport, HandlerError> {
    if ctx.attempt <= task.fail_first {
        let failed = HandlerError::retryable(format!("nap attempt {} fails", ctx.attempt));
        return Err(match task.retry_after_ms {
            Some(ms) => failed.with_delay(Duration::from_millis(ms)),
            None => failed,
        });
    }
    assert!(!task.panic, "a nap that panics");
    tokio::select! {
        () = tokio::time::sleep(Duration::from_millis(task.millis)) => Ok(RunReport {
            status: RunStatus::Succeeded,
            message: format!("slept {} ms", task.millis),
            error_detail: serde_json::json!({}),
            result: serde_json::json!({"slept_ms": task.millis}),
        }),
        () = ctx.cancel.cancelled() => Err(HandlerError::fatal("cancelled by an operator")),
    }
}

/// Records and enqueues a nap run on the `naps` queue, as any submitter would. Returns its run
/// id.
pub async fn submit_nap(services: &Services, millis: u64, fail_first: i32) -> String {
    submit_nap_task(
        services,
        &NapTask {
            fail_first,
            ..NapTask::new(millis)
        },
    )
    .await
}

/// `submit_nap` of any nap.
pub async fn submit_nap_task(services: &Services, nap: &NapTask) -> String {
    let payload = serde_json::to_value(nap).expect("a nap serializes");
    let payload = payload.as_object().cloned().unwrap_or_default();
    let run_id = queue_core::new_run_id(Trigger::Manual);
    let task = queue_core::Task::new(Nap::KIND, payload, run_id.clone(), Trigger::Manual);
    let plan = Plan {
        queue: Nap::QUEUE.to_owned(),
        lock_key: None,
        max_retries: 3,
    };
    queue_core::submit_run(services, &task, &plan)
        .await
        .expect("nap submitted");
    run_id
}

/// Records a queued nap run `run_id` (task id `t-<run_id>`) with no task anywhere in Redis.
pub async fn record_nap_run_without_task(db: &sqlx::PgPool, run_id: &str) {
    let payload = serde_json::Map::from_iter([("millis".to_owned(), serde_json::json!(1))]);
    queue_core::store::create_run(
        db,
        &queue_core::store::NewRun {
            run_id,
            kind: "nap",
            queue: "naps",
            task_id: &format!("t-{run_id}"),
            trigger: queue_core::Trigger::Manual,
            payload: &payload,
            lock_key: None,
            max_retries: 0,
        },
    )
    .await
    .expect("run recorded");
}
