//! Shared test fixtures: a unique Redis key namespace per test, trawl services over a test's
//! database, the demo board on a free loopback port, and site registration.
//!
//! `REDIS_URL` and `DATABASE_URL` must be set (`deploy/dev.sh test` sets them); a test without
//! them fails loudly instead of being skipped.
use std::time::Duration;

use queue_core::{CommonConfig, Services};
use sqlx::PgPool;
use tokio_util::sync::{CancellationToken, DropGuard};
use trawl_scrape_runs::sites::{NewSite, SiteSchedule};
use url::Url;

pub mod cluster;
pub mod embeddings;
pub mod grid;
pub mod invariants;
pub mod nap;
pub mod netns;
mod postgres;
pub mod procs;
pub mod prometheus;
pub mod smtp;

pub use invariants::{assert_invariants, violations};

pub use demo_board::{DemoBoard, FaultAction, FaultRule, FaultTarget};

pub fn redis_url() -> String {
    std::env::var("REDIS_URL")
        .expect("REDIS_URL must be set for the tests (deploy/dev.sh test sets it)")
}

/// A Redis key namespace of one test. Its keys are deleted when it is dropped.
pub struct TestRedis {
    pub url: String,
    pub prefix: String,
    pub pool: queue_core::RedisPool,
}

impl TestRedis {
    pub fn new() -> Self {
        Self::at(&redis_url())
    }

    /// A namespace on the Redis at `url` (one server, or a cluster: `redis+cluster://…`).
    pub fn at(url: &str) -> Self {
        let prefix = format!("test-{}:", uuid::Uuid::new_v4().simple());
        let pool = queue_core::create_pool(url, 8).expect("redis pool");
        Self {
            url: url.to_owned(),
            prefix,
            pool,
        }
    }

    /// Config for a process working in this namespace on `database_url`.
    pub fn config(&self, database_url: &str) -> CommonConfig {
        CommonConfig {
            database_url: database_url.to_owned(),
            redis_url: self.url.clone(),
            redis_prefix: self.prefix.clone(),
            queue_name: "scraping".to_owned(),
            result_ttl: 600,
            job_timeout: 60,
            max_deliveries: 3,
            reconcile_grace: 120,
            database_max_connections: 5,
            database_idle_in_transaction_timeout: 30,
        }
    }

    /// Services over a test's database pool, in this namespace.
    pub fn services(&self, db: &PgPool) -> Services {
        Services::new(
            db.clone(),
            self.pool.clone(),
            &self.config("postgres://unused"),
        )
    }

    /// A worker takes the next `tasks` tasks of `queue` and dies holding them: its heartbeat
    /// runs out at once, so the next recovery presumes it dead. Returns the tasks it held.
    pub async fn take_and_die(
        &self,
        queue: &queue_core::Queue,
        worker: &str,
        tasks: usize,
    ) -> Vec<queue_core::RawTask> {
        queue
            .heartbeat(worker, Duration::from_millis(1))
            .await
            .expect("heartbeat");
        let mut consumer = queue.consumer(&self.url, worker, Duration::from_millis(200));
        let mut held = Vec::with_capacity(tasks);
        for _ in 0..tasks {
            held.push(consumer.next().await.expect("dequeue").expect("a task"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        held
    }
}

impl Default for TestRedis {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        // A test's cluster is its own and goes with it: only the shared server needs cleaning.
        let Ok(queue_core::RedisTarget::Server(url)) = queue_core::RedisTarget::parse(&self.url)
        else {
            return;
        };
        let Ok(client) = redis::Client::open(url.as_str()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}

/// The demo board on a free loopback port; stops when dropped.
pub struct TestBoard {
    pub board: DemoBoard,
    pub url: Url,
    _stop: DropGuard,
}

impl TestBoard {
    pub async fn start() -> Self {
        let board = DemoBoard::default();
        let stop = CancellationToken::new();
        let addr = board
            .spawn_local(stop.clone())
            .await
            .expect("demo board binds");
        Self {
            board,
            url: Url::parse(&format!("http://{addr}/")).expect("url"),
            _stop: stop.drop_guard(),
        }
    }

    pub fn fail(&self, rules: Vec<FaultRule>) {
        self.board.faults.set(rules);
    }
}

/// A site with no pauses, so tests run at full speed.
pub fn unpaused_site(name: &str, payload: serde_json::Value, max_retries: i32) -> NewSite {
    NewSite {
        site_name: name.to_owned(),
        enabled: true,
        interval_minutes: 60,
        payload,
        min_pause_seconds: 0,
        max_pause_seconds: 0,
        max_retries,
        cron: None,
        time_zone: None,
    }
}

/// Registers a demo-board site with no pauses.
pub async fn register_site(db: &PgPool, name: &str, board: &Url, max_retries: i32) -> SiteSchedule {
    let payload = serde_json::json!({"source": "demo_board", "base_url": board.as_str()});
    trawl_scrape_runs::sites::upsert_site(db, &unpaused_site(name, payload, max_retries))
        .await
        .expect("site registers")
}

/// Polls `check` every 50 ms until it returns Some, or panics after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (up to 90 s) until run `run_id` has ended (not queued, not running); returns it.
pub async fn run_ended(db: &PgPool, run_id: &str) -> queue_core::store::Run {
    use queue_core::store::RunStatus;
    eventually(Duration::from_secs(90), "the run to end", || async {
        queue_core::store::get_run(db, run_id)
            .await
            .expect("the ledger answers")
            .filter(|run| !matches!(run.status, RunStatus::Queued | RunStatus::Running))
    })
    .await
}

/// Raw Redis access for assertions.
pub async fn redis_cmd<T: redis::FromRedisValue>(
    pool: &queue_core::RedisPool,
    cmd: &mut redis::Cmd,
) -> T {
    let mut conn = pool.get().await.expect("redis connection");
    cmd.query_async(&mut conn).await.expect("redis command")
}

/// Processes whose command line mentions `marker` (e.g. a test's own profile folder), for leak
/// checks.
pub fn processes_mentioning(marker: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            String::from_utf8_lossy(&cmdline)
                .contains(marker)
                .then_some(pid)
        })
        .collect()
}

/// A site definition for the demo board's JavaScript-rendered listing.
pub fn js_listing_definition(board: &Url, fetch: &str) -> serde_json::Value {
    serde_json::json!({
        "source": "definition",
        "start_url": format!("{board}js/jobs?q={{search_term}}&page={{page}}"),
        "fetch": fetch,
        "wait_for": "main#results[data-loaded]",
        "item_selector": "article.job-card",
        "fields": {"title": ".job-link", "url": "a.job-link@href", "company": ".company",
                   "location": ".location", "posted_date": "time.posted@datetime"},
        "pagination": {"kind": "next_link", "selector": "a[rel=next]", "max_pages": 10},
        "follow_details": true
    })
}

/// The URL of a test's database, for trawl binaries run as real processes.
pub fn database_url(db: &PgPool) -> String {
    let options = db.connect_options();
    format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("postgres")
    )
}
