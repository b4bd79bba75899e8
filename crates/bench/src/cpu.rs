//! Where a measured span's CPU went, so a throughput figure says what it cost and who paid:
//! PostgreSQL (every process named `postgres`, with the postmaster's reaped backends), Redis
//! (`redis-server`), and the rest of the machine (the processes under test: trawl's workers or
//! the peer's node processes, and this bench). Also how busy the machine was and how much time
//! the hypervisor took from it (steal), which is what makes this host's figures swing from one
//! day to the next. A thread samples /proc every `EVERY`; a span is read between the samples
//! around its ends. Linux only, like the machines the bench runs on (its servers on loopback).
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const EVERY: Duration = Duration::from_millis(25);

/// A measured span on the wall clock the trace samples by: milliseconds since the epoch, the
/// clock the ledger's timestamps and the peer's own report use too.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub first_ms: f64,
    pub last_ms: f64,
}

impl Span {
    /// `count` things done over the span, per second.
    pub fn per_second(&self, count: usize) -> f64 {
        count as f64 / ((self.last_ms - self.first_ms) / 1000.0)
    }
}

/// Now, on the spans' clock.
pub fn wall_ms() -> anyhow::Result<f64> {
    Ok(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64() * 1000.0)
}

/// Cumulative CPU ticks at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Sample {
    /// Wall clock, milliseconds since the epoch (the ledger's and the peer's clock).
    at_ms: f64,
    /// The whole machine: busy ticks (steal excluded), steal ticks, all ticks.
    busy: u64,
    steal: u64,
    total: u64,
    postgres: u64,
    redis: u64,
}

/// CPU spent over a span, per run of the span.
#[derive(Debug, PartialEq)]
pub struct Spent {
    pub postgres_us: f64,
    pub redis_us: f64,
    pub rest_us: f64,
    /// Busy share of the machine's CPUs over the span, and the share the hypervisor stole.
    pub busy: f64,
    pub steal: f64,
}

impl std::fmt::Display for Spent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PostgreSQL {:.0}, Redis {:.0}, the rest {:.0} (machine {:.0}% busy, {:.0}% stolen by the host)",
            self.postgres_us,
            self.redis_us,
            self.rest_us,
            100.0 * self.busy,
            100.0 * self.steal
        )
    }
}

/// Samples in the background until dropped.
pub struct CpuTrace {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    ticks_per_second: f64,
}

impl CpuTrace {
    pub fn start() -> anyhow::Result<Self> {
        let ticks_per_second = clock_ticks()?;
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut reader = ProcReader::default();
        // One sample now, so a /proc that cannot be read fails here and not silently later.
        samples.lock().unwrap().push(reader.sample()?);
        let thread = std::thread::spawn({
            let (samples, stop) = (samples.clone(), stop.clone());
            move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EVERY);
                    if let Ok(sample) = reader.sample() {
                        samples.lock().unwrap().push(sample);
                    }
                }
            }
        });
        Ok(Self {
            samples,
            stop,
            thread: Some(thread),
            ticks_per_second,
        })
    }

    /// CPU spent over `span` per one of `runs`, between the last sample at or before its start
    /// and the first at or after its end. None until a sample past the end has been taken (wait
    /// `EVERY` after the span).
    pub fn between(&self, span: Span, runs: usize) -> Option<Spent> {
        let samples = self.samples.lock().unwrap();
        let before = samples.iter().rev().find(|s| s.at_ms <= span.first_ms)?;
        let after = samples.iter().find(|s| s.at_ms >= span.last_ms)?;
        Some(spent(before, after, self.ticks_per_second, runs))
    }

    /// `between` once the sample past the span's end exists.
    pub async fn after(&self, span: Span, runs: usize) -> Option<Spent> {
        tokio::time::sleep(EVERY * 3).await;
        self.between(span, runs)
    }
}

