//! The ledger's batched writes keep every run's compare-and-set: many starts and ends in one
//! statement behave as the same writes one by one.
use queue_core::store::{self, LedgerBatcher, NewRun, RunReport, RunStatus, StartOutcome};
use queue_core::{Payload, Trigger};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

async fn queued(db: &PgPool, run_id: &str) {
    store::create_run(
        db,
        &NewRun {
            run_id,
            kind: "test",
            queue: "tests",
            task_id: "t",
            trigger: Trigger::Manual,
            payload: &Payload::new(),
            lock_key: None,
            max_retries: 0,
        },
    )
    .await
    .unwrap();
}

fn succeeded() -> RunReport {
    RunReport {
        status: RunStatus::Succeeded,
        ..RunReport::failed("done")
    }
}

fn start(id: &str) -> (String, String, String) {
    (id.to_owned(), "t".to_owned(), "w".to_owned())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn batched_starts_and_ends_are_compare_and_set_per_run(db: PgPool) -> anyhow::Result<()> {
    queued(&db, "r1").await;
    queued(&db, "r2").await;
    let outcomes = store::start_runs(&db, &[start("r1"), start("r2"), start("nope")]).await?;
    assert_eq!(
        outcomes,
        vec![
            StartOutcome::Started { attempt: 1 },
            StartOutcome::Started { attempt: 1 },
            StartOutcome::Missing
        ]
    );
    // r1 redelivered: attempt 2 owns it, attempt 1 is abandoned and can no longer end it.
    assert_eq!(
        store::start_runs(&db, &[start("r1")]).await?,
        vec![StartOutcome::Started { attempt: 2 }]
    );
    let ended = store::finish_runs(
        &db,
        &[("r1".into(), 1, succeeded()), ("r2".into(), 1, succeeded())],
    )
    .await?;
    assert_eq!(ended, vec![false, true]);
    assert_eq!(
        store::start_runs(&db, &[start("r2")]).await?,
        vec![StartOutcome::AlreadyFinished {
            status: RunStatus::Succeeded
        }]
    );
    let attempts: Vec<_> = store::run_attempts(&db, "r1")
        .await?
        .into_iter()
        .map(|a| a.status.as_str())
        .collect();
    assert_eq!(attempts, vec!["abandoned", "running"]);
    Ok(())
}

/// A row another session holds (a worker cut off mid-transaction keeps its rows until
/// PostgreSQL ends its session) is passed by, not waited for: the batch's other runs start,
/// that one is `Busy` with nothing changed, and starts once the row is free. An ended run's
/// row is only read, held or not.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_row_held_by_another_session_is_busy_not_waited_for(db: PgPool) -> anyhow::Result<()> {
    for id in ["r1", "held", "r3", "ended"] {
        queued(&db, id).await;
    }
    store::start_run(&db, "ended", "t", "w").await?;
    assert!(store::finish_run(&db, "ended", 1, &succeeded()).await?);
    let mut other = db.begin().await?;
    sqlx::query("SELECT 1 FROM task_runs WHERE run_id IN ('held', 'ended') FOR UPDATE")
        .execute(&mut *other)
        .await?;
    let limit = std::time::Duration::from_secs(5);
    let batch = [start("r1"), start("held"), start("r3"), start("ended")];
    let outcomes = tokio::time::timeout(limit, store::start_runs(&db, &batch)).await??;
    let ended = StartOutcome::AlreadyFinished {
        status: RunStatus::Succeeded,
    };
    let started = StartOutcome::Started { attempt: 1 };
    assert_eq!(
        outcomes,
        vec![
            started.clone(),
            StartOutcome::Busy,
            started.clone(),
            ended.clone()
        ]
    );
    for (id, expected) in [("held", StartOutcome::Busy), ("ended", ended)] {
        let alone = tokio::time::timeout(limit, store::start_run(&db, id, "t", "w")).await??;
        assert_eq!(alone, expected, "{id} alone");
    }
    let taken = [("held".to_owned(), "t".to_owned())];
    let found = tokio::time::timeout(limit, store::start_taken(&db, &taken, "w")).await??;
    assert!(found[0].busy && found[0].started.is_none(), "{found:?}");
    let run = store::get_run(&db, "held").await?.expect("run row");
    assert_eq!((run.status, run.attempt), (RunStatus::Queued, 0));
    assert!(store::run_attempts(&db, "held").await?.is_empty());

    other.rollback().await?;
    assert_eq!(store::start_run(&db, "held", "t", "w").await?, started);
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn the_batcher_serves_many_callers_and_orders_two_writes_of_one_run(
    db: PgPool,
) -> anyhow::Result<()> {
    for n in 0..40 {
        queued(&db, &format!("run_{n}")).await;
    }
    let (tracker, stop) = (TaskTracker::new(), CancellationToken::new());
    let batcher = LedgerBatcher::new(db.clone(), 16, tracker.clone(), stop.clone());
    let mut starting = tokio::task::JoinSet::new();
    for n in 0..40 {
        let batcher = batcher.clone();
        starting.spawn(async move { batcher.start(&format!("run_{n}"), "t", "w").await });
    }
    // The same run started twice at once: two attempts, in some order, never the same one.
    let (a, b) = tokio::join!(
        batcher.start("run_0", "t", "w"),
        batcher.start("run_0", "t", "w")
    );
    let mut twice = [a?, b?];
    while let Some(done) = starting.join_next().await {
        assert!(matches!(done??, StartOutcome::Started { .. }));
    }
    twice.sort_by_key(|o| format!("{o:?}"));
    let attempts: Vec<i32> = twice
        .iter()
        .map(|o| match o {
            StartOutcome::Started { attempt } => *attempt,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(attempts.len(), 2);
    assert_ne!(attempts[0], attempts[1]);
    let finished = batcher.finish("run_5", 1, &succeeded()).await?;
    assert!(finished);
    stop.cancel();
    tracker.close();
    tracker.wait().await;
    let status: String = sqlx::query_scalar("SELECT status FROM task_runs WHERE run_id = 'run_5'")
        .fetch_one(&db)
        .await?;
    assert_eq!(status, "succeeded");
    Ok(())
}

/// A submitter killed between taking a run lock and recording its run leaves the lock behind:
/// after ORPHAN_LOCK_AGE it is released and taken, but never while it is young (its run may be
/// being recorded right now) or while its run exists.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_lock_left_by_a_run_never_recorded_is_taken_over(db: PgPool) -> anyhow::Result<()> {
    let redis = test_support::TestRedis::new();
    let services = redis.services(&db);
    let key = services.keys().run_lock("schedule:nightly");
    let aged = services.lock_ttl - queue_core::ORPHAN_LOCK_AGE - std::time::Duration::from_secs(1);
    let set = |holder: &'static str, ttl: std::time::Duration| {
        let (pool, key) = (redis.pool.clone(), key.clone());
        async move {
            let _: () = test_support::redis_cmd(
                &pool,
                redis::cmd("SET")
                    .arg(key)
                    .arg(holder)
                    .arg("PX")
                    .arg(ttl.as_millis() as u64),
            )
            .await;
        }
    };
    // Young: perhaps being recorded this instant.
    set("ghost", services.lock_ttl).await;
    let held = queue_core::take_run_lock(&services, "schedule:nightly", "mine").await?;
    assert_eq!(held.as_deref(), Some("ghost"));
    // Old, but its run exists: really busy.
    queued(&db, "real").await;
    set("real", aged).await;
    let held = queue_core::take_run_lock(&services, "schedule:nightly", "mine").await?;
    assert_eq!(held.as_deref(), Some("real"));
    // Old, and no such run: orphaned, taken over.
    set("ghost", aged).await;
    assert_eq!(
        queue_core::take_run_lock(&services, "schedule:nightly", "mine").await?,
        None
    );
    assert_eq!(
        services.locks.holder("schedule:nightly").await?.as_deref(),
        Some("mine")
    );
    Ok(())
}

/// A lock whose run has ended (a copy of the run claimed it again and lost its connection
/// before letting go, and nothing redelivers that copy) is taken over at once, however young;
/// while its run is active it is busy.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_lock_left_by_an_ended_run_is_taken_over_at_once(db: PgPool) -> anyhow::Result<()> {
    let redis = test_support::TestRedis::new();
    let services = redis.services(&db);
    queued(&db, "earlier").await;
    assert_eq!(
        queue_core::take_run_lock(&services, "site:a", "earlier").await?,
        None
    );
    let held = queue_core::take_run_lock(&services, "site:a", "mine").await?;
    assert_eq!(held.as_deref(), Some("earlier"), "its run is still queued");
    sqlx::query(
        "UPDATE task_runs SET status = 'succeeded', finished_at = now() \
         WHERE run_id = 'earlier'",
    )
    .execute(&db)
    .await?;
    assert_eq!(
        queue_core::take_run_lock(&services, "site:a", "mine").await?,
        None
    );
    assert_eq!(
        services.locks.holder("site:a").await?.as_deref(),
        Some("mine")
    );
    Ok(())
}

