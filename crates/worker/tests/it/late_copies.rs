//! A copy of a run that comes late — its worker was cut off, the task recovered and the run
//! ended on another worker — leaves the run's lock free however it ends, and a lock such a copy
//! left to an ended run does not stop the key's next run. The hosts fault test once found a
//! site's lock held by a run that had ended, its only attempt on the other worker: the cut-off
//! worker's claim had gone through once its cable was back.
use std::time::Duration;

use queue_core::store::{self, RunReport, RunStatus, StartOutcome};
use queue_core::{Plan, Services, Task, Trigger};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use test_support::{TestRedis, assert_invariants, eventually, redis_cmd};
use tokio_util::sync::CancellationToken;
use trawl_tasks::{Handler, HandlerError, RunContext};
use trawl_worker::{Processed, Registry, Worker, WorkerSettings};

use crate::helpers::process_next;

const LOCK: &str = "locked-site";

/// A kind whose runs hold `LOCK`. Asked to, its attempt is overtaken while it runs: the
/// handler does what another worker would have done meanwhile, start the run's next attempt
/// and finish it. (That worker's release of the lock is left out: in the race this stands
/// for, the late copy's claim went through after that release, which leaves the same state —
/// the lock held in the name of a run that has ended.)
struct Locked;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockedTask {
    #[serde(default)]
    overtaken: bool,
}

fn report(message: &str) -> RunReport {
    RunReport {
        status: RunStatus::Succeeded,
        message: message.to_owned(),
        error_detail: serde_json::json!({}),
        result: serde_json::json!({}),
    }
}

fn plan() -> Plan {
    Plan {
        queue: Locked::QUEUE.to_owned(),
        lock_key: Some(LOCK.to_owned()),
        max_retries: 0,
    }
}

impl Handler for Locked {
    type Payload = LockedTask;
    const KIND: &'static str = "locked";
    const QUEUE: &'static str = "locked";

    async fn plan(&self, _: &mut LockedTask) -> Result<Plan, HandlerError> {
        Ok(plan())
    }

    async fn run(&self, ctx: RunContext, task: LockedTask) -> Result<RunReport, HandlerError> {
        if task.overtaken {
            let db = &ctx.services.db;
            let newer = store::start_run(db, &ctx.run_id, &ctx.task_id, "the-other-worker")
                .await
                .expect("the newer attempt starts");
            let StartOutcome::Started { attempt } = newer else {
                panic!("the newer attempt did not start: {newer:?}");
            };
            let finished = store::finish_run(db, &ctx.run_id, attempt, &report("the newer one"))
                .await
                .expect("the newer attempt finishes");
            assert!(finished);
        }
        Ok(report("ran here"))
    }
}

fn locked_worker(services: &Services) -> std::sync::Arc<Worker> {
    let mut settings =
        WorkerSettings::new(format!("test-worker-{}", uuid::Uuid::new_v4().simple()));
    settings.block_for = Duration::from_millis(200);
    settings.lock_wait = Duration::from_secs(2);
    let registry = Registry::new().register(Locked);
    Worker::with_registry(services.clone(), settings, registry, Default::default())
        .expect("worker builds")
}

