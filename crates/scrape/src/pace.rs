//! Per-domain politeness: at most `per_domain_concurrency` requests in flight to one host from
//! this process (Scrapy's CONCURRENT_REQUESTS_PER_DOMAIN, default 1), and, when a pacer is
//! configured, requests to one host spaced across every worker (a shared clock in Redis).
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Spaces requests to a host across processes.
pub trait DomainPacer: Send + Sync {
    /// Resolves when this process may send its next request to `host`.
    fn wait_turn<'a>(&'a self, host: &'a str) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
}

/// This process's in-flight requests per host.
#[derive(Clone)]
pub struct DomainLimits {
    per_domain: usize,
    hosts: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

impl DomainLimits {
    pub fn new(per_domain: usize) -> Self {
        Self {
            per_domain: per_domain.max(1),
            hosts: Arc::default(),
        }
    }

    pub async fn acquire(&self, host: &str) -> OwnedSemaphorePermit {
        let semaphore = {
            let mut hosts = self.hosts.lock().expect("domain limits lock");
            hosts
                .entry(host.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_domain)))
                .clone()
        };
        semaphore.acquire_owned().await.expect("never closed")
    }
}

impl Default for DomainLimits {
    fn default() -> Self {
        Self::new(1)
    }
}
