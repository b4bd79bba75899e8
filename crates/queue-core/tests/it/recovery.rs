use std::time::Duration;

use crate::test_task;
use queue_core::{Keys, Queue, Recovery, Task, Trigger};
use test_support::TestRedis;

fn queue(redis: &TestRedis) -> Queue {
    Queue::new(
        redis.pool.clone(),
        Keys::new(&redis.prefix, "scraping"),
        Duration::from_secs(60),
    )
}

#[tokio::test]
async fn a_dead_workers_tasks_go_back_and_a_live_workers_stay() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let queue = queue(&redis);
    for n in 1..=2 {
        queue
            .enqueue(&test_task(format!("run_{n}"), Trigger::Manual))
            .await?;
    }
    let lost = redis.take_and_die(&queue, "dead-worker", 1).await.remove(0);
    queue
        .heartbeat("live-worker", Duration::from_secs(30))
        .await?;
    let kept = queue
        .consumer(&redis.url, "live-worker", Duration::from_millis(200))
        .next()
        .await?
        .unwrap();

    let recovery = queue.recover_crashed(3).await?;
    assert_eq!(
        (recovery.workers.clone(), recovery.requeued),
        (vec!["dead-worker".to_owned()], 1)
    );
    assert!(queue.inflight("dead-worker").await?.is_empty());
    assert_eq!(
        queue.inflight("live-worker").await?,
        vec![kept],
        "a live worker keeps its task"
    );
    let again = queue
        .consumer(&redis.url, "w3", Duration::from_millis(200))
        .next()
        .await?
        .expect("the lost task is back");
    let (lost, again) = (Task::parse_bytes(&lost)?, Task::parse_bytes(&again)?);
    assert_eq!(again.run_id, lost.run_id);
    assert_eq!(again.recovered, Some(1), "marked, to run alone next time");
    let metrics = queue.metrics().await?;
    assert!(!metrics.workers.contains(&"dead-worker".to_owned()));
    assert_eq!(queue.recover_crashed(3).await?.requeued, 0, "nothing twice");
    Ok(())
}

#[tokio::test]
async fn a_task_that_keeps_killing_workers_is_dead_lettered_as_poison() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let queue = queue(&redis);
    let task = test_task("run_poison".into(), Trigger::Manual);
    queue.enqueue(&task).await?;
    for attempt in 1..=3 {
        redis
            .take_and_die(&queue, &format!("victim-{attempt}"), 1)
            .await;
        let recovery = queue.recover_crashed(3).await?;
        if attempt < 3 {
            assert_eq!(
                (recovery.requeued, recovery.poisoned.len()),
                (1, 0),
                "attempt {attempt}"
            );
        } else {
            assert_eq!(recovery.requeued, 0);
            assert_eq!(recovery.poisoned.len(), 1);
            let poisoned = Task::parse_bytes(&recovery.poisoned[0].0)?;
            assert_eq!(poisoned.run_id, task.run_id);
            assert_eq!(
                poisoned.recovered,
                Some(2),
                "as it was when it killed the third"
            );
        }
    }
    let dead = queue.dead_letters(10).await?;
    assert_eq!(dead.len(), 1);
    let dead_task = Task::parse(&dead[0].task)?;
    assert_eq!(
        (dead_task.run_id, dead_task.recovered),
        (task.run_id.clone(), Some(2))
    );
    assert!(
        dead[0]
            .reason
            .starts_with("poison task: its worker died 3 times"),
        "{}",
        dead[0].reason
    );
    assert_eq!(queue.metrics().await?.pending, 0);
    Ok(())
}

#[tokio::test]
async fn an_acked_task_forgets_its_recoveries() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let queue = queue(&redis);
    let task = test_task("run_1".into(), Trigger::Manual);
    queue.enqueue(&task).await?;
    redis.take_and_die(&queue, "victim", 1).await;
    queue.recover_crashed(3).await?;
    queue.heartbeat("w2", Duration::from_secs(30)).await?;
    let raw = queue
        .consumer(&redis.url, "w2", Duration::from_millis(200))
        .next()
        .await?
        .unwrap();
    queue
        .ack(
            "w2",
            &raw,
            task.task_id.as_deref().unwrap(),
            &serde_json::json!({}),
        )
        .await?;
    let deliveries: i64 = test_support::redis_cmd(
        &redis.pool,
        redis::cmd("HLEN").arg(queue.keys().deliveries()),
    )
    .await;
    assert_eq!(deliveries, 0);
    Ok(())
}

