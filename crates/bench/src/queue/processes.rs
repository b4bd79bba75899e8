//! The multi-process drain: drainer processes (this binary's hidden `queue-drainer`), each on
//! its queue, started together and timed from one "go".
use std::time::{Duration, Instant};

use anyhow::Context;
use queue_core::{Keys, Queue};

use super::{drain_batched, ping};

/// One consumer process of the multi-process drain (spawned by `queue`, not for people).
#[derive(Debug, clap::Args)]
pub struct DrainerOptions {
    #[arg(long)]
    redis_url: String,
    #[arg(long)]
    prefix: String,
    #[arg(long)]
    worker_id: String,
    #[arg(long, default_value = "scraping")]
    queue: String,
    #[arg(long)]
    count: usize,
    #[arg(long)]
    batch: usize,
}

/// One drainer process per share (a queue and how many tasks to take from it); timed from the
/// moment all are connected and told to go until the last exits. Returns the aggregate rate and
/// the round trips of all.
pub(crate) async fn drain_in_processes(
    pool: &queue_core::RedisPool,
    redis_url: &str,
    batch: usize,
    prefix: &str,
    shares: &[(String, usize)],
) -> anyhow::Result<(f64, u64)> {
    let exe = std::env::current_exe()?;
    let (processes, count) = (shares.len(), shares.iter().map(|(_, n)| n).sum::<usize>());
    let mut children = Vec::new();
    for (p, (queue, share)) in shares.iter().enumerate() {
        let child = tokio::process::Command::new(&exe)
            .arg("queue-drainer")
            .args([
                "--redis-url",
                redis_url,
                "--prefix",
                prefix,
                "--queue",
                queue,
            ])
            .args(["--worker-id", &format!("bench-proc-{p}")])
            .args(["--count", &share.to_string()])
            .args(["--batch", &batch.to_string()])
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        children.push(child);
    }
    let mut conn = pool.get().await?;
    for _ in 0..processes {
        pop_within(
            &mut conn,
            &format!("{prefix}ready"),
            Duration::from_secs(30),
        )
        .await
        .context("a drainer did not start")?;
    }
    let started = Instant::now();
    let mut go = redis::cmd("RPUSH");
    go.arg(format!("{prefix}go"));
    for _ in 0..processes {
        go.arg("go");
    }
    let _: i64 = go.query_async(&mut conn).await?;
    let mut trips = 0;
    for child in children {
        let output = child.wait_with_output().await?;
        anyhow::ensure!(output.status.success(), "a drainer failed");
        trips += String::from_utf8(output.stdout)?.trim().parse::<u64>()?;
    }
    Ok((count as f64 / started.elapsed().as_secs_f64(), trips))
}

/// Pops one element of `key` within `limit`, polling each millisecond: a blocking pop would
/// stall a cluster connection every caller shares.
async fn pop_within(
    conn: &mut queue_core::RedisConnection,
    key: &str,
    limit: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let popped: Option<String> = redis::cmd("LPOP").arg(key).query_async(conn).await?;
        if popped.is_some() {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "nothing in {key} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Body of one drainer process: connect, say ready, wait for go, drain, print round trips.
pub async fn drainer(options: DrainerOptions) -> anyhow::Result<()> {
    let pool = queue_core::create_pool(&options.redis_url, 2)?;
    let queue = Queue::new(
        pool.clone(),
        Keys::new(&options.prefix, &options.queue),
        Duration::from_secs(60),
    );
    ping(&pool).await?;
    let mut conn = pool.get().await?;
    let _: i64 = redis::cmd("RPUSH")
        .arg(format!("{}ready", options.prefix))
        .arg(&options.worker_id)
        .query_async(&mut conn)
        .await?;
    pop_within(
        &mut conn,
        &format!("{}go", options.prefix),
        Duration::from_secs(30),
    )
    .await?;
    drop(conn);
    let trips = drain_batched(
        &queue,
        &options.redis_url,
        &options.worker_id,
        options.count,
        options.batch,
    )
    .await?;
    println!("{trips}");
    Ok(())
}
