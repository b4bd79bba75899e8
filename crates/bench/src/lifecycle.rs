//! The whole lifecycle of a task, beside its parts measured in the same run: a no-op kind's
//! ledger rows submitted (INSERT + LPUSH), then started and finished in PostgreSQL by two
//! `trawl-bench lifecycle-worker` processes (the real `trawl_worker::Worker` loop), against a
//! plain single-row UPDATE, the raw batched queue drain and the ledger's statements alone.
use std::time::{Duration, Instant};

use anyhow::Context;
use queue_core::store::RunReport;
use queue_core::{CommonConfig, Keys, Plan, Queue, Services, Task, Trigger};
use trawl_tasks::{Handler, HandlerError, RunContext};

#[derive(Debug, clap::Args)]
pub struct Options {
    #[command(flatten)]
    servers: crate::common::Servers,
    /// Runs through the whole lifecycle.
    #[arg(long, default_value_t = 20_000)]
    tasks: usize,
    /// Tasks each worker process runs at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// The graphile-worker package to measure beside trawl (default: `TRAWL_GRAPHILE_WORKER`,
    /// else where `deploy/dev.sh test` installs it).
    #[arg(long)]
    graphile_worker: Option<std::path::PathBuf>,
    /// Leaves the graphile-worker peer out.
    #[arg(long)]
    without_peer: bool,
}

/// One worker process of `lifecycle` (spawned by it, not for people).
#[derive(Debug, clap::Args)]
pub struct WorkerOptions {
    #[arg(long)]
    database_url: String,
    #[arg(long)]
    redis_url: String,
    #[arg(long)]
    prefix: String,
    #[arg(long)]
    concurrency: usize,
}

/// Does nothing, successfully: what is left is the lifecycle's own cost.
struct Noop;

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoopTask {}

impl Handler for Noop {
    type Payload = NoopTask;
    const KIND: &'static str = "noop";
    const QUEUE: &'static str = "bench";

    async fn run(&self, _: RunContext, _: NoopTask) -> Result<RunReport, HandlerError> {
        Ok(crate::ledger::noop_report())
    }
}

