//! The scraping library's shared limits, kept in Redis by queue-core: the per-host pace and the
//! browser slots across every worker. Adapters only: queue-core knows nothing of scraping.
use std::future::Future;
use std::pin::Pin;

use queue_core::{RedisPacer, SlotSemaphore};
use trawl_scrape::{BrowserSlots, DomainPacer, SlotLease};

/// `RedisPacer` as the scraper's `DomainPacer`.
pub struct RedisDomainPacer(pub RedisPacer);

impl DomainPacer for RedisDomainPacer {
    fn wait_turn<'a>(&'a self, host: &'a str) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(self.0.wait_turn(host))
    }
}

/// `SlotSemaphore` as the browser pool's `BrowserSlots`.
pub struct RedisBrowserSlots(pub SlotSemaphore);

impl BrowserSlots for RedisBrowserSlots {
    fn acquire(&self) -> Pin<Box<dyn Future<Output = Result<SlotLease, String>> + Send + '_>> {
        let slots = self.0.clone();
        Box::pin(async move {
            let guard = slots.acquire_lease().await?;
            Ok(SlotLease::new(move || drop(guard)))
        })
    }
}
