//! Settings every trawl process shares, read from the environment (or flags) by clap, and the
//! connections built from them.
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::RedisPool;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::{Keys, Queue, QueueError, RunLocks};

/// How long a site lock outlives `JOB_TIMEOUT`: the worker needs a moment after the timeout to
/// record the failure and release the lock itself.
pub const LOCK_MARGIN: Duration = Duration::from_secs(60);

#[derive(Clone, clap::Args)]
pub struct CommonConfig {
    /// PostgreSQL connection URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Redis connection URL.
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    pub redis_url: String,
    /// Prefix of every Redis key trawl writes.
    #[arg(long, env = "REDIS_PREFIX", default_value = "trawl:")]
    pub redis_prefix: String,
    /// Name of the task queue.
    #[arg(long, env = "QUEUE_NAME", default_value = "scraping")]
    pub queue_name: String,
    /// Seconds a finished task's summary stays readable in Redis under `result:<task_id>`.
    #[arg(long, env = "RESULT_TTL", default_value_t = 3600)]
    pub result_ttl: u64,
    /// Seconds one run may take before it is stopped and marked failed.
    #[arg(long, env = "JOB_TIMEOUT", default_value_t = 900)]
    pub job_timeout: u64,
    /// A task recovered from crashed workers this many times is dead-lettered as poison.
    #[arg(long, env = "MAX_DELIVERIES", default_value_t = 3)]
    pub max_deliveries: u32,
    /// Seconds a queued or running run may go untouched before the reconciler checks that its
    /// task is still in Redis.
    #[arg(long, env = "RECONCILE_GRACE", default_value_t = 120)]
    pub reconcile_grace: u64,
    /// Largest number of PostgreSQL connections this process opens.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub database_max_connections: u32,
    /// Seconds PostgreSQL lets one of this process's sessions sit in an open transaction
    /// waiting for it before ending the session (rolling the transaction back); 0 = no limit.
    #[arg(
        long,
        env = "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT",
        default_value_t = 30
    )]
    pub database_idle_in_transaction_timeout: u64,
}

/// URLs can carry passwords: never print them.
impl fmt::Debug for CommonConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommonConfig")
            .field("database_url", &"<redacted>")
            .field("redis_url", &"<redacted>")
            .field("redis_prefix", &self.redis_prefix)
            .field("queue_name", &self.queue_name)
            .field("result_ttl", &self.result_ttl)
            .field("job_timeout", &self.job_timeout)
            .finish_non_exhaustive()
    }
}

impl CommonConfig {
    pub fn job_timeout(&self) -> Duration {
        Duration::from_secs(self.job_timeout)
    }

    /// A site lock lives as long as a run may: `JOB_TIMEOUT` plus a margin.
    pub fn lock_ttl(&self) -> Duration {
        self.job_timeout() + LOCK_MARGIN
    }

    pub fn keys(&self) -> Keys {
        Keys::new(&self.redis_prefix, &self.queue_name)
    }

    /// Checks values clap cannot, naming the variable at fault.
    pub fn validate(&self) -> Result<(), String> {
        if !crate::is_queue_name(&self.queue_name) {
            return Err(
                "QUEUE_NAME must be lowercase letters, digits, '_' or '-', a letter first".into(),
            );
        }
        if self.job_timeout == 0 {
            return Err("JOB_TIMEOUT must be at least 1 second".into());
        }
        if self.result_ttl == 0 {
            return Err("RESULT_TTL must be at least 1 second".into());
        }
        at_least("MAX_DELIVERIES", self.max_deliveries, 1)?;
        at_least("DATABASE_MAX_CONNECTIONS", self.database_max_connections, 1)?;
        // PostgreSQL keeps the setting in milliseconds, in a 32-bit integer.
        if self.database_idle_in_transaction_timeout > i32::MAX as u64 / 1000 {
            return Err(format!(
                "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT must be at most {} seconds",
                i32::MAX / 1000
            ));
        }
        Ok(())
    }

