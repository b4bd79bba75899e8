//! Benchmarks that print figures: `cargo run --release -p trawl-bench -- browser`.
mod api;
mod browser;
mod lifecycle;
mod queue;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "trawl-bench",
    about = "trawl's benchmarks; each prints its figures and ratios"
)]
enum Bench {
    /// The API under load: queue status, metrics and postings searches at 50 clients, beside
    /// GET /health (needs the release trawl-api next to this binary).
    Api(api::Options),
    /// Browser pool (reused sessions) vs a fresh session per page, and the plain HTTP path,
    /// against the demo board on loopback.
    Browser(browser::Options),
    /// The reliable queue path (enqueue, BLMOVE into in-flight, ack) against a real Redis.
    Queue(queue::Options),
    /// One consumer process of `queue`'s multi-process drain.
    #[command(hide = true)]
    QueueDrainer(queue::DrainerOptions),
    /// A task's whole lifecycle (ledger row submitted, started, finished) through two worker
    /// processes, beside a plain PostgreSQL UPDATE and the raw queue drain.
    Lifecycle(lifecycle::Options),
    /// One worker process of `lifecycle`.
    #[command(hide = true)]
    LifecycleWorker(lifecycle::WorkerOptions),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Bench::parse() {
        Bench::Api(options) => api::run(options).await,
        Bench::Browser(options) => browser::run(options).await,
        Bench::Queue(options) => queue::run(options).await,
        Bench::QueueDrainer(options) => queue::drainer(options).await,
        Bench::Lifecycle(options) => lifecycle::run(options).await,
        Bench::LifecycleWorker(options) => lifecycle::worker(options).await,
    }
}

/// The PostgreSQL and Redis servers a bench measures against.
#[derive(Debug, clap::Args)]
pub struct Servers {
    /// A PostgreSQL server: the bench creates (and drops) a database of its own.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
}

/// This process's peak resident memory (VmHWM), in MB.
fn peak_rss_mb() -> anyhow::Result<f64> {
    proc_status_mb("/proc/self/status", "VmHWM:")
}

/// A memory figure (`field`, in kB) from a `/proc/<pid>/status` file, in MB.
fn proc_status_mb(path: &str, field: &str) -> anyhow::Result<f64> {
    use anyhow::Context;
    let status = std::fs::read_to_string(path)?;
    let kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .with_context(|| format!("no {field} in {path}"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kb / 1024.0)
}