/// One taken batch's runs in one statement: the ones that need no lock start (a redelivered
/// one as its next attempt); a locked run, an ended run and a missing one are only read.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_taken_batch_starts_its_lockless_runs_and_reads_the_rest(
    db: PgPool,
) -> anyhow::Result<()> {
    queued(&db, "free").await;
    queued(&db, "again").await;
    queued(&db, "ended").await;
    store::create_run(
        &db,
        &NewRun {
            run_id: "locked",
            kind: "test",
            queue: "tests",
            task_id: "t",
            trigger: Trigger::Manual,
            payload: &Payload::new(),
            lock_key: Some("site:demo"),
            max_retries: 0,
        },
    )
    .await?;
    store::start_runs(&db, &[start("again"), start("ended")]).await?;
    store::finish_runs(&db, &[("ended".into(), 1, succeeded())]).await?;

    let asked: Vec<(String, String)> = ["free", "again", "locked", "ended", "nope"]
        .iter()
        .map(|id| (id.to_string(), format!("task-{id}")))
        .collect();
    let found = store::start_taken(&db, &asked, "w2").await?;
    let seen: Vec<_> = found
        .iter()
        .map(|run| (run.status, run.lock_key.as_deref(), run.started))
        .collect();
    assert_eq!(
        seen,
        vec![
            (Some(RunStatus::Queued), None, Some(1)),
            (Some(RunStatus::Running), None, Some(2)),
            (Some(RunStatus::Queued), Some("site:demo"), None),
            (Some(RunStatus::Succeeded), None, None),
            (None, None, None),
        ]
    );
    assert!(found[..4].iter().all(|run| run.created_at.is_some()));
    // Started as `start_run` starts: its worker and task recorded, the older attempt abandoned.
    let again = store::get_run(&db, "again").await?.unwrap();
    assert_eq!(
        (again.worker_id.as_deref(), again.task_id.as_deref()),
        (Some("w2"), Some("task-again"))
    );
    let attempts: Vec<_> = store::run_attempts(&db, "again")
        .await?
        .into_iter()
        .map(|a| a.status)
        .collect();
    assert_eq!(
        attempts,
        vec![
            store::AttemptStatus::Abandoned,
            store::AttemptStatus::Running
        ]
    );
    let locked = store::get_run(&db, "locked").await?.unwrap();
    assert_eq!((locked.status, locked.attempt), (RunStatus::Queued, 0));
    Ok(())
}

/// Runs recorded together whose tasks cannot be pushed (Redis unreachable) are failed, each
/// with the reason: none is left `queued` without a task.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn runs_whose_tasks_cannot_be_pushed_are_failed_with_the_reason(db: PgPool) {
    let redis = test_support::TestRedis::new();
    // Nothing listens on port 1: every Redis call is refused at once.
    let unreachable = queue_core::create_pool("redis://127.0.0.1:1", 2).unwrap();
    let services = queue_core::Services::new(db.clone(), unreachable, &redis.config("unused"));
    let mut tasks = Vec::new();
    for n in 0..3 {
        let run_id = format!("run_push_{n}");
        queued(&db, &run_id).await;
        tasks.push(queue_core::Task::new(
            "test",
            Payload::new(),
            run_id,
            Trigger::Manual,
        ));
    }
    queue_core::enqueue_all_or_fail(&services, "tests", &tasks)
        .await
        .unwrap_err();
    for task in &tasks {
        let run = store::get_run(&db, task.run_id.as_deref().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(run.status, RunStatus::Failed);
        let message = run.message.unwrap_or_default();
        assert!(
            message.starts_with("could not enqueue the task"),
            "{message}"
        );
    }
}
