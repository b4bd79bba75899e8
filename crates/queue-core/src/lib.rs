#![doc = include_str!("../README.md")]
mod ack_batcher;
mod config;
mod error;
pub mod integral;
mod keys;
mod lock;
mod pace;
mod queue;
mod reconcile;
mod redis_conn;
mod schedule;
mod scripts;
mod slots;
pub mod store;
mod submit;
mod task;

pub use ack_batcher::AckBatcher;
pub use config::{CommonConfig, LOCK_MARGIN, Services, at_least};
pub use error::{QueueError, StoreError, error_chain};
pub use keys::{Keys, is_queue_name};
pub use lock::RunLocks;
pub use pace::RedisPacer;
pub use queue::{
    BLAME_WINDOW, Consumer, DEFAULT_DEAD_LETTER_CAP, DeadLetter, GivenBack, Queue, QueueMetrics,
    RawTask, Recovery, Swept, Taken,
};
pub use reconcile::{ReconcileError, Reconciled, reconcile};
pub use redis_conn::{
    BlockingConnection, CLUSTER_SCHEME, CONNECT_TIMEOUT, RedisConnection, RedisPool, RedisTarget,
    blocking_connection, create_pool,
};
pub use schedule::{JITTER, Schedule, ScheduleError};
pub use slots::{SlotGuard, SlotSemaphore};
pub use submit::{
    Cancelled, ORPHAN_LOCK_AGE, Plan, SubmitError, cancel_run, claim_run_lock, enqueue_all_or_fail,
    enqueue_or_fail, fail_run, fail_run_unless_held, new_run, reserve_run, submit_run,
    take_run_lock,
};
pub use task::{
    MAX_TEXT_LEN, Payload, Task, TaskError, Trigger, check_text, new_run_id, new_task_id,
    payload_of,
};
