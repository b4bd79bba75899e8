//! The queue's reliable path against a real Redis: enqueue, dequeue into in-flight, ack.
use std::time::{Duration, Instant};

use anyhow::Context;
use queue_core::{AckBatcher, Keys, Queue, Task, Trigger};

mod cluster;
mod measure;
mod processes;

pub use cluster::{ClusterOptions, run as run_cluster};
use processes::drain_in_processes;
pub use processes::{DrainerOptions, drainer};

use measure::{latency, memory_per_task, rate};

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Redis to measure against (a throwaway instance: the bench deletes its own keys only).
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    #[command(flatten)]
    sizes: Sizes,
}

/// How much each queue measurement moves, and in what lumps.
#[derive(Debug, clap::Args)]
pub struct Sizes {
    /// No-op tasks per measurement (per queue).
    #[arg(long, default_value_t = 100_000)]
    tasks: usize,
    /// Tasks per bulk LPUSH.
    #[arg(long, default_value_t = 1000)]
    bulk: usize,
    /// Most tasks one consumer takes (and acks) per round trip.
    #[arg(long, default_value_t = 100)]
    batch: usize,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let prefix = format!("bench-{}:", uuid::Uuid::new_v4().simple());
    let keys = Keys::new(&prefix, "scraping");
    let pool = queue_core::create_pool(&options.redis_url, 64)?;
    let queue = Queue::new(pool.clone(), keys.clone(), Duration::from_secs(60));
    let n = options.sizes.tasks;
    let tasks: Vec<Task> = (0..n).map(|i| bench_task(format!("run_{i}"))).collect();

    let pinger = |_| {
        let pool = pool.clone();
        async move { ping(&pool).await }
    };
    let ping_1 = rate(n, 1, pinger).await?;
    let ping_50 = rate(n, 50, pinger).await?;
    println!("PING, 1 connection              : {ping_1:>10.0} /s   (baseline)");
    println!("PING, 50 connections            : {ping_50:>10.0} /s");
    for connections in [1, 50] {
        refill(&pool, &keys, &queue, &tasks, options.sizes.bulk).await?;
        let lmove = rate(n, connections, |_| {
            let (pool, from, to) = (pool.clone(), keys.pending(), keys.inflight("bench-raw"));
            async move {
                let mut conn = pool.get().await?;
                let _: Option<String> = redis::cmd("LMOVE")
                    .arg(from)
                    .arg(to)
                    .arg("RIGHT")
                    .arg("LEFT")
                    .query_async(&mut conn)
                    .await?;
                anyhow::Ok(())
            }
        })
        .await?;
        println!(
            "LMOVE, {connections:>2} connection(s)          : {lmove:>10.0} /s   ({:.2} of PING/1)",
            lmove / ping_1
        );
    }
    clear(&pool, &keys).await?;

    let single = rate(n, 1, |i| {
        let (queue, task) = (queue.clone(), tasks[i].clone());
        async move { queue.enqueue(&task).await.map_err(anyhow::Error::from) }
    })
    .await?;
    let memory = memory_per_task(&pool, &keys, n).await?;
    clear(&pool, &keys).await?;
    let started = Instant::now();
    for chunk in tasks.chunks(options.sizes.bulk.max(1)) {
        queue.enqueue_many(chunk).await?;
    }
    let bulk = n as f64 / started.elapsed().as_secs_f64();
    println!(
        "enqueue, single LPUSH           : {single:>10.0} /s   ({:.2} of PING/1)",
        single / ping_1
    );
    println!(
        "enqueue, bulk ({:>5} per LPUSH) : {bulk:>10.0} /s   ({:.2} of PING/1)",
        options.sizes.bulk,
        bulk / ping_1
    );