impl Drop for CpuTrace {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn spent(before: &Sample, after: &Sample, ticks_per_second: f64, runs: usize) -> Spent {
    let per_run = |ticks: u64| ticks as f64 / ticks_per_second * 1e6 / runs.max(1) as f64;
    let (busy, postgres, redis) = (
        after.busy - before.busy,
        after.postgres.saturating_sub(before.postgres),
        after.redis.saturating_sub(before.redis),
    );
    let total = (after.total - before.total).max(1) as f64;
    Spent {
        postgres_us: per_run(postgres),
        redis_us: per_run(redis),
        rest_us: per_run(busy.saturating_sub(postgres + redis)),
        busy: busy as f64 / total,
        steal: (after.steal - before.steal) as f64 / total,
    }
}

/// `getconf CLK_TCK`: the unit of /proc's tick counts.
fn clock_ticks() -> anyhow::Result<f64> {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()?;
    let ticks = String::from_utf8_lossy(&out.stdout).trim().parse::<f64>()?;
    anyhow::ensure!(ticks > 0.0, "getconf CLK_TCK said {ticks}");
    Ok(ticks)
}

/// Reads /proc, remembering which processes are neither PostgreSQL nor Redis so each sample
/// reads only the stat files it needs. (A pid reused within a bench by a server process would
/// be missed; the servers' processes outlive the span or are reaped into the postmaster's.)
#[derive(Default)]
struct ProcReader {
    others: HashSet<u32>,
}

impl ProcReader {
    fn sample(&mut self) -> anyhow::Result<Sample> {
        let mut sample = machine(&std::fs::read_to_string("/proc/stat")?)?;
        sample.at_ms = wall_ms()?;
        for entry in std::fs::read_dir("/proc")? {
            let Some(pid) = entry?
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if self.others.contains(&pid) {
                continue;
            }
            // Gone since the listing: its ticks are in its parent's reaped-children counts.
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            match process(&stat) {
                Some(("postgres", ticks)) => sample.postgres += ticks,
                Some(("redis-server", ticks)) => sample.redis += ticks,
                _ => {
                    self.others.insert(pid);
                }
            }
        }
        Ok(sample)
    }
}

/// The machine's busy, steal and total ticks from /proc/stat's first line.
fn machine(stat: &str) -> anyhow::Result<Sample> {
    let line = stat.lines().next().unwrap_or_default();
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    anyhow::ensure!(ticks.len() >= 8, "/proc/stat's cpu line is short: {line}");
    // user nice system idle iowait irq softirq steal (guest time is inside user already).
    let (idle, steal) = (ticks[3] + ticks[4], ticks[7]);
    let busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6];
    Ok(Sample {
        busy,
        steal,
        total: busy + idle + steal,
        ..Sample::default()
    })
}

/// A process's name and its CPU ticks, its reaped children's included, from /proc/PID/stat.
fn process(stat: &str) -> Option<(&str, u64)> {
    let name = &stat[stat.find('(')? + 1..stat.rfind(')')?];
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    // proc(5) fields 14-17 (utime stime cutime cstime); the text after ')' starts at field 3.
    let ticks = fields
        .get(11..15)?
        .iter()
        .map(|field| field.parse::<u64>().ok())
        .sum::<Option<u64>>()?;
    Some((name, ticks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_line_gives_its_name_and_ticks() {
        let stat = "812 (postgres) S 1 812 812 0 -1 4194560 4000 0 0 0 70 30 5 2 20 0 1 0 \
                    1234 220000000 5000 18446744073709551615";
        assert_eq!(process(stat), Some(("postgres", 107)));
        // A name with spaces and parentheses is read up to the last ')'.
        let odd = "9 (a (b) c) R 1 9 9 0 -1 0 0 0 0 0 1 2 3 4 20 0 1 0";
        assert_eq!(process(odd), Some(("a (b) c", 10)));
        assert_eq!(process("9 (short) R 1"), None);
    }

    #[test]
    fn the_machine_line_splits_busy_idle_and_steal() {
        let stat = "cpu  100 5 50 800 20 1 4 20 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        let sample = machine(stat).unwrap();
        assert_eq!((sample.busy, sample.steal, sample.total), (160, 20, 1000));
        assert!(machine("cpu 1 2 3\n").is_err());
    }

    #[test]
    fn a_span_is_shared_out_per_run() {
        let before = Sample::default();
        let after = Sample {
            at_ms: 1000.0,
            busy: 150,
            steal: 10,
            total: 200,
            postgres: 80,
            redis: 20,
        };
        // 100 ticks a second, 1,000 runs: 80 ticks = 0.8 s = 800 µs per run.
        let spent = spent(&before, &after, 100.0, 1000);
        assert_eq!(
            spent,
            Spent {
                postgres_us: 800.0,
                redis_us: 200.0,
                rest_us: 500.0,
                busy: 0.75,
                steal: 0.05
            }
        );
    }

    /// The trace reads this machine's /proc for real and sees time pass and CPU spent.
    #[tokio::test]
    async fn the_trace_sees_a_busy_span() {
        let trace = CpuTrace::start().unwrap();
        let first_ms = wall_ms().unwrap();
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(200) {
            std::hint::black_box(0u64.wrapping_add(1));
        }
        let span = Span {
            first_ms,
            last_ms: wall_ms().unwrap(),
        };
        let spent = trace.after(span, 1).await.expect("samples around the span");
        // 200 ms of one core spun here, in "the rest" (a quarter of it at least, however busy
        // the machine or greedy its host).
        assert!(spent.rest_us >= 50_000.0, "{spent}");
        assert!(spent.busy > 0.0 && spent.busy <= 1.0, "{spent}");
    }
}
