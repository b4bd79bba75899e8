//! Logging a Redis outage once, not once per failed dequeue.
use std::time::Duration;

use tokio::time::Instant;

/// Dequeue failures closer together than this are one outage. It is longer than the longest
/// backoff between tries, so an outage's own retries never look like a new one. Each queue's
/// consumer has its own connection: one whose connection died with Redis fails once more at its
/// first use, which may come after another queue's dequeue has already succeeded again.
const OUTAGE_QUIET: Duration = Duration::from_secs(20);

/// When the worker's dequeues last failed.
#[derive(Default)]
pub(super) struct Outage {
    last_failure: Option<Instant>,
}

impl Outage {
    /// Records a failure at `now`; true when it starts an outage (the one to log).
    pub(super) fn failed(&mut self, now: Instant) -> bool {
        let starts = self
            .last_failure
            .is_none_or(|last| now - last > OUTAGE_QUIET);
        self.last_failure = Some(now);
        starts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_closer_than_the_quiet_time_are_one_outage() {
        let start = Instant::now();
        let mut outage = Outage::default();
        assert!(outage.failed(start), "the first failure is logged");
        // Backing off up to 10 s between tries, then a second connection failing late.
        for secs in [1, 3, 7, 17, 27, 29] {
            assert!(
                !outage.failed(start + Duration::from_secs(secs)),
                "{secs} s"
            );
        }
        assert!(
            outage
                .failed(start + Duration::from_secs(29) + OUTAGE_QUIET + Duration::from_millis(1)),
            "a failure after a quiet stretch is a new outage"
        );
    }
}
