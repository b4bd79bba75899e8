//! What the benches share: the servers they measure against and memory readings.
/// The PostgreSQL and Redis servers a bench measures against.
#[derive(Debug, clap::Args)]
pub struct Servers {
    /// A PostgreSQL server: the bench creates (and drops) a database of its own.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
}

/// This process's peak resident memory (VmHWM), in MB.
pub fn peak_rss_mb() -> anyhow::Result<f64> {
    proc_status_mb("/proc/self/status", "VmHWM:")
}

/// A memory figure (`field`, in kB) from a `/proc/<pid>/status` file, in MB.
pub fn proc_status_mb(path: &str, field: &str) -> anyhow::Result<f64> {
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
