//! The batch pipeline on synthetic postings: validate → enrich → vectorize → export through
//! the real stage tasks (an in-process worker, PostgreSQL, Redis), per-stage time and
//! postings/s, beside scikit-learn's `TfidfVectorizer.fit_transform` on the same corpus and
//! trawl's own fit alone, in the same run.
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use queue_core::{CommonConfig, Trigger};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use trawl_pipeline::tfidf::{Model, Settings, preprocess};
use trawl_pipeline::{Stage, store};
use trawl_scrape::RawPosting;
use trawl_scrape::intake::Collected;

#[derive(Debug, clap::Args)]
pub struct Options {
    #[command(flatten)]
    servers: crate::common::Servers,
    /// Synthetic postings in the batch.
    #[arg(long, default_value_t = 50_000)]
    postings: usize,
    /// A Python with scikit-learn (`deploy/dev.sh test` installs one).
    #[arg(long, env = "TRAWL_SKLEARN_PYTHON")]
    python: Option<String>,
}

const LEVELS: &[&str] = &["Senior", "Junior", "Lead", "Staff", "Principal", "Graduate"];
const FIELDS: &[&str] = &[
    "Data",
    "Backend",
    "Frontend",
    "Machine Learning",
    "Platform",
    "Security",
    "Mobile",
    "Cloud",
];
const ROLES: &[&str] = &["Engineer", "Developer", "Scientist", "Analyst", "Architect"];
const PLACES: &[&str] = &[
    "Paris 15e",
    "PARIS",
    "75008 Paris",
    "Lyon 3ème",
    "Marseille",
    "Berlin",
    "London",
    "Télétravail",
    "",
    "Remote - EU",
];
const SKILLS: &[&str] = &[
    "Python",
    "Rust",
    "Go",
    "SQL",
    "PostgreSQL",
    "Postgres",
    "Kafka",
    "Spark",
    "AWS",
    "Docker",
    "Kubernetes",
    "React",
    "Node.js",
    "C++",
    "Airflow",
];

/// A vocabulary of made-up words, drawn with a Zipf-like skew as real text is.
fn vocabulary(rng: &mut StdRng) -> Vec<String> {
    let syllables = [
        "ka", "to", "ri", "men", "sul", "dra", "vo", "pel", "qui", "nor", "tas", "lem", "bri",
        "co", "fé",
    ];
    (0..6_000)
        .map(|_| {
            (0..rng.random_range(2..4))
                .map(|_| syllables[rng.random_range(0..syllables.len())])
                .collect()
        })
        .collect()
}

