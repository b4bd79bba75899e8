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
script!(QUEUE_STATUS, "queue_status.lua");

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Commands that touch no key.
    const KEYLESS: &[&str] = &["TIME"];

    /// Every script names the keys it touches in KEYS only (never a key built from ARGV or
    /// written out), so Redis Cluster routes it by its keys, and callers, which pass the keys of
    /// one queue (one hash tag), keep every script on one slot. Every file is registered.
    #[test]
    fn every_script_touches_only_the_keys_it_is_given() {
        let registry = include_str!("scripts.rs");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("lua");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                registry.contains(&format!("\"{name}\"")),
                "{name} is not registered"
            );
            let text = std::fs::read_to_string(&path).unwrap();
            for (at, _) in text.match_indices("redis.") {
                let call = &text[at..];
                let Some(args) = call
                    .strip_prefix("redis.call(")
                    .or_else(|| call.strip_prefix("redis.pcall("))
                else {
                    continue;
                };
                let mut args = args.splitn(3, [',', ')']);
                let command = args.next().unwrap().trim().trim_matches(['\'', '"']);
                if KEYLESS.contains(&command.to_uppercase().as_str()) {
                    continue;
                }
                let key = args.next().unwrap_or_default().trim();
                assert!(
                    key.starts_with("KEYS["),
                    "{name}: {command} on `{key}`, not on a key from KEYS"
                );
                checked += 1;
            }
        }
        assert!(
            checked > 40,
            "only {checked} calls found: the parser is off"
        );
    }
}
