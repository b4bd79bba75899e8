//! The queue's reliable path against a real Redis: enqueue, dequeue into in-flight, ack.
use std::time::{Duration, Instant};

use anyhow::Context;
use queue_core::{Keys, Queue, Task, Trigger};

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Redis to measure against (a throwaway instance: the bench deletes its own keys only).
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// No-op tasks per measurement.
    #[arg(long, default_value_t = 100_000)]
    tasks: usize,
    /// Tasks per bulk LPUSH.
    #[arg(long, default_value_t = 1000)]
    bulk: usize,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let prefix = format!("bench-{}:", uuid::Uuid::new_v4().simple());
    let keys = Keys::new(&prefix, "scraping");
    let pool = queue_core::create_pool(&options.redis_url, 64)?;
    let queue = Queue::new(pool.clone(), keys.clone(), Duration::from_secs(60));
    let n = options.tasks;
    let tasks: Vec<Task> = (0..n)
        .map(|i| Task::new("bench", format!("run_{i}"), Trigger::Manual))
        .collect();

    let pinger = |_| {
        let pool = pool.clone();
        async move { ping(&pool).await }
    };
    let ping_1 = rate(n, 1, pinger).await?;
    let ping_50 = rate(n, 50, pinger).await?;
    println!("PING, 1 connection              : {ping_1:>10.0} /s   (baseline)");
    println!("PING, 50 connections            : {ping_50:>10.0} /s");

    let single = rate(n, 1, |i| {
        let (queue, task) = (queue.clone(), tasks[i].clone());
        async move { queue.enqueue(&task).await.map_err(anyhow::Error::from) }
    })
    .await?;
    let memory = memory_per_task(&pool, &keys, n).await?;
    clear(&pool, &keys).await?;
    let started = Instant::now();
    for chunk in tasks.chunks(options.bulk.max(1)) {
        queue.enqueue_many(chunk).await?;
    }
    let bulk = n as f64 / started.elapsed().as_secs_f64();
    println!(
        "enqueue, single LPUSH           : {single:>10.0} /s   ({:.2} of PING/1)",
        single / ping_1
    );
    println!(
        "enqueue, bulk ({:>5} per LPUSH) : {bulk:>10.0} /s   ({:.2} of PING/1)",
        options.bulk,
        bulk / ping_1
    );

    for consumers in [1, 2] {
        clear(&pool, &keys).await?;
        for chunk in tasks.chunks(options.bulk.max(1)) {
            queue.enqueue_many(chunk).await?;
        }
        let drained = drain(&queue, &options.redis_url, consumers, n / consumers).await?;
        println!(
            "drain, {consumers} consumer(s) (BLMOVE+ack) : {drained:>10.0} /s   ({:.2} of PING/1; 2 round trips per task)",
            drained / ping_1
        );
    }
    clear(&pool, &keys).await?;
    let (p50, p90) = latency(&queue, &options.redis_url, 1000).await?;
    println!(
        "enqueue-to-start latency        : p50 {p50:.3} ms, p90 {p90:.3} ms (idle consumer blocked in BLMOVE)"
    );
    println!("Redis memory per queued task    : {memory:>10.0} bytes");
    println!(
        "bench process peak RSS          : {:>10.1} MB",
        crate::peak_rss_mb()?
    );
    clear(&pool, &keys).await?;
    Ok(())
}

async fn ping(pool: &deadpool_redis::Pool) -> anyhow::Result<()> {
    let mut conn = pool.get().await?;
    let _: String = redis::cmd("PING").query_async(&mut conn).await?;
    Ok(())
}

/// Dequeues and acks `per_consumer` tasks on each of `consumers` connections at once.
async fn drain(
    queue: &Queue,
    url: &str,
    consumers: usize,
    per_consumer: usize,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    for c in 0..consumers {
        let (queue, url) = (queue.clone(), url.to_owned());
        running.spawn(async move {
            let worker = format!("bench-{c}");
            let mut consumer = queue.consumer(&url, &worker, Duration::from_secs(1));
            let summary = serde_json::json!({});
            for _ in 0..per_consumer {
                let raw = consumer.next().await?.context("queue ran dry")?;
                queue.ack(&worker, &raw, "bench", &summary).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = running.join_next().await {
        done??;
    }
    Ok((consumers * per_consumer) as f64 / started.elapsed().as_secs_f64())
}

/// Time from LPUSH to the moment a consumer blocked in BLMOVE holds the task.
async fn latency(queue: &Queue, url: &str, samples: usize) -> anyhow::Result<(f64, f64)> {
    let mut consumer = queue.consumer(url, "bench-latency", Duration::from_secs(5));
    let mut millis = Vec::with_capacity(samples);
    for i in 0..samples {
        let task = Task::new("bench", format!("lat_{i}"), Trigger::Manual);
        let taking = tokio::spawn(async move {
            let raw = consumer.next().await;
            (consumer, raw, Instant::now())
        });
        tokio::time::sleep(Duration::from_millis(2)).await; // the consumer is blocked by now
        let pushed = Instant::now();
        queue.enqueue(&task).await?;
        let (back, raw, taken) = taking.await?;
        raw?.context("no task")?;
        consumer = back;
        millis.push((taken - pushed).as_secs_f64() * 1000.0);
    }
    millis.sort_by(f64::total_cmp);
    Ok((millis[samples / 2], millis[samples * 9 / 10]))
}

async fn memory_per_task(
    pool: &deadpool_redis::Pool,
    keys: &Keys,
    n: usize,
) -> anyhow::Result<f64> {
    let mut conn = pool.get().await?;
    let bytes: Option<u64> = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(keys.pending())
        .arg("SAMPLES")
        .arg(0)
        .query_async(&mut conn)
        .await?;
    Ok(bytes.unwrap_or(0) as f64 / n as f64)
}

async fn clear(pool: &deadpool_redis::Pool, keys: &Keys) -> anyhow::Result<()> {
    let mut conn = pool.get().await?;
    let found: Vec<String> = redis::cmd("KEYS")
        .arg(keys.all_pattern())
        .query_async(&mut conn)
        .await?;
    if !found.is_empty() {
        let _: i64 = redis::cmd("DEL").arg(found).query_async(&mut conn).await?;
    }
    Ok(())
}

async fn rate<F, Fut>(count: usize, concurrency: usize, op: F) -> anyhow::Result<f64>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let started = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    for i in 0..count {
        if running.len() >= concurrency {
            running.join_next().await.expect("running")??;
        }
        running.spawn(op(i));
    }
    while let Some(done) = running.join_next().await {
        done??;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}
