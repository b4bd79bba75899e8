use std::time::Duration;

use crate::test_task;
use queue_core::{GivenBack, Keys, Queue, Swept, Taken, Task, Trigger};
use test_support::{TestRedis, redis_cmd};

fn queue(redis: &TestRedis) -> Queue {
    Queue::new(
        redis.pool.clone(),
        Keys::new(&redis.prefix, "scraping"),
        Duration::from_secs(60),
    )
}

#[tokio::test]
async fn dequeue_moves_into_flight_and_ack_removes() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let queue = queue(&redis);
    let first = test_task("run_1".into(), Trigger::Manual);
    let second = test_task("run_2".into(), Trigger::Manual);
    queue.enqueue(&first).await?;
    queue.enqueue(&second).await?;
    let mut consumer = queue.consumer(&redis.url, "w1", Duration::from_millis(100));

    let raw = consumer.next().await?.expect("a task");
    assert_eq!(Task::parse_bytes(&raw)?, first, "first in, first out");
    let metrics = queue.metrics().await?;
    assert_eq!(
        (metrics.pending, metrics.in_flight),
        (1, 0),
        "w1 has no heartbeat yet, so it is not listed"
    );
    queue.heartbeat("w1", Duration::from_secs(10)).await?;
    let metrics = queue.metrics().await?;
    assert_eq!(
        (metrics.pending, metrics.in_flight, metrics.workers_alive),
        (1, 1, 1)
    );
    assert_eq!(queue.inflight("w1").await?, vec![raw.clone()]);

    let summary = serde_json::json!({"status": "succeeded"});
    assert!(queue.ack("w1", &raw, "task_1", &summary).await?);
    assert!(queue.inflight("w1").await?.is_empty());
    assert!(
        !queue.ack("w1", &raw, "task_1", &summary).await?,
        "a second ack finds nothing"
    );
    let stored = queue.get_json(&queue.keys().result("task_1")).await?;
    assert_eq!(stored, Some(summary));
    let ttl: i64 = redis_cmd(
        &redis.pool,
        redis::cmd("TTL").arg(queue.keys().result("task_1")),
    )
    .await;
    assert!(
        (1..=60).contains(&ttl),
        "results expire after RESULT_TTL ({ttl})"
    );
    Ok(())
}

#[tokio::test]
async fn empty_queue_returns_none_after_the_block() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let queue = queue(&redis);
    let mut consumer = queue.consumer(&redis.url, "w1", Duration::from_millis(100));
    assert_eq!(consumer.next().await?, None);
    Ok(())
}

#[tokio::test]
async fn dead_letter_keeps_the_message_and_reason() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let queue = queue(&redis);
    queue.enqueue_raw("{not json").await?;
    let mut consumer = queue.consumer(&redis.url, "w1", Duration::from_millis(100));
    let raw = consumer.next().await?.expect("the raw message");
    assert_eq!(
        queue.dead_letter("w1", &raw, "malformed task JSON").await?,
        1
    );
    assert!(queue.inflight("w1").await?.is_empty());
    let dead = queue.dead_letters(10).await?;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].task, "{not json");
    assert_eq!(dead[0].reason, "malformed task JSON");
    assert_eq!(dead[0].worker_id, "w1");
    Ok(())
}

#[tokio::test]
async fn requeue_gives_in_flight_tasks_back_first() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let queue = queue(&redis);
    for n in 1..=3 {
        queue
            .enqueue(&test_task(format!("run_{n}"), Trigger::Manual))
            .await?;
    }
    let mut consumer = queue.consumer(&redis.url, "w1", Duration::from_millis(100));
    let taken = consumer.next().await?.expect("task");
    assert_eq!(queue.requeue_inflight("w1").await?, 1);
    let mut other = queue.consumer(&redis.url, "w2", Duration::from_millis(100));
    assert_eq!(
        other.next().await?,
        Some(taken),
        "a requeued task is taken next"
    );
    Ok(())
}

