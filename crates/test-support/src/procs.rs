//! Real processes for the fault tests: trawl's own binaries, and Redis / PostgreSQL servers of a
//! test's own on free loopback ports, so a test can kill or stop them without disturbing others.
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port below the kernel's ephemeral range, so no outgoing connection of a
/// parallel test can take it between this probe and the server's bind, or while a test restarts
/// its server on the same port (a port the OS picks for a probe is one it also hands to clients:
/// a Redis Cluster node once lost its port that way). Picked at random, so parallel test
/// processes rarely probe the same one; the OS's pick if the ephemeral range leaves no room.
pub fn free_port() -> u16 {
    if let Some((low, high)) = ports_below_ephemeral() {
        for _ in 0..1_000 {
            let port = low + (uuid::Uuid::new_v4().as_u128() % u128::from(high - low)) as u16;
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Lowest port tests pick from; `[low, high)` also leaves `port + 10_000` (a cluster node's bus
/// port) below the ephemeral range.
const LOWEST_TEST_PORT: u16 = 12_000;

fn ports_below_ephemeral() -> Option<(u16, u16)> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let ephemeral_low: u16 = range.split_whitespace().next()?.parse().ok()?;
    let high = ephemeral_low.checked_sub(10_000)?;
    (high >= LOWEST_TEST_PORT + 1_000).then_some((LOWEST_TEST_PORT, high))
}

/// Whether `child` listens on `addr:port` within `limit`; false as soon as it exits (another
/// process bound the port first) or when the time is up.
pub(crate) fn listens(child: &mut Child, addr: &str, port: u16, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect((addr, port)).is_ok() {
            return true;
        }
        if !matches!(child.try_wait(), Ok(None)) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A binary of this workspace built next to the running test (`target/<profile>/<name>`).
/// Built by `cargo build --workspace --bins` (as `deploy/dev.sh test` does before its tests): a
/// test run builds only the binaries of packages that have integration tests of their own.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test>-<hash>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.is_file(),
        "{} is not built; build the binaries first (`cargo build --workspace --bins`, as \
         `deploy/dev.sh test` does)",
        path.display()
    );
    path
}

/// Sends `signal` (e.g. "TERM", "KILL", "STOP") to `pid`.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// A trawl process whose output goes to a log file (shown by `log_tail` when a test fails).
pub struct Proc {
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Starts `binary` with `env` added to this process's environment.
    pub fn spawn(name: &str, binary: &Path, env: &[(&str, String)], log_dir: &Path) -> Self {
        Self::spawn_on(None, name, binary, env, log_dir)
    }

    /// `spawn` on a test host (inside its network namespace), or on this machine.
    pub fn spawn_on(
        host: Option<&crate::netns::Host>,
        name: &str,
        binary: &Path,
        env: &[(&str, String)],
        log_dir: &Path,
    ) -> Self {
        let log = log_dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let mut command = match host {
            Some(host) => host.command(binary),
            None => Command::new(binary),
        };
        // Workers and the API embed with feature hashing (instant, no model files) unless the
        // test names its EMBEDDER: the model's own tests do.
        command.env("EMBEDDER", "hashing");
        command
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{name} starts: {e}"));
        Self {
            name: name.to_owned(),
            child,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no cleanup of any kind.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn sigterm(&self) {
        signal(self.pid(), "TERM");
    }

    /// Whether the process is still running (not exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `limit` for the process to exit; returns its exit code (None: killed by a
    /// signal), or panics if it is still running.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {limit:?}; log:\n{}",
                self.name,
                self.log_tail(40)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last `lines` lines the process wrote.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// How many lines of its log contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log_lines(needle).len()
    }

    /// The lines of its log that contain `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A redis-server of one test, without persistence: a restart starts it empty, as a crashed
/// production Redis without AOF would.
pub struct OwnRedis {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl OwnRedis {
    pub fn start() -> Self {
        let mut redis = Self {
            port: free_port(),
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
        };
        redis.start_again();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL): everything in it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server on the same port, empty.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "redis is already running");
        let child = redis_server(None, self.port, self.dir.path())
            .spawn()
            .expect("redis-server starts (is it installed?)");
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(10), "redis-server");
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A throwaway redis-server on `port` of loopback or of `host`, keeping nothing on disk (files
/// it must write go to `dir`); callers add what else they need.
pub(crate) fn redis_server(host: Option<&crate::netns::Host>, port: u16, dir: &Path) -> Command {
    let (mut command, bind) = match host {
        Some(host) => {
            let mut command = host.command("redis-server");
            // Reached from the test network's other hosts, with no password: the network is the
            // test's own, routed nowhere.
            command.args(["--protected-mode", "no"]);
            (command, host.addr.as_str())
        }
        None => (Command::new("redis-server"), "127.0.0.1"),
    };
    command
        .args(["--port", &port.to_string(), "--bind", bind])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--maxmemory-policy", "noeviction"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

pub(crate) fn wait_for_port(port: u16, limit: Duration, what: &str) {
    wait_for("127.0.0.1", port, limit, what);
}

/// Waits until something listens on `addr:port`.
pub fn wait_for(addr: &str, port: u16, limit: Duration, what: &str) {
    let deadline = Instant::now() + limit;
    while std::net::TcpStream::connect((addr, port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub use crate::postgres::OwnPostgres;

/// A `trawl-worker` process on a test's database and Redis namespace (HTTP only, no shared
/// pacing), for tests of the API and the CLI that need work done as a deployment does it
/// without linking the worker; killed when dropped.
pub struct WorkerProcess {
    pub proc: Proc,
    _logs: tempfile::TempDir,
}

impl WorkerProcess {
    pub fn start(database_url: &str, redis: &crate::TestRedis) -> Self {
        let logs = tempfile::tempdir().expect("log dir");
        let env = [
            ("DATABASE_URL", database_url.to_owned()),
            ("REDIS_URL", redis.url.clone()),
            ("REDIS_PREFIX", redis.prefix.clone()),
            ("BROWSER_ENABLED", "false".to_owned()),
            ("DOMAIN_RATE", "0".to_owned()),
            ("LOG_FORMAT", "json".to_owned()),
            ("RUST_LOG", "info".to_owned()),
        ];
        let proc = Proc::spawn(
            "worker",
            &workspace_binary("trawl-worker"),
            &env,
            logs.path(),
        );
        Self { proc, _logs: logs }
    }
}
