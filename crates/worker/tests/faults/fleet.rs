//! A fleet of trawl processes over one Redis namespace and one database, and the load they work.
use std::collections::HashMap;
use std::time::Duration;

use sqlx::PgPool;
use test_support::netns::Host;
use test_support::procs::{OwnPostgres, Proc, workspace_binary};
use test_support::{FaultAction, FaultRule, FaultTarget, TestBoard, unpaused_site};

/// Postings each load run asks for (one listing page and as many detail pages).
pub const WANTED: u32 = 8;

/// How long each nap of the second kind's load sleeps.
pub const NAP_MS: u64 = 250;

pub struct Fleet {
    base_env: Vec<(&'static str, String)>,
    logs: tempfile::TempDir,
    pub workers: Vec<Proc>,
    pub schedulers: Vec<Proc>,
    pub apis: Vec<Proc>,
    spawned: usize,
}

/// A failing test keeps its fleet's logs (each process's whole log, where a panic message
/// shows only excerpts) and says where they are.
impl Drop for Fleet {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.logs.disable_cleanup(true);
            eprintln!(
                "the fleet's logs are kept in {}",
                self.logs.path().display()
            );
        }
    }
}

impl Fleet {
    /// `env`: settings of every process on top of the fleet's defaults.
    pub fn new(
        database_url: &str,
        redis_url: &str,
        prefix: &str,
        env: &[(&'static str, &str)],
    ) -> Self {
        let mut base_env: Vec<(&'static str, String)> = vec![
            ("DATABASE_URL", database_url.to_owned()),
            ("REDIS_URL", redis_url.to_owned()),
            ("REDIS_PREFIX", prefix.to_owned()),
            ("LOG_FORMAT", "json".to_owned()),
            ("RUST_LOG", "info".to_owned()),
            ("HEARTBEAT_TTL_MS", "1000".to_owned()),
            ("BROWSER_ENABLED", "false".to_owned()),
            ("DOMAIN_RATE", "0".to_owned()),
            ("PER_DOMAIN_CONCURRENCY", "8".to_owned()),
            ("WORKER_CONCURRENCY", "4".to_owned()),
            ("RETRY_BASE_MS", "20".to_owned()),
            ("RUN_RETRY_BASE_MS", "300".to_owned()),
            ("PAGE_TIMEOUT", "5".to_owned()),
            ("SCHEDULER_INTERVAL", "1".to_owned()),
            ("LEADER_TTL_MS", "2000".to_owned()),
            ("RECONCILE_GRACE", "3".to_owned()),
            ("DATABASE_MAX_CONNECTIONS", "6".to_owned()),
        ];
        for (key, value) in env {
            base_env.retain(|(k, _)| k != key);
            base_env.push((key, (*value).to_owned()));
        }
        Self {
            base_env,
            logs: tempfile::tempdir().expect("log dir"),
            workers: Vec::new(),
            schedulers: Vec::new(),
            apis: Vec::new(),
            spawned: 0,
        }
    }

    /// A worker process: trawl-worker's kinds plus the tests' `nap` (`trawl-test-worker`), so
    /// every fault test loads a second kind beside scrapes.
    pub fn spawn_worker(&mut self) {
        self.spawn_worker_on(None);
    }

    /// A worker on a test host (a network namespace), or on this machine.
    pub fn spawn_worker_on(&mut self, host: Option<&Host>) {
        let proc = self.spawn_proc(host, "worker", "trawl-test-worker");
        self.workers.push(proc);
    }

    pub fn spawn_scheduler(&mut self) {
        self.spawn_scheduler_on(None);
    }

    pub fn spawn_scheduler_on(&mut self, host: Option<&Host>) {
        let proc = self.spawn_proc(host, "scheduler", "trawl-scheduler");
        self.schedulers.push(proc);
    }

    fn spawn_proc(&mut self, host: Option<&Host>, role: &str, binary: &str) -> Proc {
        self.spawned += 1;
        let name = match host {
            Some(host) => format!("{role}-{}-{}", self.spawned, host.name),
            None => format!("{role}-{}", self.spawned),
        };
        Proc::spawn_on(
            host,
            &name,
            &workspace_binary(binary),
            &self.base_env,
            self.logs.path(),
        )
    }

    /// The API on `port` (its /health is what the outage tests watch).
    pub fn spawn_api(&mut self, port: u16) {
        let mut env = self.base_env.clone();
        env.push(("API_BIND", format!("127.0.0.1:{port}")));
        env.push(("API_KEYS", "fault-test-key".to_owned()));
        let proc = Proc::spawn(
            "api",
            &workspace_binary("trawl-api"),
            &env,
            self.logs.path(),
        );
        self.apis.push(proc);
    }

    /// A scheduler and `workers` workers: the loop, ready to work whatever is due.
    pub fn spawn_loop(&mut self, workers: usize) {
        self.spawn_scheduler();
        for _ in 0..workers {
            self.spawn_worker();
        }
    }

    /// Panics (with their logs) unless every process is still running.
    pub fn assert_all_running(&mut self, when: &str) {
        let all = self.workers.iter_mut().chain(&mut self.schedulers);
        for proc in all.chain(&mut self.apis) {
            assert!(
                proc.is_running(),
                "{} exited {when}; log:\n{}",
                proc.name,
                proc.log_tail(30)
            );
        }
    }

    /// The logs of every process, for a failing assertion.
    pub fn logs(&self) -> String {
        self.workers
            .iter()
            .chain(&self.schedulers)
            .chain(&self.apis)
            .map(|p| format!("--- {}\n{}", p.name, p.log_tail(15)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Registers `count` sites on `board`, all due now; the scheduler gives each one run.
pub async fn register_sites(db: &PgPool, board: &TestBoard, prefix: &str, count: usize) {
    register_sites_at(db, board.url.as_str(), prefix, count).await;
}

/// `register_sites` for a demo board at `base_url`.
pub async fn register_sites_at(db: &PgPool, base_url: &str, prefix: &str, count: usize) {
    for n in 0..count {
        let payload = serde_json::json!({
            "source": "demo_board", "base_url": base_url, "results_wanted": WANTED,
        });
        trawl_scrape_runs::sites::upsert_site(
            db,
            &unpaused_site(&format!("{prefix}-{n:03}"), payload, 3),
        )
        .await
        .expect("site registers");
    }
}

/// Detail pages answer after `millis`: a run takes about WANTED * millis, long enough to be
/// caught in the middle.
pub fn slow_details(board: &TestBoard, millis: u64) {
    board.fail(vec![FaultRule {
        target: FaultTarget::AnyDetail,
        action: FaultAction::Delay { millis },
        times: None,
    }]);
}

impl Fleet {
    /// Services in the fleet's namespace, for submitting work as the API would.
    pub fn services(&self, db: &PgPool) -> queue_core::Services {
        let env = |key: &str| {
            let found = self.base_env.iter().find(|(k, _)| *k == key);
            found.map(|(_, v)| v.clone()).unwrap_or_default()
        };
        let config = queue_core::CommonConfig {
            database_url: env("DATABASE_URL"),
            redis_url: env("REDIS_URL"),
            redis_prefix: env("REDIS_PREFIX"),
            queue_name: "scraping".to_owned(),
            result_ttl: 600,
            job_timeout: 60,
            max_deliveries: 3,
            reconcile_grace: 3,
            database_max_connections: 2,
            database_idle_in_transaction_timeout: 30,
        };
        let redis = queue_core::create_pool(&config.redis_url, 2).expect("redis pool");
        queue_core::Services::new(db.clone(), redis, &config)
    }
}

/// The second kind's share of the load: `count` nap runs of NAP_MS recorded and queued.
pub async fn submit_naps(fleet: &Fleet, db: &PgPool, count: usize) {
    let services = fleet.services(db);
    for _ in 0..count {
        test_support::nap::submit_nap(&services, NAP_MS, 0).await;
    }
}

/// Runs of the load (scrapes and naps) by status. The fleet also embeds the postings its
/// scrapes store (`embed_batch` runs the scheduler queues); those are not the load counted here.
pub async fn statuses(db: &PgPool) -> HashMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>(
        "SELECT status, count(*) FROM task_runs WHERE kind IN ('scrape', 'nap') GROUP BY status",
    )
    .fetch_all(db)
    .await
    .map(|rows| rows.into_iter().collect())
    .unwrap_or_default()
}

pub async fn terminal_runs(db: &PgPool) -> i64 {
    let by_status = statuses(db).await;
    ["succeeded", "partial", "failed"]
        .iter()
        .map(|s| by_status.get(*s).copied().unwrap_or(0))
        .sum()
}

/// Waits until `want` runs are terminal, checking `every` tick with `tick` (which may kill,
/// restart, assert...). Panics with the fleet's logs after `limit`.
pub async fn until_terminal(
    db: &PgPool,
    fleet: &mut Fleet,
    want: i64,
    limit: Duration,
    mut tick: impl FnMut(&mut Fleet),
) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if terminal_runs(db).await >= want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {want} runs terminal after {limit:?} ({:?}); logs:\n{}",
            terminal_runs(db).await,
            statuses(db).await,
            fleet.logs()
        );
        tick(fleet);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Nothing lost, nothing doubled: `runs` scrape runs, each succeeded with exactly WANTED
/// postings counted once, and one `jobs` row per posting; `naps` nap runs, each succeeded by
/// exactly one attempt.
pub async fn assert_exactly_once(db: &PgPool, runs: i64, naps: i64) {
    assert_once_with_partial(db, runs, naps, 0).await;
}

/// `assert_exactly_once`, where `partial` of the scrape runs ended `partial` instead (pages a
/// network cut failed: recorded on the run, their postings stored from the listing once).
pub async fn assert_once_with_partial(db: &PgPool, runs: i64, naps: i64, partial: i64) {
    let (nap_runs, naps_succeeded): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE status = 'succeeded') FROM task_runs \
         WHERE kind = 'nap'",
    )
    .fetch_one(db)
    .await
    .unwrap();
    assert_eq!(
        (nap_runs, naps_succeeded),
        (naps, naps),
        "every nap ran, once"
    );
    let doubled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT run_id FROM task_run_attempts \
         WHERE status = 'succeeded' GROUP BY run_id HAVING count(*) > 1) twice",
    )
    .fetch_one(db)
    .await
    .unwrap();
    assert_eq!(doubled, 0, "no run succeeded by two attempts");
    let (total, succeeded, partials, found, inserted): (i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE status = 'succeeded'), \
                 count(*) FILTER (WHERE status = 'partial'), \
                 COALESCE(sum(jobs_found), 0), COALESCE(sum(jobs_inserted), 0) FROM scrape_runs",
    )
    .fetch_one(db)
    .await
    .unwrap();
    assert_eq!(total, runs, "one run per site, none lost, none doubled");
    assert_eq!(
        (succeeded, partials),
        (runs - partial, partial),
        "every run succeeded: {:?}",
        statuses(db).await
    );
    let want = runs * i64::from(WANTED);
    assert_eq!(found, want, "each run counted its postings once");
    assert_eq!(inserted, want, "each posting inserted once");
    let (rows, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT (site, external_id)) FROM jobs")
            .fetch_one(db)
            .await
            .unwrap();
    assert_eq!((rows, distinct), (want, want), "no posting row duplicated");
    let linked: i64 = sqlx::query_scalar("SELECT count(*) FROM scrape_run_postings")
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(linked, want, "no posting linked to its run twice");
}

