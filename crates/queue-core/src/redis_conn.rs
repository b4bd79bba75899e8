//! Redis connections, to one server or to a Redis Cluster, behind one type the queue code uses
//! the same way: a pool for ordinary commands, and dedicated connections for blocking pops (a
//! blocking command would stall every other user of a multiplexed connection).
//!
//! `REDIS_URL` names one server (`redis://host:port/db`) or the seed nodes of a cluster
//! (`redis+cluster://host1:port1,host2:port2,…`, user and password as in a `redis://` URL,
//! applied to every node). One variable keeps one place to look; the seed nodes only bootstrap:
//! the client learns the slot map from them and follows MOVED/ASK and failovers itself.
use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::{Config, PoolConfig, Runtime, Timeouts};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, Value};
use tokio::sync::OnceCell;

use crate::QueueError;

/// How long to wait for a pooled connection or a new TCP connection before giving up: long
/// enough for a loaded Redis, short enough that an outage surfaces quickly in /health.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The scheme that makes `REDIS_URL` a list of cluster seed nodes.
pub const CLUSTER_SCHEME: &str = "redis+cluster://";

/// Where Redis is, as `REDIS_URL` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server (`redis://` or `rediss://`), passed to the redis crate as is.
    Server(String),
    /// Seed nodes of a Redis Cluster, each as a `redis://` URL.
    Cluster(Vec<String>),
}

impl RedisTarget {
    pub fn parse(redis_url: &str) -> Result<Self, QueueError> {
        let Some(rest) = redis_url.strip_prefix(CLUSTER_SCHEME) else {
            return Ok(Self::Server(redis_url.to_owned()));
        };
        let (credentials, hosts) = match rest.rsplit_once('@') {
            Some((credentials, hosts)) => (format!("{credentials}@"), hosts),
            None => (String::new(), rest),
        };
        let hosts = hosts.trim_end_matches('/');
        let nodes: Vec<String> = hosts
            .split(',')
            .map(str::trim)
            .filter(|node| !node.is_empty())
            .map(|node| format!("redis://{credentials}{node}"))
            .collect();
        if nodes.is_empty() || hosts.contains(['/', '?']) {
            return Err(QueueError::Config(format!(
                "REDIS_URL: a cluster URL lists seed nodes only, as \
                 {CLUSTER_SCHEME}host1:port1,host2:port2 (got {redis_url})"
            )));
        }
        Ok(Self::Cluster(nodes))
    }

    fn cluster_client(
        nodes: &[String],
        response_timeout: Duration,
    ) -> redis::RedisResult<ClusterClient> {
        ClusterClientBuilder::new(nodes.to_vec())
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(response_timeout)
            // A failover takes the cluster a few seconds; callers already retry what fails, so
            // a command gives up within its timeout instead of the crate's 16 retries.
            .retries(3)
            .min_retry_wait(100)
            .max_retry_wait(1_000)
            .build()
    }
}

/// Connections for ordinary (non-blocking) commands. Cheap to clone.
#[derive(Clone)]
pub enum RedisPool {
    Server(deadpool_redis::Pool),
    /// One multiplexed cluster connection shared by every caller (it holds a connection per
    /// node and pipelines over them, so a pool of them would only multiply sockets), opened on
    /// first use. deadpool-redis's cluster pool cannot set timeouts or retries, hence this.
    Cluster(Arc<LazyCluster>),
}

pub struct LazyCluster {
    client: ClusterClient,
    conn: OnceCell<ClusterConnection>,
}

/// A connection taken from a [`RedisPool`]; every redis-rs command and script runs on it.
pub enum RedisConnection {
    Server(deadpool_redis::Connection),
    Cluster(ClusterConnection),
}

impl RedisPool {
    pub async fn get(&self) -> Result<RedisConnection, QueueError> {
        match self {
            RedisPool::Server(pool) => Ok(RedisConnection::Server(pool.get().await?)),
            RedisPool::Cluster(cluster) => Ok(RedisConnection::Cluster(cluster.get().await?)),
        }
    }
}

impl LazyCluster {
    async fn get(&self) -> Result<ClusterConnection, QueueError> {
        let conn = self
            .conn
            .get_or_try_init(|| async {
                tokio::time::timeout(CONNECT_TIMEOUT, self.client.get_async_connection())
                    .await
                    .map_err(|_| QueueError::ConnectTimeout(CONNECT_TIMEOUT))?
                    .map_err(QueueError::from)
            })
            .await?;
        Ok(conn.clone())
    }
}

