//! The measurements behind the queue benchmark's figures: rates under concurrency, latency
//! of an idle consumer, Redis memory per task.
use std::time::{Duration, Instant};

use anyhow::Context;
use queue_core::{Keys, Queue};

/// Time from LPUSH to the moment an idle consumer holds the task, on the worker's own path:
/// `next_batch` (an empty `take_batch.lua`, then BLMOVE, then `hold_if_paused.lua`).
pub(super) async fn latency(
    queue: &Queue,
    url: &str,
    samples: usize,
) -> anyhow::Result<(f64, f64)> {
    let mut consumer = queue.consumer(url, "bench-latency", Duration::from_secs(5));
    let mut millis = Vec::with_capacity(samples);
    for i in 0..samples {
        let task = super::bench_task(format!("lat_{i}"));
        let taking = tokio::spawn(async move {
            let raw = match consumer.next_batch(1).await {
                Ok(queue_core::Taken::Tasks(mut taken)) => Ok(taken.pop()),
                Ok(queue_core::Taken::Paused) => Ok(None),
                Err(err) => Err(err),
            };
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

pub(super) async fn memory_per_task(
    pool: &queue_core::RedisPool,
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

pub(super) async fn rate<F, Fut>(count: usize, concurrency: usize, op: F) -> anyhow::Result<f64>
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
