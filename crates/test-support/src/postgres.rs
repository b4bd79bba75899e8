//! A PostgreSQL server of one test's own, on loopback or on a test host, so a test can stop
//! and start it (outages) or reach it over the test network (the multi-host run).
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::procs::free_port;

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
