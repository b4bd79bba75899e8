//! Figures that cost a pass over a table, taken at most once per `FRESH_FOR` per API process:
//! the queue status's runs per status (the whole ledger) and the embeddings coverage `/metrics`
//! reports (every active posting). Dashboards, load balancers and scrapers poll them many times
//! a second; one reading serves every request of that second, and requests that arrive while it
//! is being taken wait for it instead of starting their own.
use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

/// How long a reading is answered before it is taken again.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

pub struct Fresh<T> {
    last: Mutex<Option<(Instant, T)>>,
}

impl<T> Default for Fresh<T> {
    fn default() -> Self {
        Self {
            last: Mutex::new(None),
        }
    }
}

impl<T: Clone> Fresh<T> {
    /// The last reading if it is younger than `FRESH_FOR`, else a new one from `take`.
    pub async fn get<E, F, Fut>(&self, take: F) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        // Held across `take` on purpose: concurrent callers share the reading being taken.
        let mut last = self.last.lock().await;
        if let Some((taken, value)) = last.as_ref()
            && taken.elapsed() < FRESH_FOR
        {
            return Ok(value.clone());
        }
        let value = take().await?;
        *last = Some((Instant::now(), value.clone()));
        Ok(value)
    }
}
