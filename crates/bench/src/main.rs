//! Benchmarks that print figures: `cargo run --release -p trawl-bench -- browser`.
mod api;
mod bench;
mod browser;
mod common;
mod cpu;
mod embed;
mod embed_model;
mod experience;
mod ledger;
mod lifecycle;
mod peer;
mod pipeline;
mod queue;

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bench::run(bench::Bench::parse()).await
}
