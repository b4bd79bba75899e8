//! The API under load: requests/s and latency percentiles at N concurrent keep-alive clients for
//! queue status, metrics and postings searches over a table of 100,000 postings, beside
//! `GET /health` (one Redis PING and one `SELECT 1`) as the baseline of the same run. Two workers
//! are registered (live, idle) so the queue status reads their in-flight lists. The API is
//! the release `trawl-api` binary, started next to this one, on loopback.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use queue_core::CommonConfig;

#[derive(Debug, clap::Args)]
pub struct Options {
    #[command(flatten)]
    servers: crate::common::Servers,
    /// Postings in the searched table.
    #[arg(long, default_value_t = 100_000)]
    postings: i32,
    /// Concurrent clients.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Seconds of load per endpoint.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
}

const DATABASE: &str = "trawl_bench_api";

pub async fn run(options: Options) -> anyhow::Result<()> {
    let url = crate::lifecycle::fresh_database(&options.servers.database_url, DATABASE).await?;
    let prefix = format!("bench-api-{}:", uuid::Uuid::new_v4().simple());
    let services = CommonConfig {
        database_url: url.clone(),
        redis_url: options.servers.redis_url.clone(),
        redis_prefix: prefix.clone(),
        queue_name: "scraping".to_owned(),
        result_ttl: 60,
        job_timeout: 60,
        max_deliveries: 3,
        reconcile_grace: 120,
        database_max_connections: 4,
        database_idle_in_transaction_timeout: 30,
    }
    .services()?;
    queue_core::store::MIGRATOR.run(&services.db).await?;
    // Titles from a small vocabulary, so a word search matches a sixth of the table.
    sqlx::query!(
        r#"INSERT INTO jobs (job_id, site, external_id, job_title, company_name, location,
               skills_required, job_description, url, source, content_hash, first_seen_at)
           SELECT gen_random_uuid(), 'bench', 'e' || g,
               (ARRAY['Senior','Junior','Lead','Staff'])[g % 4 + 1] || ' ' ||
               (ARRAY['Rust Engineer','Python Developer','Data Analyst','Nurse','Chef',
                      'Designer'])[g % 6 + 1],
               'Company ' || (g % 500), (ARRAY['Berlin','Paris','Lisbon','Remote'])[g % 4 + 1],
               'skill' || (g % 50), 'A posting for the API bench, number ' || g,
               'http://127.0.0.1:9/jobs/' || g, 'bench', 'h',
               now() - make_interval(secs => g)
           FROM generate_series(1, $1::int) AS g"#,
        options.postings,
    )
    .execute(&services.db)
    .await?;
    sqlx::query!("ANALYZE jobs").execute(&services.db).await?;
    for n in 0..20 {
        services
            .queue
            .enqueue_raw(&format!(r#"{{"site_name":"site-{n}"}}"#))
            .await?;
    }
    // Two live workers, so the queue status counts in-flight lists as it does in production.
    for worker in ["bench-worker-1", "bench-worker-2"] {
        services
            .queue
            .heartbeat(worker, Duration::from_secs(3600))
            .await?;
    }

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let api_binary = std::env::current_exe()?
        .parent()
        .context("the bench binary has a folder")?
        .join("trawl-api");
    let mut api = tokio::process::Command::new(&api_binary)
        .env("DATABASE_URL", &url)
        .env("REDIS_URL", &options.servers.redis_url)
        .env("REDIS_PREFIX", &prefix)
        .env("API_BIND", format!("127.0.0.1:{port}"))
        .env("API_KEYS", "bench-key")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .with_context(|| {
            format!(
                "cannot start {} (build it: -p trawl-api)",
                api_binary.display()
            )
        })?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let ready = Instant::now() + Duration::from_secs(20);
    while client.get(format!("{base}/health")).send().await.is_err() {
        anyhow::ensure!(Instant::now() < ready, "the API did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    println!(
        "{} clients, {} s per endpoint, {} postings, release trawl-api on loopback",
        options.clients, options.seconds, options.postings
    );
    let mut baseline = None;
    for path in [
        "/health",
        "/jobs/queue/status",
        "/metrics",
        "/jobs/postings?q=rust&limit=20",
        "/jobs/postings?q=rust%20engineer&location=berlin&limit=20",
        "/jobs/postings?company=company%2042&limit=20",
    ] {
        let load = load(addr, path, &options).await?;
        let rate = load.requests as f64 / load.elapsed.as_secs_f64();
        let base_rate = *baseline.get_or_insert(rate);
        println!(
            "{path:<58} {rate:>8.0} req/s ({:.2} of /health)  p50 {:>6.2} ms  p99 {:>6.2} ms  errors {}",
            rate / base_rate,
            load.percentile(0.50),
            load.percentile(0.99),
            load.errors
        );
    }
    api.kill().await.ok();
    services.db.close().await;
    crate::lifecycle::drop_named(&options.servers.database_url, DATABASE).await
}

struct Load {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Load {
    /// The latency below which `share` of the requests finished, in ms.
    fn percentile(&self, share: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let index = ((self.latencies.len() - 1) as f64 * share).round() as usize;
        self.latencies[index].as_secs_f64() * 1000.0
    }
}

/// `options.clients` keep-alive clients asking for `path` back to back for `options.seconds`,
/// each on one bare HTTP/1.1 connection of its own (no pool, no redirects, no URL parsing per
/// request: the clients share the API's two cores, and whatever they spend the API cannot).
async fn load(addr: SocketAddr, path: &str, options: &Options) -> anyhow::Result<Load> {
    let started = Instant::now();
    let until = started + Duration::from_secs(options.seconds);
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..options.clients {
        let path = path.to_owned();
        clients.spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            let connection = tokio::spawn(connection);
            let (mut latencies, mut errors) = (Vec::new(), 0usize);
            while Instant::now() < until {
                let asked = Instant::now();
                let request = hyper::Request::get(path.as_str())
                    .header(hyper::header::HOST, addr.to_string())
                    .body(Empty::<Bytes>::new())?;
                let ok = match sender.send_request(request).await {
                    Ok(response) => {
                        let ok = response.status().is_success();
                        ok && response.into_body().collect().await.is_ok()
                    }
                    Err(_) => false,
                };
                latencies.push(asked.elapsed());
                errors += usize::from(!ok);
                if !ok && sender.ready().await.is_err() {
                    anyhow::bail!("the API closed a connection");
                }
            }
            drop(sender);
            connection.await??;
            anyhow::Ok((latencies, errors))
        });
    }
    let mut load = Load {
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    while let Some(done) = clients.join_next().await {
        let (latencies, errors) = done??;
        load.requests += latencies.len();
        load.errors += errors;
        load.latencies.extend(latencies);
    }
    load.elapsed = started.elapsed();
    load.latencies.sort();
    Ok(load)
}