#[tokio::test]
async fn adopt_replaces_the_in_flight_copy() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let queue = queue(&redis);
    queue.enqueue_raw(r#"{"site_name":"demo"}"#).await?;
    let mut consumer = queue.consumer(&redis.url, "w1", Duration::from_millis(100));
    let raw = consumer.next().await?.expect("task");
    let complete = test_task("manual_1".into(), Trigger::Manual).to_json();
    assert!(queue.adopt("w1", &raw, &complete).await?);
    assert_eq!(queue.inflight("w1").await?, vec![complete.into_bytes()]);
    Ok(())
}

#[tokio::test]
async fn dead_letters_are_retried_as_fresh_runs_or_deleted_by_id() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let queue = queue(&redis);
    let task = test_task("sched_failed".into(), Trigger::Schedule);
    queue.enqueue(&task).await?;
    queue.enqueue_raw("garbage").await?;
    let mut consumer = queue.consumer(&redis.url, "w1", Duration::from_millis(100));
    for reason in ["site unreachable", "malformed task JSON"] {
        let raw = consumer.next().await?.unwrap();
        queue.dead_letter("w1", &raw, reason).await?;
    }
    let dead = queue.dead_letters(10).await?;
    let (garbage, parsed) = (&dead[0], &dead[1]);
    assert!(garbage.id.starts_with("dl_") && garbage.id != parsed.id);

    let retried = queue
        .retry_dead_letter(&parsed.id)
        .await?
        .expect("the entry exists");
    let fresh = Task::parse(&retried)?;
    assert_eq!(
        (
            fresh.payload["name"].as_str().unwrap(),
            fresh.run_id.clone(),
            fresh.trigger
        ),
        ("demo", None, Some(Trigger::Manual))
    );
    assert_eq!(
        consumer.next().await?,
        Some(retried.into_bytes()),
        "queued again"
    );
    assert_eq!(
        queue.retry_dead_letter(&parsed.id).await?,
        None,
        "retried once"
    );

    assert!(queue.delete_dead_letter(&garbage.id).await?);
    assert!(!queue.delete_dead_letter(&garbage.id).await?);
    assert!(queue.dead_letters(10).await?.is_empty());
    Ok(())
}

/// "Retry all" and "delete all" take the whole dead-letter list in batches of a hundred,
/// oldest first; entries something else pushed onto the list stay on a retry (there is no task
/// to queue) and go on a delete.
#[tokio::test]
async fn every_dead_letter_is_retried_or_deleted_in_one_sweep() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let queue = queue(&redis);
    let foreign = |n: usize| format!("pushed by hand {n}");
    let push_foreign = |n: usize| {
        let mut push = redis::cmd("LPUSH");
        push.arg(queue.keys().dead()).arg(foreign(n));
        push
    };
    let _: i64 = redis_cmd(&redis.pool, &mut push_foreign(0)).await;
    for i in 0..250 {
        if i == 120 {
            let _: i64 = redis_cmd(&redis.pool, &mut push_foreign(1)).await;
        }
        let payload = serde_json::json!({"name": format!("t{i}")});
        let task = Task::new(
            "test",
            payload.as_object().cloned().unwrap_or_default(),
            format!("sched_{i}"),
            Trigger::Schedule,
        );
        queue
            .dead_letter("w1", task.to_json().as_bytes(), "site unreachable")
            .await?;
    }
    let list = |key: String| {
        let mut range = redis::cmd("LRANGE");
        range.arg(key).arg(0).arg(-1);
        range
    };

    let swept = queue.retry_all_dead_letters().await?;
    assert_eq!(
        swept,
        Swept {
            taken: 250,
            skipped: 2
        }
    );
    let left: Vec<String> = redis_cmd(&redis.pool, &mut list(queue.keys().dead())).await;
    assert_eq!(left, vec![foreign(1), foreign(0)]);
    let mut queued: Vec<String> = redis_cmd(&redis.pool, &mut list(queue.keys().pending())).await;
    queued.reverse();
    let names: Vec<String> = queued
        .iter()
        .map(|raw| Task::parse(raw).map(|task| task.payload["name"].to_string()))
        .collect::<Result<_, _>>()?;
    let expected: Vec<String> = (0..250).map(|i| format!("\"t{i}\"")).collect();
    assert_eq!(names, expected, "queued again oldest first, each once");
    let first = Task::parse(&queued[0])?;
    assert_eq!(
        (first.run_id, first.trigger),
        (None, Some(Trigger::Manual)),
        "a fresh manual run"
    );

    let swept = queue.delete_all_dead_letters().await?;
    assert_eq!(
        swept,
        Swept {
            taken: 2,
            skipped: 0
        }
    );
    assert!(queue.dead_letters(10).await?.is_empty());
    assert_eq!(
        queue.retry_all_dead_letters().await?,
        Swept::default(),
        "an empty list"
    );
    Ok(())
}

