//! Redis connections: a deadpool pool for ordinary commands, and dedicated connections for
//! blocking pops (a blocking command would stall every other user of a multiplexed connection).
use std::time::Duration;

use deadpool_redis::{Config, Pool, PoolConfig, Runtime, Timeouts};
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;

use crate::QueueError;

/// How long to wait for a pooled connection or a new TCP connection before giving up: long
/// enough for a loaded Redis, short enough that an outage surfaces quickly in /health.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Builds the connection pool. No connection is opened until first use.
pub fn create_pool(redis_url: &str, max_size: usize) -> Result<Pool, QueueError> {
    let mut config = Config::from_url(redis_url);
    let mut pool = PoolConfig::new(max_size);
    pool.timeouts = Timeouts {
        wait: Some(CONNECT_TIMEOUT),
        create: Some(CONNECT_TIMEOUT),
        recycle: Some(CONNECT_TIMEOUT),
    };
    config.pool = Some(pool);
    config
        .create_pool(Some(Runtime::Tokio1))
        .map_err(|err| QueueError::Config(format!("REDIS_URL: {err}")))
}

/// Opens a connection of its own for blocking pops. redis-rs gives async connections a short
/// default response timeout, so this one waits `block_for` plus a margin for the reply.
pub async fn blocking_connection(
    redis_url: &str,
    block_for: Duration,
) -> Result<MultiplexedConnection, QueueError> {
    let client = redis::Client::open(redis_url)?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(block_for + Duration::from_secs(2)));
    Ok(client
        .get_multiplexed_async_connection_with_config(&config)
        .await?)
}
