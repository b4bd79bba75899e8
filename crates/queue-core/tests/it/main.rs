mod ledger;
mod lock;
mod partition;
mod queue;
mod recovery;

/// A task of a kind queue-core knows nothing about, as every queue test uses.
pub fn test_task(run_id: String, trigger: queue_core::Trigger) -> queue_core::Task {
    let payload = serde_json::json!({"name": "demo"});
    let payload = payload.as_object().cloned().unwrap_or_default();
    queue_core::Task::new("test", payload, run_id, trigger)
}
