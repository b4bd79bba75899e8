//! Real processes for the fault tests: trawl's own binaries, and Redis / PostgreSQL servers of a
//! test's own on free loopback ports, so a test can kill or stop them without disturbing others.
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (the OS picks it; it is free again once the probe closes).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A binary of this workspace built next to the running test (`target/<profile>/<name>`).
/// `cargo nextest run --workspace` and `cargo test --workspace` build every binary first.
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
        "{} is not built; run the suite with --workspace",
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

/// A PostgreSQL cluster of one test (initdb'd in a temp dir, trust auth, fsync off). As root,
/// its programs run as the `postgres` user, as PostgreSQL requires.
pub struct OwnPostgres {
    pub port: u16,
    /// Where it listens: loopback, or a test host's address.
    pub addr: String,
    host: Option<crate::netns::Host>,
    data: PathBuf,
    bindir: PathBuf,
    _dir: tempfile::TempDir,
}

impl OwnPostgres {
    pub fn start() -> Self {
        Self::start_at(None)
    }

    /// The same on a test host of its own (port 5432).
    pub fn start_on(host: &crate::netns::Host) -> Self {
        Self::start_at(Some(host))
    }

    fn start_at(host: Option<&crate::netns::Host>) -> Self {
        let bindir = pg_bindir();
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("data dir");
        if is_root() {
            // The postgres user must be able to enter the temp dir and own the data dir.
            run(Command::new("chmod").arg("755").arg(dir.path()));
            run(Command::new("chown").arg("postgres").arg(&data));
        }
        let cluster = Self {
            port: host.map_or_else(free_port, |_| 5432),
            addr: host.map_or_else(|| "127.0.0.1".to_owned(), |host| host.addr.clone()),
            host: host.cloned(),
            data,
            bindir,
            _dir: dir,
        };
        run(cluster
            .pg_command("initdb")
            .arg("-D")
            .arg(&cluster.data)
            .args(["-U", "postgres", "-A", "trust", "--no-sync"]));
        if cluster.host.is_some() {
            // The other hosts of the test's own network (198.18.0.0/15, routed nowhere).
            let hba = cluster.data.join("pg_hba.conf");
            let mut rules = std::fs::read_to_string(&hba).expect("pg_hba.conf");
            rules.push_str("host all all 198.18.0.0/15 trust\n");
            std::fs::write(&hba, rules).expect("pg_hba.conf written");
        }
        cluster.start_again();
        cluster
    }

    /// `postgres://postgres@<addr>:<port>/<database>`
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@{}:{}/{database}", self.addr, self.port)
    }

    /// Stops the server (fast shutdown: connections are cut, as in a failover or crash).
    pub fn stop(&self) {
        run(self
            .pg_command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"]));
    }

    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses={} -c fsync=off -c max_connections=100",
            self.port,
            self.data.display(),
            self.addr
        );
        run(self
            .pg_command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.data.join("server.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"]));
    }

    fn pg_command(&self, program: &str) -> Command {
        let program = self.bindir.join(program);
        let start = |first: &std::ffi::OsStr| match &self.host {
            Some(host) => host.command(first),
            None => Command::new(first),
        };
        if is_root() {
            let mut command = start("runuser".as_ref());
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            start(program.as_os_str())
        }
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self
            .pg_command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn pg_bindir() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect(
            "PostgreSQL server binaries under /usr/lib/postgresql (deploy/dev.sh installs them)",
        )
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    dirs.sort_by_key(|dir| {
        dir.parent()
            .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop()
        .expect("an initdb under /usr/lib/postgresql/*/bin")
}

fn is_root() -> bool {
    // /proc/self/status: "Uid:\t<real>\t<effective>..."
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Uid:"))?;
            line.split_whitespace().nth(2).map(|uid| uid == "0")
        })
        .unwrap_or(false)
}

fn run(command: &mut Command) {
    let output = command.output().expect("command runs");
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
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
