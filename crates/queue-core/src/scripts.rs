//! The Lua scripts, one per state transition, loaded once and called by SHA (redis-rs falls back
//! to EVAL on NOSCRIPT, e.g. after a Redis restart).
use std::sync::LazyLock;

use redis::Script;

macro_rules! script {
    ($name:ident, $file:literal) => {
        pub(crate) static $name: LazyLock<Script> =
            LazyLock::new(|| Script::new(include_str!(concat!("../lua/", $file))));
    };
}

script!(DEAD_LETTER, "dead_letter.lua");
script!(REQUEUE, "requeue.lua");
script!(HEARTBEAT, "heartbeat.lua");
script!(WORKERS_ALIVE, "workers_alive.lua");
script!(LOCK_CLAIM, "lock_claim.lua");
script!(LOCK_RENEW, "lock_renew.lua");
script!(LOCK_RELEASE, "lock_release.lua");
script!(ADOPT, "adopt.lua");
script!(SLOT_ACQUIRE, "slot_acquire.lua");
script!(SLOT_RENEW, "slot_renew.lua");
script!(PACE, "pace.lua");
script!(EXPIRED_WORKERS, "expired_workers.lua");
script!(RECOVER, "recover.lua");
script!(DEAD_TAKE, "dead_take.lua");
script!(SNAPSHOT, "snapshot.lua");
script!(RETRY_LATER, "retry_later.lua");
script!(PROMOTE, "promote.lua");
script!(DEPTH_SAMPLE, "depth_sample.lua");
script!(TAKE_BATCH, "take_batch.lua");
script!(ACK, "ack.lua");
script!(HOLD_IF_PAUSED, "hold_if_paused.lua");
script!(GIVE_BACK, "give_back.lua");