/// The HTTP status of `GET /health` on the API at `port` (None: no answer within 10 s).
pub async fn health_status(port: u16) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        stream
            .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .ok()?;
        let mut head = vec![0; 12];
        stream.read_exact(&mut head).await.ok()?;
        // "HTTP/1.1 200"
        String::from_utf8_lossy(&head[9..12]).parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .ok()
        .flatten()
}

/// Sends SIGTERM to every process, then asserts each exits with status 0 within `limit`.
pub fn stop_cleanly<'a>(procs: impl IntoIterator<Item = &'a mut Proc>, limit: Duration) {
    let mut procs: Vec<&mut Proc> = procs.into_iter().collect();
    for proc in &procs {
        proc.sigterm();
    }
    for proc in &mut procs {
        assert_eq!(
            proc.wait_exit(limit),
            Some(0),
            "{} exits cleanly; log:\n{}",
            proc.name,
            proc.log_tail(20)
        );
    }
}

/// Waits until at least `count` runs are terminal: the load is under way.
pub async fn some_runs_done(db: &PgPool, count: i64) {
    test_support::eventually(Duration::from_secs(30), "some runs to finish", || async {
        (terminal_runs(db).await >= count).then_some(())
    })
    .await;
}

/// A migrated `trawl` database on `postgres` (a server of the test's own), and a pool on it.
pub async fn migrated_database(postgres: &OwnPostgres) -> PgPool {
    let admin = PgPool::connect(&postgres.url("postgres")).await.unwrap();
    sqlx::query("CREATE DATABASE trawl")
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(3))
        .connect(&postgres.url("trawl"))
        .await
        .unwrap();
    queue_core::store::MIGRATOR.run(&db).await.unwrap();
    db
}
