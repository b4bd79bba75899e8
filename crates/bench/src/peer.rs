//! graphile-worker, the PostgreSQL-backed queue issue 8 names as the peer to beat, measured on
//! the same server in the same run as trawl's lifecycle: its own package from npm (installed
//! by `deploy/dev.sh test` under the tools cache), its performance preset
//! (`peers/graphile-worker/graphile.config.js`), a no-op task, jobs queued before the clock
//! starts, and as many `graphile-worker --once` processes as trawl has workers.
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;

const CONFIG: &str = include_str!("../peers/graphile-worker/graphile.config.js");
const ADD_JOBS: &str = include_str!("../peers/graphile-worker/add_jobs.mjs");
const NOOP_TASK: &str = include_str!("../peers/graphile-worker/tasks/noop.js");

/// The version `deploy/tools.sh` installs and the README's figures were measured with.
pub const VERSION: &str = "0.18.0";

/// The installed graphile-worker package: `explicit`, else `TRAWL_GRAPHILE_WORKER`, else where
/// `deploy/dev.sh test` puts it; an error that says how to get it when it is not there.
pub fn locate(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let package = explicit
        .or_else(|| std::env::var_os("TRAWL_GRAPHILE_WORKER").map(PathBuf::from))
        .or_else(|| {
            std::env::var_os("HOME").map(|home| {
                Path::new(&home)
                    .join(".cache/trawl-tools/graphile-worker/node_modules/graphile-worker")
            })
        })
        .context("HOME is not set: pass --graphile-worker DIR")?;
    anyhow::ensure!(
        package.join("dist/cli.js").is_file(),
        "graphile-worker is not installed at {} (`deploy/dev.sh test` installs it there; or pass \
         --graphile-worker DIR, or --without-peer to leave the peer out)",
        package.display()
    );
    Ok(package)
}

/// What one run of the peer measured.
pub struct PeerRun {
    /// How many jobs each process ran.
    pub per_process: Vec<u64>,
    /// From the first job's start to the last job's, over all processes.
    pub span: crate::cpu::Span,
}

/// Queues `jobs` no-op jobs in a fresh database on the server of `server_url`, drains them with
/// `processes` graphile-worker processes and drops the database.
pub async fn graphile_worker(
    package: &Path,
    server_url: &str,
    jobs: usize,
    processes: usize,
) -> anyhow::Result<PeerRun> {
    // A name of its own, so that two runs on one server (a bench and the test) never meet.
    let name = format!("trawl_bench_graphile_{}", uuid::Uuid::new_v4().simple());
    let url = crate::lifecycle::fresh_database(server_url, &name).await?;
    let measured = measure(package, &url, jobs, processes).await;
    crate::lifecycle::drop_named(server_url, &name).await?;
    measured
}

async fn measure(
    package: &Path,
    url: &str,
    jobs: usize,
    processes: usize,
) -> anyhow::Result<PeerRun> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("tasks"))?;
    std::fs::write(dir.path().join("graphile.config.js"), CONFIG)?;
    std::fs::write(dir.path().join("add_jobs.mjs"), ADD_JOBS)?;
    std::fs::write(dir.path().join("tasks/noop.js"), NOOP_TASK)?;
    let node = |args: &[&std::ffi::OsStr]| {
        let mut command = tokio::process::Command::new("node");
        command
            .args(args)
            .current_dir(dir.path())
            .env("TRAWL_GRAPHILE_WORKER", package)
            .env("TRAWL_PEER_DATABASE_URL", url)
            .env("TRAWL_PEER_JOBS", jobs.to_string())
            // One log line per job would measure the terminal, not the queue.
            .env("NO_LOG_SUCCESS", "1")
            .kill_on_drop(true);
        command
    };
    let queued = node(&["add_jobs.mjs".as_ref()])
        .status()
        .await
        .context("running node (Debian's nodejs) for the graphile-worker peer")?;
    anyhow::ensure!(
        queued.success(),
        "queueing graphile-worker's jobs failed: {queued}"
    );

    let cli = package.join("dist/cli.js");
    let mut running = Vec::new();
    for _ in 0..processes {
        let child = node(&[cli.as_os_str(), "--once".as_ref()])
            .stdout(Stdio::piped())
            .spawn()?;
        running.push(child.wait_with_output());
    }
    let mut spans = Vec::new();
    for output in running {
        let output = tokio::time::timeout(Duration::from_secs(600), output)
            .await
            .context("graphile-worker did not drain its jobs in 600 s")??;
        anyhow::ensure!(
            output.status.success(),
            "graphile-worker --once failed: {}",
            output.status
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        spans.push(parse_span(&stdout).with_context(|| {
            format!("no TRAWL_PEER line in graphile-worker's output:\n{stdout}")
        })?);
    }
    let ran: u64 = spans.iter().map(|span| span.count).sum();
    anyhow::ensure!(
        ran == jobs as u64,
        "graphile-worker ran {ran} of {jobs} jobs"
    );
    let working: Vec<&ProcessSpan> = spans.iter().filter(|span| span.count > 0).collect();
    let first = working
        .iter()
        .map(|span| span.first_ms)
        .fold(f64::MAX, f64::min);
    let last = working
        .iter()
        .map(|span| span.last_ms)
        .fold(f64::MIN, f64::max);
    Ok(PeerRun {
        per_process: spans.iter().map(|span| span.count).collect(),
        span: crate::cpu::Span {
            first_ms: first,
            last_ms: last,
        },
    })
}

/// What `tasks/noop.js` prints at its process's exit.
#[derive(Debug, PartialEq)]
struct ProcessSpan {
    first_ms: f64,
    last_ms: f64,
    count: u64,
}

fn parse_span(stdout: &str) -> Option<ProcessSpan> {
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("TRAWL_PEER "))?;
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
    };
    Some(ProcessSpan {
        first_ms: field("first_ms")?.parse().ok()?,
        last_ms: field("last_ms")?.parse().ok()?,
        count: field("count")?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_task_line_is_read_among_the_logs() {
        let stdout = "[core] INFO: Failed to read crontab file\n\
                      TRAWL_PEER first_ms=1796610304187.84 last_ms=1796610305423.3115 count=10500\n";
        assert_eq!(
            parse_span(stdout),
            Some(ProcessSpan {
                first_ms: 1796610304187.84,
                last_ms: 1796610305423.3115,
                count: 10500
            })
        );
        assert_eq!(parse_span("TRAWL_PEER first_ms=1 count=2\n"), None);
        assert_eq!(parse_span("no line\n"), None);
    }

    /// The peer runs for real (the test command installs it): every job is run once, by the
    /// processes between them.
    #[tokio::test]
    async fn the_peer_runs_every_job_once() {
        let package = locate(None).unwrap();
        let server = std::env::var("DATABASE_URL").expect("DATABASE_URL");
        let run = graphile_worker(&package, &server, 600, 2).await.unwrap();
        assert_eq!(run.per_process.iter().sum::<u64>(), 600);
        let per_second = run.span.per_second(600);
        assert!(per_second.is_finite() && per_second > 0.0);
    }
}
