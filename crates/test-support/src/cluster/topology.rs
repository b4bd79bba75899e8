//! Reading a cluster's topology (which node serves which slots, who follows whom) and moving a
//! slot live, as an operator would with `redis-cli --cluster reshard`.
use super::OwnCluster;

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub id: String,
    pub port: u16,
    pub master: bool,
    pub failed: bool,
    /// The id of the master this replica follows.
    pub master_id: Option<String>,
    pub slots: Vec<(u16, u16)>,
}

impl OwnCluster {
    /// A live node's view of the cluster.
    pub fn topology(&self) -> Vec<NodeInfo> {
        for node in self.nodes.iter().filter(|node| node.child.is_some()) {
            if let Ok(text) =
                self.on::<String>(node.port, &redis::cmd("CLUSTER").arg("NODES").clone())
            {
                return text.lines().filter_map(parse_node_line).collect();
            }
        }
        panic!("no live cluster node answers CLUSTER NODES");
    }

    /// The slot a key (or a hash tag such as `{scraping}`) hashes to.
    pub fn keyslot(&self, key: &str) -> u16 {
        let live = self.live_port();
        self.on(live, redis::cmd("CLUSTER").arg("KEYSLOT").arg(key))
            .expect("CLUSTER KEYSLOT")
    }

    /// The port of the live master serving `slot`, if one does.
    pub fn master_of_slot(&self, slot: u16) -> Option<u16> {
        self.topology()
            .into_iter()
            .find(|node| {
                node.master
                    && !node.failed
                    && node
                        .slots
                        .iter()
                        .any(|(from, to)| (*from..=*to).contains(&slot))
            })
            .map(|node| node.port)
    }

    /// The replicas following the master on `port`.
    pub fn replicas_of(&self, port: u16) -> Vec<u16> {
        let topology = self.topology();
        let id = &topology
            .iter()
            .find(|node| node.port == port)
            .expect("the master is in the topology")
            .id;
        topology
            .iter()
            .filter(|node| node.master_id.as_ref() == Some(id))
            .map(|node| node.port)
            .collect()
    }

    pub fn masters(&self) -> Vec<u16> {
        self.topology()
            .into_iter()
            .filter(|node| node.master && !node.failed && !node.slots.is_empty())
            .map(|node| node.port)
            .collect()
    }

    /// Moves `slot` and its keys to the master on `to`, live, the way `redis-cli --cluster
    /// reshard` does: IMPORTING/MIGRATING, MIGRATE the keys in batches, then the new owner
    /// announced. Clients meanwhile get ASK (keys already moved) and then MOVED. Returns how
    /// many keys moved.
    pub fn move_slot(&self, slot: u16, to: u16) -> usize {
        let from = self.master_of_slot(slot).expect("the slot has a master");
        if from == to {
            return 0;
        }
        let id_of = |port: u16| {
            self.topology()
                .into_iter()
                .find(|node| node.port == port)
                .expect("a node of this cluster")
                .id
        };
        let (from_id, to_id) = (id_of(from), id_of(to));
        let setslot = |port: u16, state: &str, id: &str| {
            let _: () = self
                .on(
                    port,
                    redis::cmd("CLUSTER")
                        .arg("SETSLOT")
                        .arg(slot)
                        .arg(state)
                        .arg(id),
                )
                .unwrap_or_else(|err| panic!("SETSLOT {slot} {state} on {port}: {err}"));
        };
        setslot(to, "IMPORTING", &from_id);
        setslot(from, "MIGRATING", &to_id);
        let mut moved = 0;
        loop {
            let keys: Vec<String> = self
                .on(
                    from,
                    redis::cmd("CLUSTER")
                        .arg("GETKEYSINSLOT")
                        .arg(slot)
                        .arg(100),
                )
                .expect("GETKEYSINSLOT");
            if keys.is_empty() {
                break;
            }
            moved += keys.len();
            let _: redis::Value = self
                .on(
                    from,
                    redis::cmd("MIGRATE")
                        .arg(&self.addr)
                        .arg(to)
                        .arg("")
                        .arg(0)
                        .arg(5_000)
                        .arg("REPLACE")
                        .arg("KEYS")
                        .arg(&keys),
                )
                .expect("MIGRATE");
        }
        setslot(to, "NODE", &to_id);
        setslot(from, "NODE", &to_id);
        for master in self.masters() {
            if master != from && master != to {
                setslot(master, "NODE", &to_id);
            }
        }
        moved
    }
}

fn parse_node_line(line: &str) -> Option<NodeInfo> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let address = fields.get(1)?;
    let port = address
        .split('@')
        .next()?
        .rsplit(':')
        .next()?
        .parse()
        .ok()?;
    let flags = fields.get(2)?;
    let master_id = fields
        .get(3)
        .filter(|id| **id != "-")
        .map(|id| (*id).to_owned());
    let slots = fields
        .iter()
        .skip(8)
        .filter(|field| !field.starts_with('['))
        .filter_map(|field| match field.split_once('-') {
            Some((from, to)) => Some((from.parse().ok()?, to.parse().ok()?)),
            None => field.parse().ok().map(|slot| (slot, slot)),
        })
        .collect();
    Some(NodeInfo {
        id: fields[0].to_owned(),
        port,
        master: flags.contains("master"),
        failed: flags.contains("fail") && !flags.contains("fail?"),
        master_id,
        slots,
    })
}