/// A task handed back to keep its turn (a recovered task that must run alone) comes back at
/// the front, ahead of the backlog; a retry comes back behind it.
#[tokio::test]
async fn a_task_handed_back_at_the_front_keeps_its_turn() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let queue = queue(&redis);
    let ahead = test_task("run_ahead".into(), Trigger::Manual);
    let retried = test_task("run_retried".into(), Trigger::Manual);
    queue.enqueue_many(&[ahead, retried]).await?;
    let mut consumer = queue.consumer(&redis.url, "w1", Duration::from_millis(100));
    let ahead = consumer.next().await?.expect("a task");
    let retried = consumer.next().await?.expect("a task");
    let backlog: Vec<Task> = (0..3)
        .map(|i| test_task(format!("run_backlog_{i}"), Trigger::Manual))
        .collect();
    queue.enqueue_many(&backlog).await?;

    assert!(
        queue
            .retry_later_at_front("w1", &ahead, Duration::ZERO)
            .await?
    );
    assert!(queue.retry_later("w1", &retried, Duration::ZERO).await?);
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(queue.promote_due().await?, 2);
    let mut order = Vec::new();
    while let Some(raw) = consumer.next().await? {
        order.push(Task::parse_bytes(&raw)?.run_id.unwrap_or_default());
    }
    assert_eq!(
        order,
        [
            "run_ahead",
            "run_backlog_0",
            "run_backlog_1",
            "run_backlog_2",
            "run_retried"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn retries_wait_in_the_delayed_set_until_redis_time_says_due() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let queue = queue(&redis);
    let soon = test_task("run_soon".into(), Trigger::Manual);
    let later = test_task("run_later".into(), Trigger::Manual);
    queue.enqueue_many(&[soon.clone(), later.clone()]).await?;
    let mut consumer = queue.consumer(&redis.url, "w1", Duration::from_millis(100));
    let first = consumer.next().await?.expect("a task");
    let second = consumer.next().await?.expect("a task");

    assert!(queue.retry_later("w1", &first, Duration::ZERO).await?);
    assert!(
        queue
            .retry_later("w1", &second, Duration::from_secs(600))
            .await?
    );
    assert!(
        !queue.retry_later("w1", &first, Duration::ZERO).await?,
        "a task no longer in flight is not parked twice"
    );
    assert!(queue.inflight("w1").await?.is_empty());
    let metrics = queue.metrics().await?;
    assert_eq!((metrics.pending, metrics.delayed), (0, 2));
    let snapshot = queue.snapshot().await?;
    assert_eq!(snapshot.len(), 2, "the reconciler sees delayed tasks");

    assert_eq!(queue.promote_due().await?, 1, "only the due one moves");
    assert_eq!(queue.promote_due().await?, 0, "and only once");
    let metrics = queue.metrics().await?;
    assert_eq!((metrics.pending, metrics.delayed), (1, 1));
    assert_eq!(consumer.next().await?, Some(first));
    let due_at: f64 = redis_cmd(
        &redis.pool,
        redis::cmd("ZSCORE")
            .arg(queue.keys().delayed())
            .arg(&second),
    )
    .await;
    let now: Vec<String> = redis_cmd(&redis.pool, &mut redis::cmd("TIME")).await;
    let now_ms = now[0].parse::<f64>()? * 1000.0;
    assert!(
        (due_at - now_ms - 600_000.0).abs() < 5_000.0,
        "scored by Redis's clock: {due_at} vs {now_ms}"
    );
    Ok(())
}

#[tokio::test]
async fn tasks_are_taken_and_acked_in_batches_without_leaving_the_lists() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let queue = queue(&redis);
    let tasks: Vec<Task> = (0..5)
        .map(|i| test_task(format!("run_{i}"), Trigger::Manual))
        .collect();
    queue.enqueue_many(&tasks).await?;
    let mut consumer = queue.consumer(&redis.url, "w1", Duration::from_millis(100));

    let first = taken(consumer.next_batch(3).await?);
    let parsed: Vec<Task> = first
        .iter()
        .map(|raw| Task::parse_bytes(raw).unwrap())
        .collect();
    assert_eq!(parsed, tasks[..3], "oldest first");
    assert_eq!(queue.inflight("w1").await?.len(), 3, "taken into in-flight");
    let rest = taken(consumer.next_batch(10).await?);
    assert_eq!(rest.len(), 2, "as many as there are");
    assert!(
        taken(consumer.next_batch(10).await?).is_empty(),
        "empty after the block"
    );

    let done: Vec<_> = first
        .iter()
        .chain(&rest)
        .enumerate()
        .map(|(i, raw)| {
            (
                raw.clone(),
                format!("task_{i}"),
                serde_json::json!({"n": i}),
            )
        })
        .collect();
    assert_eq!(queue.ack_many("w1", &done).await?, vec![true; 5]);
    assert!(queue.inflight("w1").await?.is_empty());
    let result = queue
        .get_json(&queue.keys().result("task_4"))
        .await?
        .expect("result summary kept");
    assert_eq!(result["n"], 4);
    assert_eq!(
        queue.ack_many("w1", &done).await?,
        vec![false; 5],
        "acking again finds nothing in flight"
    );
    Ok(())
}

