//! Dashboard login sessions: a session id (the cookie) names its CSRF token, with a TTL. Kept
//! under the home queue's hash tag like every other shared key.
use std::time::Duration;

use super::Queue;
use crate::QueueError;

impl Queue {
    /// Records session `id` with its CSRF token for `ttl`.
    pub async fn store_session(
        &self,
        id: &str,
        csrf: &str,
        ttl: Duration,
    ) -> Result<(), QueueError> {
        let mut conn = self.pool.get().await?;
        let _: () = redis::cmd("SET")
            .arg(self.keys.ui_session(id))
            .arg(csrf)
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// The CSRF token of session `id`, if it exists and has not expired.
    pub async fn session_csrf(&self, id: &str) -> Result<Option<String>, QueueError> {
        let mut conn = self.pool.get().await?;
        Ok(redis::cmd("GET")
            .arg(self.keys.ui_session(id))
            .query_async(&mut conn)
            .await?)
    }

    pub async fn drop_session(&self, id: &str) -> Result<(), QueueError> {
        let mut conn = self.pool.get().await?;
        let _: () = redis::cmd("DEL")
            .arg(self.keys.ui_session(id))
            .query_async(&mut conn)
            .await?;
        Ok(())
    }
}
