//! Benchmarks that print figures: `cargo run --release -p trawl-bench -- browser`.
mod api;
mod browser;
mod common;
mod embed;
mod experience;
mod lifecycle;
mod pipeline;
mod queue;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "trawl-bench",
    about = "trawl's benchmarks; each prints its figures and ratios"
)]
enum Bench {
    /// The API under load: queue status, metrics and postings searches at 50 clients, beside
    /// GET /health (needs the release trawl-api next to this binary).
    Api(api::Options),
    /// Browser pool (reused sessions) vs a fresh session per page, and the plain HTTP path,
    /// against the demo board on loopback.
    Browser(browser::Options),
    /// The reliable queue path (enqueue, BLMOVE into in-flight, ack) against a real Redis.
    Queue(queue::Options),
    /// The batched drain with 1, 2 and 3 queues on a Redis Cluster of 3 masters beside one
    /// server (starts its own redis-server processes on free loopback ports).
    QueueCluster(queue::ClusterOptions),
    /// One consumer process of `queue`'s multi-process drain.
    #[command(hide = true)]
    QueueDrainer(queue::DrainerOptions),
    /// A task's whole lifecycle (ledger row submitted, started, finished) through two worker
    /// processes, beside a plain PostgreSQL UPDATE and the raw queue drain.
    Lifecycle(lifecycle::Options),
    /// The batch pipeline: 50,000 synthetic postings through validate → enrich → vectorize →
    /// export, beside scikit-learn's TfidfVectorizer on the same corpus.
    Pipeline(pipeline::Options),
    /// Embeddings: the queue + database path with an instant embedder over 100,000 postings
    /// beside the database's floor, and all-MiniLM-L6-v2 beside a plain matrix multiply.
    Embed(embed::Options),
    /// The experience rules on the labelled set: exact share, precision, recall, misses.
    Experience(experience::Options),
    /// One worker process of `lifecycle`.
    #[command(hide = true)]
    LifecycleWorker(lifecycle::WorkerOptions),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Bench::parse() {
        Bench::Api(options) => api::run(options).await,
        Bench::Browser(options) => browser::run(options).await,
        Bench::Queue(options) => queue::run(options).await,
        Bench::QueueCluster(options) => queue::run_cluster(options).await,
        Bench::QueueDrainer(options) => queue::drainer(options).await,
        Bench::Lifecycle(options) => lifecycle::run(options).await,
        Bench::LifecycleWorker(options) => lifecycle::worker(options).await,
        Bench::Pipeline(options) => pipeline::run(options).await,
        Bench::Embed(options) => embed::run(options).await,
        Bench::Experience(options) => experience::run(options).await,
    }
}
