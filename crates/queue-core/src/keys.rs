//! Every Redis key trawl uses, built in one place.
//!
//! All keys of one queue share the prefix and the hash tag `{<queue>}`, so each Lua script touches
//! a single slot and the layout is safe on Redis Cluster:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `<prefix>{<queue>}:pending` | list | task JSON; producers `LPUSH`, workers take from the right (FIFO) |
//! | `<prefix>{<queue>}:inflight:<worker>` | list | tasks a worker has taken and not yet acked |
//! | `<prefix>{<queue>}:delayed` | zset | task JSON → due time (ms, Redis clock): retries waiting their backoff |
//! | `<prefix>{<queue>}:dead` | list | dead-letter entries `{"task":..,"reason":..,"failed_at":..}`, newest first, capped |
//! | `<prefix>{<queue>}:paused` | string | present while the queue is paused |
//! | `<prefix>{<queue>}:cancel:<run_id>` | string | present while a running run is being cancelled |
//! | `<prefix>{<queue>}:deliveries` | hash | task id → worker deaths blamed on it, or failed give-backs |
//! | `<prefix>{<queue>}:deaths` | zset | `{worker, at, tasks}` → ms: worker deaths of the last 10 min and the tasks each held |
//! | `<prefix>{<queue>}:workers` | zset | worker id → heartbeat expiry (ms, Redis clock) |
//! | `<prefix>{<queue>}:lock:<key>` | string | run lock (a scrape's key: its site); value is the owning run_id |
//! | `<prefix>{<queue>}:result:<task_id>` | string | summary of a finished task, kept `RESULT_TTL` |
//! | `<prefix>{<queue>}:browser_slots` | zset | holder → lease expiry (ms): the global browser cap |
//! | `<prefix>{<queue>}:pace:<host>` | string | next free turn (ms) to request `host`, all workers |
//! | `<prefix>{<queue>}:scheduler:leader` | string | the leading scheduler's token, with the lease TTL |
//! | `<prefix>{<queue>}:scheduler:last_pass` | string | JSON stats of the latest scheduler pass |
//! | `<prefix>{<queue>}:scheduler:totals` | hash | counters summed over all passes |
//! | `<prefix>queues` | set | every queue in use (workers and submitters add theirs) |

/// Whether `name` can name a queue: lowercase letters, digits, `_` and `-`, a letter first, at
/// most 32 (the pattern `task_runs.queue` is CHECKed against; never a `{` or `}`, which would
/// break the hash tag).
pub fn is_queue_name(name: &str) -> bool {
    name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// `<prefix>queues`: a set of every queue in use (outside any queue's hash tag: it is read and
/// written alone).
pub fn known_queues(prefix: &str) -> String {
    format!("{prefix}queues")
}

/// Key builder for one queue under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// `<prefix>{<queue>}:` — everything below hangs off this.
    base: String,
    queue: String,
}

impl Keys {
    pub fn new(prefix: &str, queue: &str) -> Self {
        Self {
            base: format!("{prefix}{{{queue}}}:"),
            queue: queue.to_owned(),
        }
    }

    pub fn queue_name(&self) -> &str {
        &self.queue
    }

    /// The Redis Cluster slot every key of this queue hashes to (its hash tag `{<queue>}`).
    pub fn slot(&self) -> u16 {
        crc16::State::<crc16::XMODEM>::calculate(self.queue.as_bytes()) % 16_384
    }

    pub fn pending(&self) -> String {
        format!("{}pending", self.base)
    }

    pub fn inflight(&self, worker_id: &str) -> String {
        format!("{}inflight:{worker_id}", self.base)
    }

    /// Tasks waiting to be retried, scored by when they are due (ms, Redis clock).
    pub fn delayed(&self) -> String {
        format!("{}delayed", self.base)
    }

    pub fn dead(&self) -> String {
        format!("{}dead", self.base)
    }

    /// A dashboard login session: its CSRF token, until it expires.
    pub fn ui_session(&self, id: &str) -> String {
        format!("{}ui:session:{id}", self.base)
    }

    /// The pending count minute by minute over the last hour (the dashboard's chart).
    pub fn depth_history(&self) -> String {
        format!("{}depth", self.base)
    }

    /// Present while the queue is paused: workers take no tasks.
    pub fn paused(&self) -> String {
        format!("{}paused", self.base)
    }

    /// Present while a run is being cancelled; its worker stops at the next page.
    pub fn cancel(&self, run_id: &str) -> String {
        format!("{}cancel:{run_id}", self.base)
    }

    /// How many times each task was recovered from a crashed worker.
    pub fn deliveries(&self) -> String {
        format!("{}deliveries", self.base)
    }

    /// Recent worker deaths and the tasks each held: the evidence recovery weighs before it
    /// blames a task for killing its worker.
    pub fn deaths(&self) -> String {
        format!("{}deaths", self.base)
    }

    pub fn workers(&self) -> String {
        format!("{}workers", self.base)
    }

    pub fn run_lock(&self, key: &str) -> String {
        format!("{}lock:{key}", self.base)
    }

    pub fn result(&self, task_id: &str) -> String {
        format!("{}result:{task_id}", self.base)
    }

    /// Browser slots shared by every worker (global cap on browsers).
    pub fn browser_slots(&self) -> String {
        format!("{}browser_slots", self.base)
    }

    /// Next free turn to send a request to `host` (shared per-domain rate).
    pub fn domain_pace(&self, host: &str) -> String {
        format!("{}pace:{host}", self.base)
    }

    /// The scheduler leader's lease; value = the leader's token.
    pub fn scheduler_leader(&self) -> String {
        format!("{}scheduler:leader", self.base)
    }

    pub fn scheduler_last_pass(&self) -> String {
        format!("{}scheduler:last_pass", self.base)
    }

    pub fn scheduler_totals(&self) -> String {
        format!("{}scheduler:totals", self.base)
    }

    /// Pattern matching every key of this queue, for cleanup in tests and tools.
    pub fn all_pattern(&self) -> String {
        format!("{}*", self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_prefix_and_hash_tag() {
        let keys = Keys::new("trawl:", "scraping");
        assert_eq!(keys.pending(), "trawl:{scraping}:pending");
        assert_eq!(keys.inflight("w1"), "trawl:{scraping}:inflight:w1");
        assert_eq!(keys.run_lock("demo"), "trawl:{scraping}:lock:demo");
        // As `CLUSTER KEYSLOT {scraping}` answers.
        assert_eq!(keys.slot(), 7515);
        for key in [
            keys.dead(),
            keys.workers(),
            keys.result("t"),
            keys.scheduler_last_pass(),
        ] {
            assert!(key.starts_with("trawl:{scraping}:"), "{key}");
        }
    }
}
