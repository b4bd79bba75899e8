//! `trawl-test-worker`: the worker process with the tests' `nap` kind registered beside trawl's
//! own, so fault tests can kill real processes running a second kind. Never deployed.
use clap::Parser;
use trawl_worker::WorkerConfig;

#[derive(Parser)]
#[command(name = "trawl-test-worker")]
struct Config {
    #[command(flatten)]
    worker: WorkerConfig,
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "pretty")]
    log_format: telemetry::Format,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(config.log_format);
    trawl_worker::serve(&config.worker, |kinds| {
        kinds.register(test_support::nap::Nap)
    })
    .await
}