fn taken(taken: Taken) -> Vec<Vec<u8>> {
    match taken {
        Taken::Tasks(tasks) => tasks,
        Taken::Paused => panic!("the queue is not paused"),
    }
}

/// Issue 7, finding 8: after a pause is written, no task is taken, not even by a consumer
/// that was already blocked waiting for one when the task arrived.
#[tokio::test]
async fn a_paused_queue_gives_nothing_even_to_a_blocked_consumer() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let queue = queue(&redis);
    let mut consumer = queue.consumer(&redis.url, "w1", Duration::from_millis(1500));
    let waiting = tokio::spawn(async move {
        let taken = consumer.next_batch(4).await;
        (consumer, taken)
    });
    tokio::time::sleep(Duration::from_millis(300)).await; // the consumer is blocked in BLMOVE
    queue.set_paused(true).await?;
    let task = test_task("run_1".into(), Trigger::Manual);
    queue.enqueue(&task).await?;
    let (mut consumer, taken) = waiting.await?;
    assert_eq!(taken?, Taken::Paused, "the task arrived after the pause");
    assert!(queue.inflight("w1").await?.is_empty());
    assert_eq!(queue.metrics().await?.pending, 1, "still first in line");
    assert_eq!(consumer.next_batch(4).await?, Taken::Paused);
    queue.set_paused(false).await?;
    let again = taken_now(consumer.next_batch(4).await?);
    assert_eq!(Task::parse_bytes(&again[0])?, task);
    Ok(())
}

fn taken_now(taken: Taken) -> Vec<Vec<u8>> {
    let tasks = self::taken(taken);
    assert!(!tasks.is_empty(), "a task was taken");
    tasks
}