    /// Builds the connection pools. Neither opens a connection yet, so a process starts (and
    /// reports the outage) while PostgreSQL or Redis is down.
    pub fn services(&self) -> Result<Services, QueueError> {
        self.validate().map_err(QueueError::Config)?;
        let options = PgConnectOptions::from_str(&self.database_url)
            .map_err(|err| QueueError::Config(format!("DATABASE_URL: {err}")))?
            // A process cut off from the network mid-transaction (a partition, not a crash:
            // no FIN reaches the server) would keep its row locks until it came back, and
            // every worker recovering its runs would wait on them. PostgreSQL ends such a
            // session once it has waited this long; our transactions never wait on us that long.
            .options([(
                "idle_in_transaction_session_timeout",
                format!("{}s", self.database_idle_in_transaction_timeout),
            )]);
        let db = PgPoolOptions::new()
            .max_connections(self.database_max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options);
        let redis = crate::create_pool(&self.redis_url, 16)?;
        Ok(Services::new(db, redis, self))
    }
}

/// `value` when it is at least `min`; else an error naming the variable, for startup to refuse
/// a bad configuration instead of quietly using another value.
pub fn at_least<T: PartialOrd + fmt::Display>(name: &str, value: T, min: T) -> Result<T, String> {
    if value >= min {
        Ok(value)
    } else {
        Err(format!("{name} must be at least {min}, got {value}"))
    }
}

/// The shared handles a process works with.
#[derive(Clone)]
pub struct Services {
    pub db: PgPool,
    pub redis: RedisPool,
    pub redis_url: String,
    /// The home queue: every kind's tasks may have a queue of their own (`queue_named`), but
    /// what the deployment shares (run locks, cancel flags, the scheduler's lease, browser
    /// slots, pacing) lives under this one's hash tag.
    pub queue: Queue,
    pub locks: RunLocks,
    /// `REDIS_PREFIX`, for the keys of other queues.
    pub prefix: String,
    pub result_ttl: Duration,
    pub lock_ttl: Duration,
    pub job_timeout: Duration,
    pub max_deliveries: u32,
    pub reconcile_grace: Duration,
}

impl Services {
    pub fn new(db: PgPool, redis: RedisPool, config: &CommonConfig) -> Self {
        let keys = config.keys();
        Self {
            queue: Queue::new(
                redis.clone(),
                keys.clone(),
                Duration::from_secs(config.result_ttl),
            ),
            locks: RunLocks::new(redis.clone(), keys),
            prefix: config.redis_prefix.clone(),
            result_ttl: Duration::from_secs(config.result_ttl),
            db,
            redis,
            redis_url: config.redis_url.clone(),
            lock_ttl: config.lock_ttl(),
            job_timeout: config.job_timeout(),
            max_deliveries: config.max_deliveries,
            reconcile_grace: Duration::from_secs(config.reconcile_grace),
        }
    }

    pub fn keys(&self) -> &Keys {
        self.queue.keys()
    }

    /// The queue called `name` (each queue keeps its own hash-tagged keys: one Cluster slot).
    pub fn queue_named(&self, name: &str) -> Queue {
        if name == self.queue.keys().queue_name() {
            return self.queue.clone();
        }
        Queue::new(
            self.redis.clone(),
            Keys::new(&self.prefix, name),
            self.result_ttl,
        )
    }

    /// The set of every queue in use (`<prefix>queues`).
    pub fn known_queues_key(&self) -> String {
        crate::keys::known_queues(&self.prefix)
    }

    /// Records that `names` are queues in use (workers serve them, submitters fill them), so
    /// recovery, reconciliation and status reach every queue.
    pub async fn register_queues(&self, names: &[&str]) -> Result<(), QueueError> {
        let mut conn = self.redis.get().await?;
        let _: i64 = redis::cmd("SADD")
            .arg(self.known_queues_key())
            .arg(names)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Every queue in use, the home queue first, the rest by name.
    pub async fn known_queues(&self) -> Result<Vec<Queue>, QueueError> {
        let mut conn = self.redis.get().await?;
        let mut names: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.known_queues_key())
            .query_async(&mut conn)
            .await?;
        names.sort();
        let home = self.queue.keys().queue_name();
        names.retain(|name| name != home);
        let mut queues = vec![self.queue.clone()];
        queues.extend(names.iter().map(|name| self.queue_named(name)));
        Ok(queues)
    }

    /// The figures of every queue in use (`known_queues`), the home queue first.
    pub async fn all_queue_metrics(&self) -> Result<Vec<crate::QueueMetrics>, QueueError> {
        let mut all = Vec::new();
        for queue in self.known_queues().await? {
            all.push(queue.metrics().await?);
        }
        Ok(all)
    }

    /// Browser slots (BROWSER_GLOBAL_SLOTS) held across all workers right now.
    pub async fn browser_slots_held(&self) -> Result<u64, QueueError> {
        crate::slots::held(&self.redis, &self.keys().browser_slots()).await
    }
}