/// A worker dies holding `tasks` in flight (its heartbeat runs out at once), and recovery runs.
async fn die_with(queue: &Queue, redis: &TestRedis, worker: &str, tasks: &[&[u8]]) -> Recovery {
    queue
        .heartbeat(worker, Duration::from_millis(1))
        .await
        .unwrap();
    for raw in tasks {
        let _: i64 = test_support::redis_cmd(
            &redis.pool,
            redis::cmd("LPUSH")
                .arg(queue.keys().inflight(worker))
                .arg(*raw),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    let recovery = queue.recover_crashed(3).await.unwrap();
    // The scene stays as the test sets it: recovered tasks are not left to pile up.
    let _: i64 =
        test_support::redis_cmd(&redis.pool, redis::cmd("DEL").arg(queue.keys().pending())).await;
    recovery
}

/// Issue 7, finding 11: on a fleet whose workers are killed from outside, a task that happened
/// to be on a killed worker again and again is not poison: other workers died meanwhile
/// without it, which explains the deaths.
#[tokio::test]
async fn deaths_explained_by_other_deaths_blame_nobody() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let queue = queue(&redis);
    let innocent = test_task("run_innocent".into(), Trigger::Manual);
    let mut raw = innocent.to_json().into_bytes();
    for round in 1..=5 {
        let other = test_task(format!("run_other_{round}"), Trigger::Manual);
        die_with(
            &queue,
            &redis,
            &format!("bystander-{round}"),
            &[other.to_json().as_bytes()],
        )
        .await;
        let recovery = die_with(&queue, &redis, &format!("holder-{round}"), &[&raw]).await;
        assert!(recovery.poisoned.is_empty(), "round {round}: {recovery:?}");
        // What recovery put back, as the next worker would take it.
        let mut again = innocent.clone();
        again.recovered = Some(round);
        raw = again.to_json().into_bytes();
    }
    assert!(queue.dead_letters(10).await?.is_empty());
    Ok(())
}

/// The poison rule still catches a task that kills every worker it touches, on its
/// MAX_DELIVERIES-th death, even when the first death was shared with an innocent task.
#[tokio::test]
async fn a_poison_task_is_caught_within_max_deliveries_even_in_company() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let queue = queue(&redis);
    let poison = test_task("run_poison".into(), Trigger::Manual).to_json();
    let neighbour = test_task("run_neighbour".into(), Trigger::Manual).to_json();
    let first = die_with(
        &queue,
        &redis,
        "victim-1",
        &[poison.as_bytes(), neighbour.as_bytes()],
    )
    .await;
    assert_eq!((first.requeued, first.poisoned.len()), (2, 0));
    let second = die_with(&queue, &redis, "victim-2", &[poison.as_bytes()]).await;
    assert_eq!((second.requeued, second.poisoned.len()), (1, 0));
    let third = die_with(&queue, &redis, "victim-3", &[poison.as_bytes()]).await;
    assert_eq!(
        third.poisoned.len(),
        1,
        "caught on its third death (MAX_DELIVERIES)"
    );
    let (raw, reason) = &third.poisoned[0];
    assert_eq!(
        Task::parse_bytes(raw)?.run_id.as_deref(),
        Some("run_poison")
    );
    assert!(reason.contains("MAX_DELIVERIES"), "{reason}");
    assert_eq!(
        queue.dead_letters(10).await?.len(),
        1,
        "the neighbour is not poison"
    );
    Ok(())
}

/// A task that cannot be read as UTF-8 is recovered and dead-lettered like any other message:
/// it neither breaks recovery nor the reconciler's snapshot.
#[tokio::test]
async fn bytes_that_are_not_utf8_survive_recovery_and_snapshots() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let queue = queue(&redis);
    let garbage: &[u8] = b"{\"site_name\":\"d\xff\xfe\"}";
    let _: i64 = test_support::redis_cmd(
        &redis.pool,
        redis::cmd("LPUSH").arg(queue.keys().pending()).arg(garbage),
    )
    .await;
    assert_eq!(queue.snapshot().await?, vec![garbage.to_vec()]);
    let _: i64 =
        test_support::redis_cmd(&redis.pool, redis::cmd("DEL").arg(queue.keys().pending())).await;
    for n in 1..=3 {
        die_with(&queue, &redis, &format!("victim-{n}"), &[garbage]).await;
    }
    let dead = queue.dead_letters(10).await?;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].task.contains("site_name"), "{:?}", dead[0]);
    Ok(())
}
