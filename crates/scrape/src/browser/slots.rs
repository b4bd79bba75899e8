//! A cap on browsers across every worker on every machine. The implementation lives with the
//! Redis code (`queue_core::BrowserSlotSemaphore`); the pool only needs this interface.
use std::future::Future;
use std::pin::Pin;

/// Grants leases on a limited number of browser slots.
pub trait BrowserSlots: Send + Sync {
    /// Waits for a free slot. The error says why none could be had.
    fn acquire(&self) -> Pin<Box<dyn Future<Output = Result<SlotLease, String>> + Send + '_>>;
}

/// A held slot; dropping it gives the slot back.
pub struct SlotLease {
    release: Option<Box<dyn FnOnce() + Send>>,
}

impl SlotLease {
    pub fn new(release: impl FnOnce() + Send + 'static) -> Self {
        Self {
            release: Some(Box::new(release)),
        }
    }
}

impl Drop for SlotLease {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            release();
        }
    }
}
