//! Fault tests with real processes: trawl-worker and trawl-scheduler binaries killed, stopped
//! and cut off from Redis and PostgreSQL under load. Loopback only; each test is bounded in
//! time. They run one at a time (the `faults` group in .config/nextest.toml) because they time
//! recovery and load the machine.
mod careers;
mod cluster;
mod embeddings;
mod fleet;
mod hosts;
mod kills;
mod outages;
mod pipeline;
mod schedulers;
