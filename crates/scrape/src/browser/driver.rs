//! A chromedriver child process on a free loopback port, in a process group of its own so that
//! stopping it also stops every browser it started, whatever state they are in.
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::BrowserError;

/// How long chromedriver may take to answer `/status` after starting.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a started chromedriver is not serving.
enum NotReady {
    /// It exited (its port was taken, or it cannot run at all).
    Exited(BrowserError),
    /// It runs but never answered.
    Silent(BrowserError),
}

pub(crate) struct DriverProcess {
    child: Child,
    pub(crate) url: String,
}

/// Ports tried when chromedriver exits at once: the port the OS offered for the probe is one
/// it hands out to outgoing connections too, and one may take it before chromedriver binds it.
const START_TRIES: usize = 3;

impl DriverProcess {
    pub(crate) async fn spawn(program: &Path) -> Result<Self, BrowserError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let port = free_port()?;
            let child = Command::new(program)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .kill_on_drop(true)
                .spawn()
                .map_err(|err| {
                    BrowserError::Driver(format!("cannot start {}: {err}", program.display()))
                })?;
            let mut driver = Self {
                child,
                url: format!("http://127.0.0.1:{port}"),
            };
            match driver.wait_ready().await {
                Ok(()) => return Ok(driver),
                Err(NotReady::Exited(err)) if tries < START_TRIES => {
                    tracing::warn!(port, error = %err, "chromedriver exited at start; another port");
                }
                Err(NotReady::Exited(err) | NotReady::Silent(err)) => return Err(err),
            }
        }
    }

    async fn wait_ready(&mut self) -> Result<(), NotReady> {
        let client = reqwest::Client::new();
        let status = format!("{}/status", self.url);
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        while tokio::time::Instant::now() < deadline {
            if let Ok(response) = client
                .get(&status)
                .timeout(Duration::from_secs(1))
                .send()
                .await
                && response.status().is_success()
            {
                return Ok(());
            }
            if let Ok(Some(exit)) = self.child.try_wait() {
                return Err(NotReady::Exited(BrowserError::Driver(format!(
                    "chromedriver exited before answering {status} ({exit})"
                ))));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(NotReady::Silent(BrowserError::Driver(format!(
            "chromedriver did not answer {status} within {START_TIMEOUT:?}"
        ))))
    }

    /// Kills chromedriver and every browser it started, and waits until it is gone.
    pub(crate) async fn stop(mut self) {
        self.kill_group();
        let _ = self.child.wait().await;
    }

    fn kill_group(&self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) with a negative pid signals the process group we created with
            // process_group(0); it touches no memory.
            unsafe {
                libc::kill(-(pid as i32), libc::SIGKILL);
            }
        }
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

/// The fallback for every path that skips `stop` (a panic, a dropped pool): the group dies
/// with the handle.
impl Drop for DriverProcess {
    fn drop(&mut self) {
        self.kill_group();
    }
}

fn free_port() -> Result<u16, BrowserError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|err| BrowserError::Driver(format!("no free port: {err}")))?;
    Ok(listener
        .local_addr()
        .map_err(|err| BrowserError::Driver(err.to_string()))?
        .port())
}

/// Live processes whose command line mentions `marker` (a session's profile folder). A zombie
/// has an empty command line, so it does not count.
pub(crate) fn processes_mentioning(marker: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<i32>().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            String::from_utf8_lossy(&cmdline)
                .contains(marker)
                .then_some(pid)
        })
        .collect()
}

/// Kills every process whose command line mentions `marker` (a session's profile folder), for
/// a browser that did not go away when its session was closed.
pub(crate) fn kill_processes_mentioning(marker: &str) -> usize {
    let pids = processes_mentioning(marker);
    for pid in &pids {
        // SAFETY: kill(2) on a pid read from /proc; no memory is touched.
        unsafe {
            libc::kill(*pid, libc::SIGKILL);
        }
    }
    pids.len()
}