/// Issue 7, finding 3: a message that is not UTF-8 comes out of a batch as bytes, alongside
/// the valid tasks of the same batch, and can be dead-lettered as it is.
#[tokio::test]
async fn a_batch_with_bytes_that_are_not_utf8_is_taken_whole() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let queue = queue(&redis);
    let task = test_task("run_1".into(), Trigger::Manual);
    queue.enqueue(&task).await?;
    let garbage: &[u8] = b"\xff\xfe{not utf-8}";
    let _: i64 = test_support::redis_cmd(
        &redis.pool,
        redis::cmd("LPUSH").arg(queue.keys().pending()).arg(garbage),
    )
    .await;
    let mut consumer = queue.consumer(&redis.url, "w1", Duration::from_millis(100));
    let batch = taken_now(consumer.next_batch(10).await?);
    assert_eq!(batch.len(), 2);
    assert_eq!(Task::parse_bytes(&batch[0])?, task);
    let err = Task::parse_bytes(&batch[1]).unwrap_err().to_string();
    assert!(err.starts_with("task is not valid UTF-8"), "{err}");
    queue.dead_letter("w1", &batch[1], &err).await?;
    assert_eq!(queue.inflight("w1").await?, vec![batch[0].clone()]);
    let dead = queue.dead_letters(10).await?;
    assert_eq!(dead[0].reason, err);
    assert!(dead[0].task.contains("{not utf-8}"), "{:?}", dead[0]);
    Ok(())
}

/// Issue 7, finding 2: a task given back for a failure that is not an outage counts against
/// it, and ends in the dead-letter list at MAX_DELIVERIES instead of going round forever.
#[tokio::test]
async fn a_task_given_back_too_often_is_dead_lettered() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let queue = queue(&redis);
    let task = test_task("run_1".into(), Trigger::Manual);
    queue.enqueue(&task).await?;
    let mut consumer = queue.consumer(&redis.url, "w1", Duration::from_millis(100));
    let id = task.task_id.clone().unwrap();
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        let raw = taken_now(consumer.next_batch(1).await?).remove(0);
        let given = queue
            .give_back(
                "w1",
                &raw,
                id.as_bytes(),
                Duration::ZERO,
                3,
                "it keeps failing",
            )
            .await?;
        outcomes.push(given);
        queue.promote_due().await?;
    }
    assert_eq!(
        outcomes,
        [
            GivenBack::Delayed,
            GivenBack::Delayed,
            GivenBack::DeadLettered
        ]
    );
    let metrics = queue.metrics().await?;
    assert_eq!(
        (
            metrics.pending,
            metrics.delayed,
            metrics.in_flight,
            metrics.dead
        ),
        (0, 0, 0, 1)
    );
    assert_eq!(queue.dead_letters(1).await?[0].reason, "it keeps failing");
    Ok(())
}

/// The depth's history: one sample a minute (a second in the same minute replaces the first),
/// an hour kept, read back oldest first.
#[tokio::test]
async fn depth_is_sampled_once_a_minute_for_an_hour() -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let queue = queue(&redis);
    for n in 0..3 {
        queue
            .enqueue(&test_task(format!("run_{n}"), Trigger::Manual))
            .await?;
    }
    assert_eq!(queue.record_depth().await?, 3);
    queue
        .enqueue(&test_task("run_3".into(), Trigger::Manual))
        .await?;
    assert_eq!(queue.record_depth().await?, 4);
    let history = queue.depth_history().await?;
    // Two passes in one minute leave one sample (unless the minute turned between them).
    assert!(matches!(history.len(), 1 | 2), "{history:?}");
    assert_eq!(history.last().map(|s| s.1), Some(4));
    // A sample older than an hour is dropped at the next one.
    let key = queue.keys().depth_history();
    let old = chrono::Utc::now().timestamp_millis() - 2 * 3600 * 1000;
    let _: () = redis_cmd(
        &redis.pool,
        redis::cmd("ZADD")
            .arg(&key)
            .arg(old)
            .arg(format!("{old}:9")),
    )
    .await;
    queue.record_depth().await?;
    assert!(queue.depth_history().await?.iter().all(|s| s.1 != 9));
    Ok(())
}