fn config(database_url: &str, redis_url: &str, prefix: &str, connections: u32) -> CommonConfig {
    CommonConfig {
        database_url: database_url.to_owned(),
        redis_url: redis_url.to_owned(),
        redis_prefix: prefix.to_owned(),
        queue_name: "scraping".to_owned(),
        result_ttl: 60,
        job_timeout: 60,
        max_deliveries: 3,
        reconcile_grace: 120,
        database_max_connections: connections,
        database_idle_in_transaction_timeout: 30,
    }
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let peer = match options.without_peer {
        true => None,
        false => Some(crate::peer::locate(options.graphile_worker.clone())?),
    };
    let cpu = crate::cpu::CpuTrace::start()?;
    let url = bench_database(&options.servers.database_url).await?;
    let prefix = format!("bench-{}:", uuid::Uuid::new_v4().simple());
    let services = config(&url, &options.servers.redis_url, &prefix, 32).services()?;
    queue_core::store::MIGRATOR.run(&services.db).await?;
    let n = options.tasks;

    let (update_1, update_16) = (
        update_rate(&services, 1).await?,
        update_rate(&services, 16).await?,
    );
    println!("PostgreSQL single-row UPDATE, 1 connection : {update_1:>8.0} /s   (baseline)");
    println!("PostgreSQL single-row UPDATE, 16 connections: {update_16:>7.0} /s");

    let raw = Queue::new(
        services.redis.clone(),
        Keys::new(&prefix, "raw"),
        Duration::from_secs(60),
    );
    let tasks: Vec<Task> = (0..n)
        .map(|i| crate::queue::bench_task(format!("raw_{i}")))
        .collect();
    crate::queue::refill(&services.redis, raw.keys(), &raw, &tasks, 1000).await?;
    let started = Instant::now();
    crate::queue::drain_batched(&raw, &options.servers.redis_url, "bench-raw", n, 100).await?;
    let drained = n as f64 / started.elapsed().as_secs_f64();
    crate::queue::clear(&services.redis, raw.keys()).await?;
    println!(
        "raw queue drain, 1 consumer, batched         : {drained:>8.0} /s   ({:.2} of UPDATE/1)",
        drained / update_1
    );

    let started = Instant::now();
    submit(&services, n).await?;
    let submitted = n as f64 / started.elapsed().as_secs_f64();
    println!(
        "lifecycle submit (INSERT run + LPUSH), 32 at once: {submitted:>4.0} /s   ({:.2} of UPDATE/1)",
        submitted / update_1
    );

    let commits_before = commits(&services).await?;
    let mut workers = Vec::new();
    for _ in 0..2 {
        workers.push(
            tokio::process::Command::new(std::env::current_exe()?)
                .args(["lifecycle-worker", "--database-url", &url, "--redis-url"])
                .arg(&options.servers.redis_url)
                .args(["--prefix", &prefix, "--concurrency"])
                .arg(options.concurrency.to_string())
                .kill_on_drop(true)
                .spawn()?,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    // Polled through the partial index of unfinished runs, so the watching costs the database
    // next to nothing (a count over the whole table ten times a second would not).
    loop {
        let active = sqlx::query_scalar!(
            r#"SELECT count(*) AS "active!" FROM task_runs WHERE finished_at IS NULL"#,
        )
        .fetch_one(&services.db)
        .await?;
        if active == 0 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{active} of {n} runs still active after 600 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let succeeded = sqlx::query_scalar!(
        r#"SELECT count(*) AS "done!" FROM task_runs WHERE kind = 'noop' AND status = 'succeeded'"#,
    )
    .fetch_one(&services.db)
    .await?;
    anyhow::ensure!(succeeded as usize == n, "{succeeded} of {n} runs succeeded");
    // From the first start to the last finish, as the ledger recorded them.
    let span = sqlx::query_as!(
        crate::cpu::Span,
        r#"SELECT (EXTRACT(EPOCH FROM min(started_at)) * 1000)::float8 AS "first_ms!",
                  (EXTRACT(EPOCH FROM max(finished_at)) * 1000)::float8 AS "last_ms!"
           FROM task_runs"#,
    )
    .fetch_one(&services.db)
    .await?;
    let through = span.per_second(n);
    let per_task = (commits(&services).await? - commits_before) as f64 / n as f64;
    println!(
        "lifecycle start + finish, 2 worker processes : {through:>8.0} /s   ({:.2} of UPDATE/1; no-op kind, {} slots each; {per_task:.2} commits per task)",
        through / update_1,
        options.concurrency
    );
    if let Some(spent) = cpu.after(span, n).await {
        println!("  CPU per run, µs: {spent}");
    }
    for worker in &workers {
        if let Some(pid) = worker.id() {
            let _ = std::process::Command::new("kill")
                .arg(pid.to_string())
                .status();
        }
    }
    for mut worker in workers {
        let _ = tokio::time::timeout(Duration::from_secs(20), worker.wait()).await;
    }
    // Read once the workers' connections have closed: a backend reports its counts at most
    // once a second while it lives, and all of them when it exits.
    let (updates, hot) = hot_updates(&services).await?;
    println!(
        "  task_runs updates HOT (new version on the same page, no index entry): {hot} of {updates} ({:.0}%; a start can be, an end cannot)",
        100.0 * hot as f64 / updates.max(1) as f64
    );
    let alone = crate::ledger::start_and_finish(&services, Noop::KIND, Noop::QUEUE, n).await?;
    println!(
        "ledger statements alone, one at a time, {} runs each: {:>6.0} /s   (start + finish as a worker's batcher sends them; no Redis, no workers)",
        crate::ledger::BATCH,
        alone.per_second(n)
    );
    if let Some(spent) = cpu.after(alone, n).await {
        println!("  CPU per run, µs: {spent}");
    }
    services.db.close().await;
    drop_database(&options.servers.database_url).await?;

    if let Some(package) = peer {
        let peer =
            crate::peer::graphile_worker(&package, &options.servers.database_url, n, 2).await?;
        let spent = cpu.after(peer.span, n).await;
        let per_second = peer.span.per_second(n);
        println!(
            "graphile-worker {} performance preset, 2 processes: {:>6.0} /s   ({:.2} of UPDATE/1; jobs per process {:?}; trawl's lifecycle is {:.2} of it)",
            crate::peer::VERSION,
            per_second,
            per_second / update_1,
            peer.per_process,
            through / per_second
        );
        if let Some(spent) = spent {
            println!("  CPU per job, µs: {spent}");
        }
    }
    Ok(())
}

/// Transactions committed in the bench database so far (reads included: every statement
/// outside a transaction commits).
async fn commits(services: &Services) -> anyhow::Result<i64> {
    // The statistics collector reports with a short delay.
    tokio::time::sleep(Duration::from_millis(600)).await;
    Ok(sqlx::query_scalar!(
        r#"SELECT xact_commit AS "commits!" FROM pg_stat_database
           WHERE datname = current_database()"#,
    )
    .fetch_one(&services.db)
    .await?)
}

/// `task_runs`' updates so far, and how many of them were HOT.
async fn hot_updates(services: &Services) -> anyhow::Result<(i64, i64)> {
    // The statistics collector reports with a short delay.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let row = sqlx::query!(
        r#"SELECT n_tup_upd AS "updates!", n_tup_hot_upd AS "hot!" FROM pg_stat_user_tables
           WHERE relname = 'task_runs'"#,
    )
    .fetch_one(&services.db)
    .await?;
    Ok((row.updates, row.hot))
}

/// `trawl_bench_lifecycle` on the server of `url`, created afresh.
async fn bench_database(url: &str) -> anyhow::Result<String> {
    fresh_database(url, "trawl_bench_lifecycle").await
}

/// Database `name` on the server of `url`, created afresh; returns its URL.
pub async fn fresh_database(url: &str, name: &str) -> anyhow::Result<String> {
    use sqlx::migrate::MigrateDatabase;
    let bench = database_url(url, name)?;
    sqlx::Postgres::force_drop_database(&bench).await.ok();
    sqlx::Postgres::create_database(&bench).await?;
    Ok(bench)
}

async fn drop_database(url: &str) -> anyhow::Result<()> {
    drop_named(url, "trawl_bench_lifecycle").await
}

/// Drops database `name` on the server of `url`.
pub async fn drop_named(url: &str, name: &str) -> anyhow::Result<()> {
    use sqlx::migrate::MigrateDatabase;
    Ok(sqlx::Postgres::force_drop_database(&database_url(url, name)?).await?)
}

fn database_url(url: &str, name: &str) -> anyhow::Result<String> {
    let mut bench = url::Url::parse(url).context("DATABASE_URL is not a URL")?;
    bench.set_path(&format!("/{name}"));
    Ok(bench.to_string())
}

/// Durable single-row UPDATEs per second over `connections` connections (each its own row of
/// a table with nothing else going on: 16 idle `schedules` rows), for two seconds.
async fn update_rate(services: &Services, connections: i32) -> anyhow::Result<f64> {
    let db = &services.db;
    for id in 1..=connections {
        let row = serde_json::json!({"name": format!("bench-{id}"), "kind": "noop",
            "queue": "bench", "interval_minutes": 1_000_000, "enabled": false});
        queue_core::store::upsert_recurring(db, &serde_json::from_value(row)?).await?;
    }
    let until = Instant::now() + Duration::from_secs(2);
    let started = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    for id in 1..=connections {
        let db = db.clone();
        running.spawn(async move {
            let mut done = 0u64;
            while Instant::now() < until {
                let name = format!("bench-{id}");
                sqlx::query!(
                    "UPDATE schedules SET updated_at = now() WHERE name = $1",
                    name
                )
                .execute(&db)
                .await?;
                done += 1;
            }
            anyhow::Ok(done)
        });
    }
    let mut total = 0;
    while let Some(done) = running.join_next().await {
        total += done??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// Records and enqueues `n` no-op runs, 32 submitters at once.
async fn submit(services: &Services, n: usize) -> anyhow::Result<()> {
    let plan = Plan {
        queue: Noop::QUEUE.to_owned(),
        lock_key: None,
        max_retries: 0,
    };
    let mut running = tokio::task::JoinSet::new();
    for submitter in 0..32 {
        let (services, plan) = (services.clone(), plan.clone());
        running.spawn(async move {
            for i in (submitter..n).step_by(32) {
                let task = Task::new(
                    Noop::KIND,
                    Default::default(),
                    format!("noop_{i}"),
                    Trigger::Manual,
                );
                queue_core::submit_run(&services, &task, &plan).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = running.join_next().await {
        done??;
    }
    Ok(())
}

pub async fn worker(options: WorkerOptions) -> anyhow::Result<()> {
    let config = config(
        &options.database_url,
        &options.redis_url,
        &options.prefix,
        16,
    );
    let services = config.services()?;
    let mut settings = trawl_worker::WorkerSettings::new(trawl_worker::new_worker_id());
    settings.concurrency = options.concurrency;
    settings.block_for = Duration::from_millis(200);
    let registry = trawl_tasks::Registry::new().register(Noop);
    let worker =
        trawl_worker::Worker::with_registry(services, settings, registry, Default::default())
            .map_err(anyhow::Error::msg)?;
    let stop = tokio_util::sync::CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
        }
        on_signal.cancel();
    });
    worker.run(stop).await;
    Ok(())
}
