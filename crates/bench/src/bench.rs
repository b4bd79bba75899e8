//! The benchmarks by name: the command line and what each runs.
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "trawl-bench",
    about = "trawl's benchmarks; each prints its figures and ratios"
)]
pub(crate) enum Bench {
    /// The API under load: queue status, metrics and postings searches at 50 clients, beside
    /// GET /health (needs the release trawl-api next to this binary).
    Api(crate::api::Options),
    /// Browser pool (reused sessions) vs a fresh session per page, and the plain HTTP path,
    /// against the demo board on loopback.
    Browser(crate::browser::Options),
    /// The reliable queue path (enqueue, BLMOVE into in-flight, ack) against a real Redis.
    Queue(crate::queue::Options),
    /// The batched drain with 1, 2 and 3 queues on a Redis Cluster of 3 masters beside one
    /// server (starts its own redis-server processes on free loopback ports).
    QueueCluster(crate::queue::ClusterOptions),
    /// One consumer process of `queue`'s multi-process drain.
    #[command(hide = true)]
    QueueDrainer(crate::queue::DrainerOptions),
    /// A task's whole lifecycle (ledger row submitted, started, finished) through two worker
    /// processes, beside a plain PostgreSQL UPDATE, the raw queue drain, the ledger's statements
    /// alone and graphile-worker.
    Lifecycle(crate::lifecycle::Options),
    /// The batch pipeline: 50,000 synthetic postings through validate → enrich → vectorize →
    /// export, beside scikit-learn's TfidfVectorizer on the same corpus.
    Pipeline(crate::pipeline::Options),
    /// Embeddings: the queue + database path with an instant embedder over 100,000 postings
    /// beside the database's floor, and all-MiniLM-L6-v2 beside a plain matrix multiply.
    Embed(crate::embed::Options),
    /// The experience rules on the labelled set: exact share, precision, recall, misses.
    Experience(crate::experience::Options),
    /// One worker process of `lifecycle`.
    #[command(hide = true)]
    LifecycleWorker(crate::lifecycle::WorkerOptions),
}

/// Runs the benchmark the command line names.
pub(crate) async fn run(bench: Bench) -> anyhow::Result<()> {
    match bench {
        Bench::Api(options) => crate::api::run(options).await,
        Bench::Browser(options) => crate::browser::run(options).await,
        Bench::Queue(options) => crate::queue::run(options).await,
        Bench::QueueCluster(options) => crate::queue::run_cluster(options).await,
        Bench::QueueDrainer(options) => crate::queue::drainer(options).await,
        Bench::Lifecycle(options) => crate::lifecycle::run(options).await,
        Bench::LifecycleWorker(options) => crate::lifecycle::worker(options).await,
        Bench::Pipeline(options) => crate::pipeline::run(options).await,
        Bench::Embed(options) => crate::embed::run(options).await,
        Bench::Experience(options) => crate::experience::run(options).await,
    }
}