fn synthetic(n: usize) -> Vec<Collected> {
    let mut rng = StdRng::seed_from_u64(2026);
    let words = vocabulary(&mut rng);
    let zipf = |rng: &mut StdRng| {
        let u: f64 = rng.random_range(0.0..1.0);
        ((words.len() as f64).powf(u) as usize).min(words.len() - 1)
    };
    (0..n)
        .map(|i| {
            let title = match i % 50 {
                0 => String::new(), // refused: missing title
                1 => "Dev".into(),  // refused: too short
                _ => format!(
                    "{} {} {}",
                    LEVELS[i % LEVELS.len()],
                    FIELDS[(i / 7) % FIELDS.len()],
                    ROLES[(i / 3) % ROLES.len()]
                ),
            };
            let mut body: Vec<&str> = (0..rng.random_range(80..200))
                .map(|_| words[zipf(&mut rng)].as_str())
                .collect();
            body.insert(
                rng.random_range(0..body.len()),
                SKILLS[rng.random_range(0..SKILLS.len())],
            );
            body.insert(
                rng.random_range(0..body.len()),
                SKILLS[rng.random_range(0..SKILLS.len())],
            );
            let description = format!(
                "<p>{}</p><p>Apply: https://jobs.example/{i} or jobs{i}@example.com</p>",
                body.join(" ")
            );
            let salary = (i % 3 == 0).then(|| format!("{}k - {}k EUR", 40 + i % 40, 60 + i % 50));
            Collected {
                site: "synthetic".into(),
                source: "definition".into(),
                search_query: Some("data engineer".into()),
                posting: RawPosting {
                    external_id: Some(i.to_string()),
                    title: Some(title),
                    company: Some(format!("Company {}", i % 900)),
                    location: Some(PLACES[i % PLACES.len()].into()),
                    posted_date: Some(if i % 97 == 0 {
                        "last week".into()
                    } else {
                        format!("2026-11-{:02}", 1 + i % 28)
                    }),
                    description_html: Some(description),
                    salary_text: salary,
                    url: Some(if i % 53 == 0 {
                        "not a url".into()
                    } else {
                        format!("https://jobs.example/{i}")
                    }),
                    ..Default::default()
                },
                details_missing: false,
            }
        })
        .collect()
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let url =
        crate::lifecycle::fresh_database(&options.servers.database_url, "trawl_bench_pipeline")
            .await?;
    let prefix = format!("bench-{}:", uuid::Uuid::new_v4().simple());
    let config = CommonConfig {
        database_url: url.clone(),
        redis_url: options.servers.redis_url.clone(),
        redis_prefix: prefix,
        queue_name: "scraping".into(),
        result_ttl: 60,
        job_timeout: 600,
        max_deliveries: 3,
        reconcile_grace: 600,
        database_max_connections: 8,
        database_idle_in_transaction_timeout: 30,
    };
    let services = config.services()?;
    queue_core::store::MIGRATOR.run(&services.db).await?;
    let records = synthetic(options.postings);
    println!(
        "pipeline: {} synthetic postings (2% without a usable title, 2% with a bad URL), 2 cores",
        records.len()
    );

    // The batch's collect output, written as the collect stage would.
    let definition =
        trawl_pipeline::PipelineDefinition::from_json(json!({"sources": [{"site": "synthetic"}]}))?;
    let pipeline = store::upsert_pipeline(&services.db, "bench", &definition).await?;
    let batch_id = uuid::Uuid::new_v4();
    store::create_batch(&services.db, batch_id, &pipeline, Trigger::Manual).await?;
    store::begin_stage(&services.db, batch_id, Stage::Collect, "bench-collect", 1).await?;
    let values = trawl_pipeline::records::encode_all(&records);
    let mut tx = services.db.begin().await?;
    store::write_records(&mut tx, batch_id, Stage::Collect, &values).await?;
    let next = queue_core::new_run_id(Trigger::Manual);
    store::mark_succeeded(
        &mut tx,
        batch_id,
        Stage::Collect,
        &Default::default(),
        &json!({}),
        Some(&next),
    )
    .await?;
    tx.commit().await?;

    let mut settings = trawl_worker::WorkerSettings::new("bench-pipeline".into());
    settings.queues =
        trawl_worker::QueueShare::parse_list("pipeline").map_err(anyhow::Error::msg)?;
    settings.concurrency = 1;
    let worker = trawl_worker::Worker::new(services.clone(), settings, None, Default::default())
        .map_err(anyhow::Error::msg)?;
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(worker.run(stop.clone()));
    let started = Instant::now();
    trawl_pipeline::submit_stage(&services, batch_id, Stage::Validate, &next, 1).await?;
    let batch = loop {
        let batch = store::get_batch(&services.db, batch_id)
            .await?
            .context("the batch")?;
        if batch.status != "running" {
            break batch;
        }
        if started.elapsed() > Duration::from_secs(900) {
            bail!("the batch did not end in 15 minutes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let wall = started.elapsed();
    stop.cancel();
    running.await?;
    let runs = store::batch_runs(&services.db, batch_id).await?;
    if batch.status != "success" {
        bail!("the batch ended {}: {runs:#?}", batch.status);
    }
    println!(
        "{:<10} {:>9} {:>9} {:>12}",
        "stage", "seconds", "postings", "postings/s"
    );
    let mut vectorize_seconds = 0.0;
    for run in runs.iter().filter(|r| r.stage != "collect") {
        let seconds = run.execution_time_seconds.unwrap_or_default();
        let postings = [
            run.jobs_validated,
            run.jobs_enriched,
            run.jobs_vectorized,
            run.jobs_inserted,
        ]
        .into_iter()
        .flatten()
        .next()
        .unwrap_or_default();
        if run.stage == "vectorize" {
            vectorize_seconds = seconds;
        }
        println!(
            "{:<10} {seconds:>9.2} {postings:>9} {:>12.0}",
            run.stage,
            f64::from(postings) / seconds.max(1e-9)
        );
    }
    println!(
        "whole batch (validate → export, queue hops included): {:.2} s (goal < 30 s)",
        wall.as_secs_f64()
    );

    // The vectorize stage's corpus, fitted by trawl alone and by scikit-learn.
    let texts: Vec<String> = sqlx::query_as::<_, (String, Option<String>)>(
        "SELECT job_title, job_description FROM jobs ORDER BY job_id",
    )
    .fetch_all(&services.db)
    .await?
    .into_iter()
    .map(|(title, description)| {
        trawl_pipeline::transform::posting_text(&title, description.as_deref())
    })
    .collect();
    let fit_started = Instant::now();
    let (model, _) = Model::fit(&texts, Settings::default());
    let fit = fit_started.elapsed().as_secs_f64();
    println!(
        "trawl Model::fit alone: {fit:.2} s ({} documents, {} features)",
        texts.len(),
        model.terms.len()
    );
    match sklearn_seconds(options.python.as_deref(), &texts)? {
        Some(sklearn) => {
            println!(
                "scikit-learn TfidfVectorizer.fit_transform, same corpus and settings: {sklearn:.2} s"
            );
            println!(
                "ratio: vectorize stage (fit + storing the model and {} vectors) {:.1}× faster than scikit-learn's fit_transform; fit alone {:.1}× (goal ≥ 3×)",
                texts.len(),
                sklearn / vectorize_seconds.max(1e-9),
                sklearn / fit.max(1e-9)
            );
        }
        None => println!(
            "scikit-learn: not measured (set TRAWL_SKLEARN_PYTHON to a Python with scikit-learn)"
        ),
    }
    crate::lifecycle::drop_named(&options.servers.database_url, "trawl_bench_pipeline").await?;
    Ok(())
}

/// scikit-learn's fit_transform time on the corpus (the preprocessing trawl applies first —
/// URLs and e-mails removed — is done here, outside the timing, as it is outside trawl's).
fn sklearn_seconds(python: Option<&str>, texts: &[String]) -> anyhow::Result<Option<f64>> {
    let Some(python) = python else {
        return Ok(None);
    };
    let script = r#"
import json, sys, time
from sklearn.feature_extraction.text import TfidfVectorizer
given = json.load(sys.stdin)
v = TfidfVectorizer(lowercase=True, strip_accents="unicode", ngram_range=(1, 2), max_features=10000,
                    min_df=2, max_df=0.8, stop_words=given["stop_words"])
start = time.perf_counter()
v.fit_transform(given["documents"])
print(time.perf_counter() - start)
"#;
    let input = json!({
        "documents": texts.iter().map(|t| preprocess(t)).collect::<Vec<_>>(),
        "stop_words": trawl_pipeline::tfidf::stop_words(),
    });
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {python}"))?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(input.to_string().as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!("scikit-learn failed");
    }
    Ok(Some(String::from_utf8(output.stdout)?.trim().parse()?))
}