    for consumers in [1, 2] {
        refill(&pool, &keys, &queue, &tasks, options.sizes.bulk).await?;
        let drained = drain(&queue, &options.redis_url, consumers, n / consumers).await?;
        println!(
            "drain, {consumers} consumer(s), one by one : {drained:>10.0} /s   ({:.2} of PING/1; 2 round trips per task: BLMOVE, ack)",
            drained / ping_1
        );
    }
    refill(&pool, &keys, &queue, &tasks, options.sizes.bulk).await?;
    let started = Instant::now();
    let trips = drain_batched(
        &queue,
        &options.redis_url,
        "bench-batched",
        n,
        options.sizes.batch,
    )
    .await?;
    let batched = n as f64 / started.elapsed().as_secs_f64();
    println!(
        "drain, 1 consumer, batches of {:<3}: {batched:>10.0} /s   ({:.2} of PING/1; {:.3} round trips per task)",
        options.sizes.batch,
        batched / ping_1,
        trips as f64 / n as f64
    );
    for processes in [1, 2] {
        refill(&pool, &keys, &queue, &tasks, options.sizes.bulk).await?;
        let shares = vec![("scraping".to_owned(), n / processes); processes];
        let (rate, trips) = drain_in_processes(
            &pool,
            &options.redis_url,
            options.sizes.batch,
            &prefix,
            &shares,
        )
        .await?;
        println!(
            "drain, {processes} worker process(es), batched : {rate:>10.0} /s   ({:.2} of PING/1; {:.3} round trips per task)",
            rate / ping_1,
            trips as f64 / n as f64
        );
    }
    clear(&pool, &keys).await?;
    let (p50, p90) = latency(&queue, &options.redis_url, 1000).await?;
    println!(
        "enqueue-to-start latency        : p50 {p50:.3} ms, p90 {p90:.3} ms (idle worker path: take_batch, BLMOVE, hold_if_paused)"
    );
    println!("Redis memory per queued task    : {memory:>10.0} bytes");
    match idle_worker_rss(&options.redis_url, &prefix).await? {
        Some(mb) => println!("trawl-worker idle RSS           : {mb:>10.1} MB"),
        None => println!(
            "trawl-worker idle RSS           : not measured (build it first: cargo build --release -p trawl-worker)"
        ),
    }
    println!(
        "bench process peak RSS          : {:>10.1} MB",
        crate::common::peak_rss_mb()?
    );
    clear(&pool, &keys).await?;
    Ok(())
}

async fn ping(pool: &queue_core::RedisPool) -> anyhow::Result<()> {
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

pub(crate) async fn refill(
    pool: &queue_core::RedisPool,
    keys: &Keys,
    queue: &Queue,
    tasks: &[Task],
    bulk: usize,
) -> anyhow::Result<()> {
    clear(pool, keys).await?;
    for chunk in tasks.chunks(bulk.max(1)) {
        queue.enqueue_many(chunk).await?;
    }
    Ok(())
}

/// The worker's batched path: take up to `batch` tasks into in-flight in one round trip, then
/// ack each on its own, as the worker's runs do, through the `AckBatcher` that coalesces acks
/// arriving together into one round trip. Returns the round trips made.
pub(crate) async fn drain_batched(
    queue: &Queue,
    url: &str,
    worker: &str,
    count: usize,
    batch: usize,
) -> anyhow::Result<u64> {
    let mut consumer = queue.consumer(url, worker, Duration::from_secs(1));
    let acks = AckBatcher::spawn(
        queue.clone(),
        worker.to_owned(),
        batch,
        &Default::default(),
        Default::default(),
    );
    let (mut done, mut takes) = (0, 0);
    while done < count {
        let queue_core::Taken::Tasks(taken) = consumer.next_batch(batch.min(count - done)).await?
        else {
            anyhow::bail!("the bench queue is paused");
        };
        takes += 1;
        anyhow::ensure!(!taken.is_empty(), "queue ran dry");
        done += taken.len();
        let mut acking = tokio::task::JoinSet::new();
        for raw in taken {
            let acks = acks.clone();
            acking.spawn(async move {
                let task_id = Task::parse_bytes(&raw)?.task_id.unwrap_or_default();
                let summary = serde_json::json!({"status": "succeeded"});
                anyhow::ensure!(acks.ack(&raw, &task_id, summary).await?, "not in flight");
                anyhow::Ok(())
            });
        }
        while let Some(acked) = acking.join_next().await {
            acked??;
        }
    }
    Ok(takes + acks.round_trips())
}

/// Resident memory of an idle trawl-worker (the release binary next to this one) after it has
/// started, registered and waited in its dequeue loop for 3 s. None if it is not built.
async fn idle_worker_rss(redis_url: &str, prefix: &str) -> anyhow::Result<Option<f64>> {
    let exe = std::env::current_exe()?;
    let worker = exe.with_file_name("trawl-worker");
    if !worker.is_file() {
        return Ok(None);
    }
    let mut child = tokio::process::Command::new(worker)
        .env("REDIS_URL", redis_url)
        .env("REDIS_PREFIX", prefix)
        // Never connected to while idle: the pool opens connections on first use.
        .env(
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/postgres",
        )
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pid = child.id().context("worker exited early")?;
    let rss = crate::common::proc_status_mb(&format!("/proc/{pid}/status"), "VmRSS:")?;
    child.kill().await?;
    Ok(Some(rss))
}

pub(crate) async fn clear(pool: &queue_core::RedisPool, keys: &Keys) -> anyhow::Result<()> {
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

/// A task the size of a scheduled scrape's, for every queue measurement.
pub(crate) fn bench_task(run_id: String) -> Task {
    let payload = serde_json::json!({"site_name": "bench"});
    let payload = payload.as_object().cloned().unwrap_or_default();
    Task::new("scrape", payload, run_id, Trigger::Manual)
}