/// Records a `locked` run (its lock taken) and enqueues its task, as any submitter would.
async fn submit(services: &Services, overtaken: bool) -> String {
    let payload = serde_json::json!({ "overtaken": overtaken });
    let run_id = queue_core::new_run_id(Trigger::Manual);
    let task = Task::new(
        Locked::KIND,
        payload.as_object().cloned().unwrap_or_default(),
        run_id.clone(),
        Trigger::Manual,
    );
    queue_core::submit_run(services, &task, &plan())
        .await
        .expect("run submitted");
    run_id
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_copy_overtaken_by_a_newer_attempt_that_ended_leaves_the_lock_free(
    db: PgPool,
) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let worker = locked_worker(&services);
    let run_id = submit(&services, true).await;
    assert_eq!(services.locks.holder(LOCK).await?, Some(run_id.clone()));

    let processed = process_next(&worker).await;
    assert!(
        matches!(&processed, Processed::Superseded { run_id: id } if *id == run_id),
        "{processed:?}"
    );
    let run = store::get_run(&db, &run_id).await?.expect("run row");
    assert_eq!(
        (run.status, run.attempt, run.message.as_deref()),
        (RunStatus::Succeeded, 2, Some("the newer one"))
    );
    assert_eq!(services.locks.holder(LOCK).await?, None);
    assert_invariants(&services).await;
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_copy_that_claimed_the_lock_and_cannot_start_lets_go_once_the_run_ended(
    db: PgPool,
) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let worker = locked_worker(&services);
    let run_id = submit(&services, false).await;
    // The worker's start (the first UPDATE of `task_runs` from here on) waits until the run
    // has ended elsewhere, then fails as a broken connection would. A statement trigger fires
    // before any row is locked, so the test's own update that ends the run does not wait. (The
    // wait gives up after 10 s, so a test that fails first leaves no backend spinning.)
    sqlx::raw_sql(
        "CREATE SEQUENCE start_fires;
         CREATE FUNCTION fail_the_start() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF nextval('start_fires') = 1 THEN
                 FOR i IN 1..500 LOOP
                     EXIT WHEN EXISTS (SELECT 1 FROM task_runs WHERE finished_at IS NOT NULL);
                     PERFORM pg_sleep(0.02);
                 END LOOP;
                 RAISE EXCEPTION 'injected: the connection broke mid-start';
             END IF;
             RETURN NULL;
         END $$;
         CREATE TRIGGER fail_the_start BEFORE UPDATE ON task_runs
             FOR EACH STATEMENT EXECUTE FUNCTION fail_the_start();",
    )
    .execute(&db)
    .await?;

    let taking = tokio::spawn({
        let worker = worker.clone();
        async move { worker.run_once(&mut worker.consumer()).await }
    });
    eventually(Duration::from_secs(10), "the worker's start", || async {
        let fired: bool = sqlx::query_scalar("SELECT is_called FROM start_fires")
            .fetch_one(&db)
            .await
            .unwrap();
        fired.then_some(())
    })
    .await;
    // The worker has claimed the lock and is starting the run: it ends elsewhere meanwhile.
    assert_eq!(services.locks.holder(LOCK).await?, Some(run_id.clone()));
    sqlx::query(
        "UPDATE task_runs SET status = 'succeeded', finished_at = now(), message = 'ran elsewhere'
         WHERE run_id = $1",
    )
    .bind(&run_id)
    .execute(&db)
    .await?;

    let taken = taking.await?;
    let err = taken.expect_err("the start failed");
    assert!(format!("{err:#}").contains("injected"), "{err:#}");
    assert_eq!(
        services.locks.holder(LOCK).await?,
        None,
        "the lock is left to a run that has ended"
    );
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_lock_left_to_an_ended_run_does_not_stop_the_next_run(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let worker = locked_worker(&services);
    // A run that ended while a late copy of it held the lock: recorded with its lock, ended,
    // the lock still in its name.
    let ended = queue_core::new_run_id(Trigger::Manual);
    let task = Task::new(
        Locked::KIND,
        Default::default(),
        ended.clone(),
        Trigger::Manual,
    );
    queue_core::reserve_run(&services, &task, &plan()).await?;
    let StartOutcome::Started { attempt } =
        store::start_run(&db, &ended, "task_x", "the-other-worker").await?
    else {
        panic!("the run did not start");
    };
    assert!(store::finish_run(&db, &ended, attempt, &report("ended")).await?);
    assert_eq!(services.locks.holder(LOCK).await?, Some(ended.clone()));

    // A hand-written task of the kind: its run is planned and recorded by the worker, which
    // claims the lock without a submitter having taken it first.
    services
        .queue_named(Locked::QUEUE)
        .enqueue_raw(r#"{"kind":"locked"}"#)
        .await?;
    let processed = process_next(&worker).await;
    let Processed::Finished { run_id, status } = processed else {
        panic!("the run did not run: {processed:?}");
    };
    assert_eq!(status, RunStatus::Succeeded);
    assert_ne!(run_id, ended);
    assert_eq!(services.locks.holder(LOCK).await?, None);
    assert_invariants(&services).await;
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_duplicate_whose_lock_release_fails_is_given_back_and_lets_go_on_its_next_delivery(
    db: PgPool,
) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let mut services = redis.services(&db);
    // Every failed delivery counts against the task: room for the few this test makes.
    services.max_deliveries = 100;
    let worker = locked_worker(&services);
    let run_id = submit(&services, false).await;
    // The run ends on another worker, which is killed before it releases the lock: the task's
    // next delivery finds its run ended and the lock still in its name.
    let StartOutcome::Started { attempt } =
        store::start_run(&db, &run_id, "task_x", "the-other-worker").await?
    else {
        panic!("the run did not start");
    };
    assert!(store::finish_run(&db, &run_id, attempt, &report("ended elsewhere")).await?);
    // The release fails: the lock's key is of the wrong type for it (WRONGTYPE).
    let lock = services.queue.keys().run_lock(LOCK);
    let _: i64 = redis_cmd(&redis.pool, redis::cmd("DEL").arg(&lock)).await;
    let _: i64 = redis_cmd(
        &redis.pool,
        redis::cmd("HSET").arg(&lock).arg("held_by").arg(&run_id),
    )
    .await;

    let queue = services.queue_named(Locked::QUEUE);
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.clone().run(shutdown.clone()));
    eventually(Duration::from_secs(10), "the task given back", || async {
        let metrics = queue.metrics().await.unwrap();
        (metrics.delayed == 1).then_some(())
    })
    .await;
    // Not acked while its lock is not released: the run still holds it.
    let _: i64 = redis_cmd(&redis.pool, redis::cmd("DEL").arg(&lock)).await;
    let _: () = redis_cmd(&redis.pool, redis::cmd("SET").arg(&lock).arg(&run_id)).await;

    eventually(
        Duration::from_secs(10),
        "the next delivery acked",
        || async {
            let metrics = queue.metrics().await.unwrap();
            (metrics.pending + metrics.in_flight + metrics.delayed == 0).then_some(metrics)
        },
    )
    .await;
    shutdown.cancel();
    running.await?;
    assert_eq!(services.locks.holder(LOCK).await?, None);
    assert_eq!(queue.metrics().await?.dead, 0);
    let run = store::get_run(&db, &run_id).await?.expect("run row");
    assert_eq!(
        (run.status, run.attempt, run.message.as_deref()),
        (RunStatus::Succeeded, 1, Some("ended elsewhere"))
    );
    assert_invariants(&services).await;
    Ok(())
}
