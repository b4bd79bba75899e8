//! `trawl-bench embed`: (a) the queue + database path of embedding — ledger claims, the
//! `embed_batch` kind through a real worker, vectors written to pgvector — with an instant
//! embedder (feature hashing), beside the database's own floor (the same writes as one SQL
//! statement) in the same run; (b) all-MiniLM-L6-v2 on this machine at 128 and 256 tokens,
//! its GFLOP/s beside a plain large matrix multiply measured in the same run.
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use queue_core::{CommonConfig, Services};
use trawl_embedder::HashingEmbedder;
use trawl_embeddings::EmbedBatches;

use crate::common::Servers;

#[derive(Debug, clap::Args)]
pub struct Options {
    #[command(flatten)]
    servers: Servers,
    /// Postings for the queue + database path.
    #[arg(long, default_value_t = 100_000)]
    postings: i64,
    /// Postings claimed and written per batch on that path.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Texts embedded by the model at each length.
    #[arg(long, default_value_t = 64)]
    model_texts: usize,
    /// Texts per model call in (b).
    #[arg(long, default_value_t = 32)]
    model_batch: usize,
    /// In (a), leave out the two measurements with the HNSW index (they take minutes).
    #[arg(long)]
    without_index_only: bool,
    /// Run only (a), the queue + database path, or only (b), the model.
    #[arg(long, value_enum)]
    only: Option<Part>,
    /// The model's folder (deploy/model.sh); default: where that script puts it.
    #[arg(long, env = "EMBEDDINGS_MODEL_DIR")]
    model_dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    Queue,
    Model,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    if options.only != Some(Part::Model) {
        pipeline_path(&options).await?;
    }
    if options.only != Some(Part::Queue) {
        crate::embed_model::run(
            options.model_dir.clone(),
            options.model_texts,
            options.model_batch,
        )?;
    }
    Ok(())
}

async fn services(options: &Options, name: &str) -> anyhow::Result<Services> {
    let url = crate::lifecycle::fresh_database(&options.servers.database_url, name).await?;
    let config = CommonConfig {
        database_url: url,
        redis_url: options.servers.redis_url.clone(),
        redis_prefix: format!("bench-{}:", uuid::Uuid::new_v4().simple()),
        queue_name: "scraping".into(),
        result_ttl: 60,
        job_timeout: 3600,
        max_deliveries: 3,
        reconcile_grace: 600,
        database_max_connections: 8,
        database_idle_in_transaction_timeout: 30,
    };
    let services = config.services()?;
    queue_core::store::MIGRATOR.run(&services.db).await?;
    Ok(services)
}

/// A fresh database named `name` holding `n` synthetic postings, with the HNSW index or
/// without it.
async fn catalogue(options: &Options, name: &str, hnsw: bool) -> anyhow::Result<Services> {
    let name = if hnsw {
        name.to_owned()
    } else {
        format!("{name}_noindex")
    };
    let services = services(options, &name).await?;
    if !hnsw {
        sqlx::query!("DROP INDEX posting_embeddings_hnsw")
            .execute(&services.db)
            .await?;
    }
    sqlx::query!(
        "INSERT INTO jobs (job_id, site, external_id, job_title, company_name, location, \
                           job_description, url, source, content_hash) \
         SELECT gen_random_uuid(), 'bench', n::text, 'Engineer ' || n, 'Company ' || (n % 97), \
                'City ' || (n % 31), 'Build services in Rust and PostgreSQL, posting ' || n, \
                'http://127.0.0.1/', 'bench', 'h' \
         FROM generate_series(1, $1::int8) n",
        options.postings,
    )
    .execute(&services.db)
    .await?;
    Ok(services)
}

/// (a): every posting queued, embedded by a worker's `embed_batch` runs, written.
async fn pipeline_path(options: &Options) -> anyhow::Result<()> {
    let n = options.postings;
    println!(
        "embed (a): {n} postings, feature hashing (instant), batches of {}, 2 cores",
        options.batch
    );
    let mut rows = Vec::new();
    if !options.without_index_only {
        let floor = database_floor(options, true).await?;
        let trawl = through_the_queue(options, true).await?;
        rows.push((
            "database floor: one INSERT … SELECT of the vectors (HNSW)",
            floor,
        ));
        rows.push((
            "trawl: ledger + embed_batch runs + pgvector (HNSW index)",
            trawl,
        ));
        println!(
            "trawl's time / the floor's with the index: {:.2}×",
            trawl / floor
        );
    }
    let floor = database_floor(options, false).await?;
    let trawl = through_the_queue(options, false).await?;
    rows.push(("database floor without the HNSW index", floor));
    rows.push(("trawl: the same without the HNSW index", trawl));
    println!(
        "trawl's time / the floor's without the index: {:.2}×",
        trawl / floor
    );
    println!("{:<62} {:>10} {:>12}", "path", "seconds", "postings/s");
    for (name, seconds) in rows {
        println!("{name:<62} {seconds:>10.2} {:>12.0}", n as f64 / seconds);
    }
    println!("seed 001's loop: 14.7 postings/s");
    Ok(())
}

