//! A Redis Cluster of one test: masters and replicas as redis-server processes on free loopback
//! ports (no persistence), created with `redis-cli --cluster create`, so a test can kill a
//! master, stall a replica or move a slot without disturbing anything else.
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::netns::Host;
use crate::procs::{listens, redis_server, signal};

mod topology;

pub use topology::NodeInfo;

/// How long a node may be unreachable before the others mark it failed: short, so a failover
/// takes a test seconds (production keeps Redis's 15 s default or similar).
pub const NODE_TIMEOUT_MS: u64 = 1_000;

pub struct OwnCluster {
    pub nodes: Vec<ClusterNode>,
    /// Where the nodes listen: loopback, or a test host's address.
    pub addr: String,
    host: Option<Host>,
    dir: tempfile::TempDir,
}

pub struct ClusterNode {
    pub port: u16,
    child: Option<Child>,
}

impl OwnCluster {
    /// `masters` masters with `replicas` replicas each, all slots covered, every replica synced.
    pub fn start(masters: usize, replicas: usize) -> Self {
        Self::start_at(None, masters, replicas)
    }

    /// The same on a test host of its own (its ports are all free: 7001, 7002, …).
    pub fn start_on(host: &Host, masters: usize, replicas: usize) -> Self {
        Self::start_at(Some(host), masters, replicas)
    }

    fn start_at(host: Option<&Host>, masters: usize, replicas: usize) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let count = masters * (1 + replicas);
        let ports = match host {
            Some(_) => (7001..).take(count).collect(),
            None => cluster_ports(count),
        };
        let nodes: Vec<ClusterNode> = ports
            .into_iter()
            .map(|port| ClusterNode { port, child: None })
            .collect();
        let addr = host.map_or_else(|| "127.0.0.1".to_owned(), |host| host.addr.clone());
        let mut cluster = Self {
            nodes,
            addr,
            host: host.cloned(),
            dir,
        };
        for index in 0..cluster.nodes.len() {
            cluster.start_node(index);
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &cluster.nodes {
            create.arg(format!("{}:{}", cluster.addr, node.port));
        }
        let out = create
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .expect("redis-cli runs (is redis-tools installed?)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.wait_healthy(Duration::from_secs(30));
        cluster
    }

    /// Starts node `index`; on loopback a node whose port a parallel test took first moves to
    /// another free port (the cluster is not created yet, so nothing knows the old one).
    fn start_node(&mut self, index: usize) {
        for _ in 0..5 {
            let port = self.nodes[index].port;
            let mut child = redis_server(self.host.as_ref(), port, self.dir.path())
                .args(["--cluster-enabled", "yes"])
                .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
                // A replica cut off for a while still takes over: losing a few writes is what
                // the failover tests provoke, and the ledger is what recovers them.
                .args(["--cluster-replica-validity-factor", "0"])
                // The other masters keep serving their queues while one slot range fails over.
                .args(["--cluster-require-full-coverage", "no"])
                .spawn()
                .expect("redis-server starts (is it installed?)");
            if listens(&mut child, &self.addr, port, Duration::from_secs(10)) {
                self.nodes[index].child = Some(child);
                return;
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(self.host.is_none(), "redis-server did not listen on {port}");
            let taken: Vec<u16> = self.nodes.iter().map(|node| node.port).collect();
            self.nodes[index].port = cluster_port(&taken);
        }
        panic!("redis-server did not listen on five ports in a row");
    }

    /// `redis+cluster://` with every node as a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("{}:{}", self.addr, node.port))
            .collect();
        format!("{}{}", queue_core::CLUSTER_SCHEME, seeds.join(","))
    }

    /// A command sent to the node on `port` alone.
    pub fn on<T: redis::FromRedisValue>(
        &self,
        port: u16,
        cmd: &redis::Cmd,
    ) -> redis::RedisResult<T> {
        let client = redis::Client::open(format!("redis://{}:{port}", self.addr))?;
        let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        cmd.query(&mut conn)
    }

    fn live_port(&self) -> u16 {
        self.nodes
            .iter()
            .find(|node| node.child.is_some())
            .expect("a live node")
            .port
    }

    fn pid(&self, port: u16) -> u32 {
        let node = self
            .nodes
            .iter()
            .find(|node| node.port == port)
            .expect("a node of this cluster");
        node.child.as_ref().expect("the node runs").id()
    }

    /// SIGKILL: the node and whatever it had not replicated are gone.
    pub fn kill(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|node| node.port == port)
            .expect("a node of this cluster");
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the node neither reads its replication stream nor answers the cluster bus.
    pub fn freeze(&self, port: u16) {
        signal(self.pid(port), "STOP");
    }

    pub fn thaw(&self, port: u16) {
        signal(self.pid(port), "CONT");
    }

    /// Waits until every live node says `cluster_state:ok` and every replica's link is up.
    pub fn wait_healthy(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let healthy = self
                .nodes
                .iter()
                .filter(|node| node.child.is_some())
                .all(|node| {
                    let info: String = self
                        .on(node.port, redis::cmd("CLUSTER").arg("INFO"))
                        .unwrap_or_default();
                    let replication: String = self
                        .on(node.port, redis::cmd("INFO").arg("replication"))
                        .unwrap_or_default();
                    info.contains("cluster_state:ok")
                        && (replication.contains("role:master")
                            || replication.contains("master_link_status:up"))
                });
            if healthy {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not become healthy in {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                // SIGKILL ends a frozen (SIGSTOPped) node too.
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// `count` free ports whose cluster bus ports (port + 10000) are free too.
fn cluster_ports(count: usize) -> Vec<u16> {
    let mut ports = Vec::new();
    while ports.len() < count {
        ports.push(cluster_port(&ports));
    }
    ports
}

/// A free port whose bus port (+10,000) is free too, other than those in `taken`.
fn cluster_port(taken: &[u16]) -> u16 {
    loop {
        let port = crate::procs::free_port();
        let bus_free =
            port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok();
        if bus_free && !taken.contains(&port) {
            return port;
        }
    }
}