/// Builds the connection pool. No connection is opened until first use.
pub fn create_pool(redis_url: &str, max_size: usize) -> Result<RedisPool, QueueError> {
    match RedisTarget::parse(redis_url)? {
        RedisTarget::Server(url) => {
            let mut config = Config::from_url(url);
            let mut pool = PoolConfig::new(max_size);
            pool.timeouts = Timeouts {
                wait: Some(CONNECT_TIMEOUT),
                create: Some(CONNECT_TIMEOUT),
                recycle: Some(CONNECT_TIMEOUT),
            };
            config.pool = Some(pool);
            Ok(RedisPool::Server(
                config
                    .create_pool(Some(Runtime::Tokio1))
                    .map_err(|err| QueueError::Config(format!("REDIS_URL: {err}")))?,
            ))
        }
        RedisTarget::Cluster(nodes) => {
            let client = RedisTarget::cluster_client(&nodes, CONNECT_TIMEOUT)
                .map_err(|err| QueueError::Config(format!("REDIS_URL: {err}")))?;
            Ok(RedisPool::Cluster(Arc::new(LazyCluster {
                client,
                conn: OnceCell::new(),
            })))
        }
    }
}

/// A connection of its own for blocking pops. redis-rs gives async connections a short
/// default response timeout, so this one waits `block_for` plus a margin for the reply.
#[derive(Clone)]
pub enum BlockingConnection {
    Server(MultiplexedConnection),
    Cluster(ClusterConnection),
}

pub async fn blocking_connection(
    redis_url: &str,
    block_for: Duration,
) -> Result<BlockingConnection, QueueError> {
    let response_timeout = block_for + Duration::from_secs(2);
    match RedisTarget::parse(redis_url)? {
        RedisTarget::Server(url) => {
            let client = redis::Client::open(url)?;
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(response_timeout));
            Ok(BlockingConnection::Server(
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?,
            ))
        }
        RedisTarget::Cluster(nodes) => {
            let client = RedisTarget::cluster_client(&nodes, response_timeout)?;
            let conn = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_connection())
                .await
                .map_err(|_| QueueError::ConnectTimeout(CONNECT_TIMEOUT))??;
            Ok(BlockingConnection::Cluster(conn))
        }
    }
}

/// Delegates every call to whichever connection is inside.
macro_rules! connection_like {
    ($type:ident) => {
        impl ConnectionLike for $type {
            fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
                match self {
                    $type::Server(conn) => conn.req_packed_command(cmd),
                    $type::Cluster(conn) => conn.req_packed_command(cmd),
                }
            }

            fn req_packed_commands<'a>(
                &'a mut self,
                pipeline: &'a Pipeline,
                offset: usize,
                count: usize,
            ) -> RedisFuture<'a, Vec<Value>> {
                match self {
                    $type::Server(conn) => conn.req_packed_commands(pipeline, offset, count),
                    $type::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
                }
            }

            fn get_db(&self) -> i64 {
                match self {
                    $type::Server(conn) => conn.get_db(),
                    $type::Cluster(conn) => conn.get_db(),
                }
            }
        }
    };
}

connection_like!(RedisConnection);
connection_like!(BlockingConnection);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_url_lists_its_seed_nodes_with_the_credentials_on_each() {
        assert_eq!(
            RedisTarget::parse("redis+cluster://u:p@10.0.0.1:7000,10.0.0.2:7001/").unwrap(),
            RedisTarget::Cluster(vec![
                "redis://u:p@10.0.0.1:7000".into(),
                "redis://u:p@10.0.0.2:7001".into()
            ])
        );
        assert_eq!(
            RedisTarget::parse("redis://127.0.0.1:6379/2").unwrap(),
            RedisTarget::Server("redis://127.0.0.1:6379/2".into())
        );
        for bad in [
            "redis+cluster://",
            "redis+cluster://a:1,b:2/3",
            "redis+cluster://a:1?x=1",
        ] {
            let err = RedisTarget::parse(bad).unwrap_err().to_string();
            assert!(
                err.contains("REDIS_URL") && err.contains("seed nodes"),
                "{bad}: {err}"
            );
        }
    }
}
