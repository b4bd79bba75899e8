use std::time::Duration;

use queue_core::{Keys, Queue, Task, Trigger};
use test_support::TestRedis;

fn queue(redis: &TestRedis) -> Queue {
    Queue::new(
        redis.pool.clone(),
        Keys::new(&redis.prefix, "scraping"),
        Duration::from_secs(60),
    )
}

/// A worker takes the next task and dies holding it: its heartbeat runs out at once.
async fn take_and_die(queue: &Queue, redis: &TestRedis, worker: &str) -> String {
    queue
        .heartbeat(worker, Duration::from_millis(1))
        .await
        .unwrap();
    let raw = queue
        .consumer(&redis.url, worker, Duration::from_millis(200))
        .next()
        .await
        .unwrap()
        .expect("a task");
    tokio::time::sleep(Duration::from_millis(10)).await;
    raw
}

#[tokio::test]
async fn a_dead_workers_tasks_go_back_and_a_live_workers_stay() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let queue = queue(&redis);
    for n in 1..=2 {
        queue
            .enqueue(&Task::new("demo", format!("run_{n}"), Trigger::Manual))
            .await?;
    }
    let lost = take_and_die(&queue, &redis, "dead-worker").await;
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
    let (lost, again) = (Task::parse(&lost)?, Task::parse(&again)?);
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
    let task = Task::new("demo", "run_poison".into(), Trigger::Manual);
    queue.enqueue(&task).await?;
    for attempt in 1..=3 {
        take_and_die(&queue, &redis, &format!("victim-{attempt}")).await;
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
            let poisoned = Task::parse(&recovery.poisoned[0])?;
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
    let task = Task::new("demo", "run_1".into(), Trigger::Manual);
    queue.enqueue(&task).await?;
    take_and_die(&queue, &redis, "victim").await;
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
