//! Hosts of one test: network namespaces joined by a bridge, each with an address from the
//! benchmarking range 198.18.0.0/15 (RFC 2544, never routed), so a test can run trawl as if
//! over several machines and cut one machine's link. The test process itself joins the bridge as
//! the "console" (the last address), to start processes' peers, submit work and read the ledger;
//! nothing is routed anywhere else, and everything is removed when the net is dropped.
use std::process::{Command, Stdio};

/// One host: a namespace with one interface on the bridge.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    /// The namespace (`ip netns exec <ns> …`).
    pub ns: String,
    /// Its address on the test network.
    pub addr: String,
    /// Its cable's end in the switch namespace: down = unplugged.
    uplink: String,
}

impl Host {
    /// `program` to run on this host (inside its namespace).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.ns]).arg(program);
        command
    }
}

pub struct TestNet {
    pub hosts: Vec<Host>,
    /// The test process's own address on the network.
    pub console: String,
    switch: String,
    console_link: String,
}

impl TestNet {
    /// Why this machine cannot create namespaces, if it cannot (the test then says so and
    /// skips; it runs wherever it can).
    pub fn unavailable() -> Option<String> {
        let probe = format!("trawl-probe-{}", std::process::id());
        match ip(&["netns", "add", &probe]) {
            Ok(()) => {
                let _ = ip(&["netns", "del", &probe]);
                None
            }
            Err(err) => Some(err),
        }
    }

    /// Hosts named `names` (short: they name interfaces), addresses 198.18.<n>.1… in a /24 of
    /// its own per test process.
    pub fn create(names: &[&str]) -> Self {
        let tag = std::process::id() % 10_000;
        let subnet = format!("198.18.{}", tag % 250 + 1);
        let switch = format!("t{tag}-sw");
        ip_ok(&["netns", "add", &switch]);
        in_ns(&switch, &["link", "add", "br0", "type", "bridge"]);
        in_ns(&switch, &["link", "set", "br0", "up"]);
        let mut hosts = Vec::new();
        for (index, name) in names.iter().enumerate() {
            let ns = format!("t{tag}-{name}");
            let (inner, uplink) = (format!("t{tag}h{index}"), format!("t{tag}u{index}"));
            let addr = format!("{subnet}.{}", index + 1);
            ip_ok(&["netns", "add", &ns]);
            ip_ok(&[
                "link", "add", &inner, "type", "veth", "peer", "name", &uplink,
            ]);
            ip_ok(&["link", "set", &inner, "netns", &ns]);
            ip_ok(&["link", "set", &uplink, "netns", &switch]);
            in_ns(&switch, &["link", "set", &uplink, "master", "br0"]);
            in_ns(&switch, &["link", "set", &uplink, "up"]);
            in_ns(&ns, &["addr", "add", &format!("{addr}/24"), "dev", &inner]);
            in_ns(&ns, &["link", "set", &inner, "up"]);
            in_ns(&ns, &["link", "set", "lo", "up"]);
            hosts.push(Host {
                name: (*name).to_owned(),
                ns,
                addr,
                uplink,
            });
        }
        let console = format!("{subnet}.254");
        let (link, uplink) = (format!("t{tag}c"), format!("t{tag}cu"));
        ip_ok(&[
            "link", "add", &link, "type", "veth", "peer", "name", &uplink,
        ]);
        ip_ok(&["link", "set", &uplink, "netns", &switch]);
        in_ns(&switch, &["link", "set", &uplink, "master", "br0"]);
        in_ns(&switch, &["link", "set", &uplink, "up"]);
        ip_ok(&["addr", "add", &format!("{console}/24"), "dev", &link]);
        ip_ok(&["link", "set", &link, "up"]);
        Self {
            hosts,
            console,
            switch,
            console_link: link,
        }
    }

    pub fn host(&self, name: &str) -> &Host {
        self.hosts
            .iter()
            .find(|host| host.name == name)
            .unwrap_or_else(|| panic!("no host {name}"))
    }

    /// Unplugs `host`'s cable: nothing reaches it, nothing leaves it.
    pub fn cut(&self, host: &str) {
        in_ns(
            &self.switch,
            &["link", "set", &self.host(host).uplink, "down"],
        );
    }

    pub fn restore(&self, host: &str) {
        in_ns(
            &self.switch,
            &["link", "set", &self.host(host).uplink, "up"],
        );
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.console_link]);
        for host in &self.hosts {
            let _ = ip(&["netns", "del", &host.ns]);
        }
        let _ = ip(&["netns", "del", &self.switch]);
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("ip {}: {err}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn ip_ok(args: &[&str]) {
    ip(args).unwrap_or_else(|err| panic!("{err}"));
}

fn in_ns(ns: &str, args: &[&str]) {
    let mut all = vec!["netns", "exec", ns, "ip"];
    all.extend_from_slice(args);
    ip_ok(&all);
}