/// The writes alone, done by PostgreSQL in one statement: the floor any path pays. The vectors
/// are made before the clock starts (computing 384 floats per row in SQL costs more than
/// writing them), as the rows of a model `made` that the HNSW index leaves out (it is rebuilt
/// for the model `floor` only, which is what a one-model table holds), so what is timed is
/// the vector rows written and, with the index, indexed.
async fn database_floor(options: &Options, hnsw: bool) -> anyhow::Result<f64> {
    let services = catalogue(options, "trawl_bench_embed_floor", false).await?;
    sqlx::query!(
        "INSERT INTO embedding_models (model, dimensions, active) \
         VALUES ('floor', 384, true), ('made', 384, false)"
    )
    .execute(&services.db)
    .await?;
    sqlx::query!(
        "INSERT INTO posting_embeddings (job_id, model, embedding, content_hash) \
         SELECT job_id, 'made', (SELECT array_agg(sin(i::float8 * hashtext(job_id::text))) \
                                 FROM generate_series(1, 384) i)::float4[]::vector, 'h' \
         FROM jobs"
    )
    .execute(&services.db)
    .await?;
    if hnsw {
        sqlx::query!(
            "CREATE INDEX posting_embeddings_hnsw ON posting_embeddings \
             USING hnsw (embedding vector_cosine_ops) WHERE model = 'floor'"
        )
        .execute(&services.db)
        .await?;
    }
    sqlx::query!("CHECKPOINT").execute(&services.db).await?;
    let started = Instant::now();
    sqlx::query!(
        "INSERT INTO posting_embeddings (job_id, model, embedding, content_hash) \
         SELECT job_id, 'floor', embedding, 'h' FROM posting_embeddings WHERE model = 'made'"
    )
    .execute(&services.db)
    .await?;
    Ok(started.elapsed().as_secs_f64())
}

async fn through_the_queue(options: &Options, hnsw: bool) -> anyhow::Result<f64> {
    let services = catalogue(options, "trawl_bench_embed", hnsw).await?;
    let handler = EmbedBatches::new(
        services.db.clone(),
        Arc::new(HashingEmbedder {
            batch_size: options.batch,
        }),
    );
    // Both paths start from a checkpoint, so both pay the same full-page writes.
    sqlx::query!("CHECKPOINT").execute(&services.db).await?;
    // Registering the model queues every posting for it (one INSERT … SELECT), timed too.
    let started = Instant::now();
    // The database's clock at the start: the end is the last vector's `embedded_at`, so how
    // often this loop looks does not change the figure.
    let started_at = sqlx::query_scalar!(r#"SELECT clock_timestamp() AS "now!""#)
        .fetch_one(&services.db)
        .await?;
    handler.register().await?;
    let mut settings = trawl_worker::WorkerSettings::new(format!("bench-embed-{hnsw}"));
    settings.queues =
        trawl_worker::QueueShare::parse_list("embeddings").map_err(anyhow::Error::msg)?;
    settings.concurrency = 2;
    let registry = trawl_tasks::Registry::new().register(handler);
    let worker = trawl_worker::Worker::with_registry(
        services.clone(),
        settings,
        registry,
        Default::default(),
    )
    .map_err(anyhow::Error::msg)?;
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(worker.run(stop.clone()));
    // The path of a new model: registering it queued every posting; scheduler passes (their
    // sweep) start `embed_batch` runs and top them up while postings wait. A pass reads the
    // whole ledger, so this one runs four times a second, not fifty.
    loop {
        let swept = trawl_embeddings::sweep(&services).await?;
        if swept.due == 0 {
            let waiting = sqlx::query_scalar!(
                "SELECT count(*) AS \"n!\" FROM embedding_queue WHERE status <> 'completed'"
            )
            .fetch_one(&services.db)
            .await?;
            if waiting == 0 {
                break;
            }
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("{} postings still due after 30 minutes", swept.due);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let last = sqlx::query_scalar!(r#"SELECT max(embedded_at) AS "last!" FROM posting_embeddings"#)
        .fetch_one(&services.db)
        .await?;
    let seconds = (last - started_at).as_seconds_f64();
    stop.cancel();
    running.await?;
    let written =
        sqlx::query_scalar!("SELECT count(*) AS \"n!\" FROM posting_embeddings WHERE writes = 1")
            .fetch_one(&services.db)
            .await?;
    if written != options.postings {
        bail!(
            "{written} vectors written once, expected {}",
            options.postings
        );
    }
    Ok(seconds)
}
