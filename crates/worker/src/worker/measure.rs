//! What the worker counts for Prometheus (names in `telemetry::metric`): attempts started and how
//! they ended, per kind and queue, their durations, dead letters and tasks that stepped aside.
use std::time::Instant;

use metrics::{counter, histogram};
use queue_core::Task;
use telemetry::metric;

use super::Worker;

/// One attempt being measured, from its start.
pub(super) struct Attempt {
    kind: &'static str,
    queue: String,
    started: Instant,
}

impl Attempt {
    pub(super) fn start(kind: &'static str, queue: &str) -> Self {
        counter!(metric::TASKS_STARTED, "kind" => kind, "queue" => queue.to_owned()).increment(1);
        Self {
            kind,
            queue: queue.to_owned(),
            started: Instant::now(),
        }
    }

    /// The run ended with `status` (succeeded, partial, failed).
    pub(super) fn finished(self, status: &'static str) {
        counter!(metric::TASKS_FINISHED, "kind" => self.kind, "queue" => self.queue, "status" => status)
            .increment(1);
        histogram!(metric::RUN_DURATION, "kind" => self.kind, "status" => status)
            .record(self.started.elapsed().as_secs_f64());
    }

    /// The attempt failed transiently and the run waits for its retry.
    pub(super) fn retried(self) {
        counter!(metric::TASKS_RETRIED, "kind" => self.kind, "queue" => self.queue).increment(1);
        histogram!(metric::RUN_DURATION, "kind" => self.kind, "status" => "retried")
            .record(self.started.elapsed().as_secs_f64());
    }
}

/// Why a task stepped aside into the delayed set, uncounted (`trawl_tasks_deferred_total`).
#[derive(Debug, Clone, Copy)]
pub(super) enum Deferred {
    /// Another run holds its run's lock (a scrape's: its site).
    RunLock,
    /// Another session holds its run's row (a worker cut off mid-transaction).
    RowHeld,
    /// A recovered task, and this worker already runs one.
    Recovered,
}

impl Worker {
    /// Counts a dead letter of `raw` from queue `index`, under its kind if this worker runs it.
    pub(super) fn count_dead_letter(&self, index: usize, raw: &[u8]) {
        let kind = self.kind_of(raw);
        let queue = self.served[index].name().to_owned();
        counter!(metric::TASKS_DEAD_LETTERED, "kind" => kind, "queue" => queue).increment(1);
    }

    /// Counts a task of `raw` from queue `index` that stepped aside for `why`.
    pub(super) fn count_deferred(&self, index: usize, raw: &[u8], why: Deferred) {
        let reason = match why {
            Deferred::RunLock => "run_lock",
            Deferred::RowHeld => "row_held",
            Deferred::Recovered => "recovered",
        };
        let (kind, queue) = (self.kind_of(raw), self.served[index].name().to_owned());
        counter!(metric::TASKS_DEFERRED, "kind" => kind, "queue" => queue, "reason" => reason)
            .increment(1);
    }

    /// The kind `raw` names if this worker runs it, else "unknown" (never a name it made up).
    fn kind_of(&self, raw: &[u8]) -> &'static str {
        Task::parse_bytes(raw)
            .ok()
            .as_ref()
            .and_then(|task| {
                let name = task.kind.as_deref();
                self.registry
                    .get(name.unwrap_or(self.registry.default_kind_name()))
            })
            .map_or("unknown", |handler| handler.kind())
    }
}
