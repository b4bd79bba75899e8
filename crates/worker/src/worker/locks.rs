//! Letting go of a run lock that a copy of an ended run holds.
use queue_core::store;

use super::Worker;
use crate::WorkerError;

impl Worker {
    /// Releases the lock `key` if `run_id` holds it and has ended. A copy of a run can claim
    /// the lock after another copy ran the run and let go of it: its worker was cut off after
    /// it sent the claim, recovery gave the task to another worker, and the claim went through
    /// once the cable was back (the CI failure of the hosts fault test: a site locked by a run
    /// that had ended, its only attempt on the other worker). The copy then finds the run ended
    /// or newer than its attempt, or fails to start it on its broken connections; either way
    /// nothing else would let go of the lock until the key's next run finds it left behind.
    pub(super) async fn release_if_ended(
        &self,
        key: &str,
        run_id: &str,
    ) -> Result<(), WorkerError> {
        let ended = store::get_run(&self.services.db, run_id)
            .await?
            .is_some_and(|run| run.status.is_terminal());
        if ended {
            self.services.locks.release(key, run_id).await?;
        }
        Ok(())
    }
}
