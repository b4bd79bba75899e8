//! Search quality, measured: 24 labelled queries over the demo board's 240 postings (12 kinds
//! of job, 20 postings each, at four levels), recall@5 of full text, TF-IDF, semantic
//! (all-MiniLM-L6-v2) and hybrid search, printed; hybrid must be at least as good as the best
//! single mode. recall@5 = relevant postings among the first five / min(5, relevant ones).
use std::collections::HashMap;
use std::sync::Arc;

use sqlx::PgPool;
use trawl_embedder::{Embedder, MiniLm, PostingText, posting_text};
use trawl_embeddings::search;
use trawl_pipeline::tfidf::{Model, Settings};
use uuid::Uuid;

use crate::helpers::World;

/// Query → the kinds of job (the demo titles without their level) that should come first.
const LABELLED: &[(&str, &[&str])] = &[
    ("rust programmer", &["Rust Engineer"]),
    (
        "systems programming in rust with postgres",
        &["Rust Engineer"],
    ),
    ("build ETL pipelines with airflow", &["Data Engineer"]),
    ("spark big data processing", &["Data Engineer"]),
    ("REST API development in golang", &["Backend Developer"]),
    (
        "react user interface developer",
        &["Frontend Developer", "Full Stack Developer"],
    ),
    (
        "typescript web UI and design system",
        &["Frontend Developer"],
    ),
    (
        "deep learning model training",
        &["Machine Learning Engineer"],
    ),
    ("AI engineer", &["Machine Learning Engineer"]),
    ("infrastructure as code on azure", &["DevOps Engineer"]),
    (
        "cloud infrastructure automation with terraform",
        &["DevOps Engineer", "Platform Engineer"],
    ),
    ("business intelligence dashboards", &["Data Analyst"]),
    ("excel reporting analyst", &["Data Analyst"]),
    ("kotlin microservices with kafka", &["Java Developer"]),
    ("JVM backend engineer", &["Java Developer"]),
    (
        "on-call reliability and uptime",
        &["Site Reliability Engineer"],
    ),
    (
        "keeping production systems healthy",
        &["Site Reliability Engineer"],
    ),
    ("end to end javascript web apps", &["Full Stack Developer"]),
    ("node.js and react developer", &["Full Stack Developer"]),
    ("internal developer platform", &["Platform Engineer"]),
    ("django web developer", &["Python Developer"]),
    ("python backend services with redis", &["Python Developer"]),
    ("statistician", &["Data Analyst"]),
    (
        "kubernetes operator",
        &[
            "DevOps Engineer",
            "Platform Engineer",
            "Site Reliability Engineer",
        ],
    ),
];

/// The catalogue in `jobs`: id → its kind of job.
async fn load_catalogue(db: &PgPool) -> HashMap<Uuid, String> {
    let mut kinds = HashMap::new();
    for id in 1..=demo_board::catalog::POSTING_COUNT {
        let posting = demo_board::catalog::posting(id).unwrap();
        let job_id = Uuid::new_v5(&Uuid::NAMESPACE_OID, id.to_string().as_bytes());
        sqlx::query(
            "INSERT INTO jobs (job_id, site, external_id, job_title, company_name, location, \
                               job_description, url, source, content_hash) \
             VALUES ($1, 'demo', $2, $3, $4, $5, $6, 'http://127.0.0.1/', 'demo_board', 'h')",
        )
        .bind(job_id)
        .bind(id.to_string())
        .bind(&posting.title)
        .bind(posting.company)
        .bind(posting.location)
        .bind(demo_board::text_of(&posting.description))
        .execute(db)
        .await
        .unwrap();
        let kind = ["Senior ", "Junior ", "Lead "]
            .iter()
            .fold(posting.title.clone(), |t, level| {
                t.trim_start_matches(level).to_owned()
            });
        kinds.insert(job_id, kind);
    }
    kinds
}

fn recall_at_5(ranked: &[Uuid], relevant: &[&str], kinds: &HashMap<Uuid, String>) -> f64 {
    let total = kinds
        .values()
        .filter(|k| relevant.contains(&k.as_str()))
        .count();
    let hits = ranked
        .iter()
        .take(5)
        .filter(|id| relevant.contains(&kinds[id].as_str()))
        .count();
    hits as f64 / total.min(5) as f64
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn hybrid_search_recalls_at_least_as_well_as_the_best_single_mode(db: PgPool) {
    let kinds = load_catalogue(&db).await;
    let dir = std::env::var_os("EMBEDDINGS_MODEL_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(trawl_embedder::default_model_dir);
    let model = Arc::new(MiniLm::load(&dir, 256, 32).expect("the test command fetches the model"));
    let world = World::new(&db, model.clone()).await;
    let coverage = world.settled(model.model()).await;
    assert_eq!(coverage.embedded, 240);

    // TF-IDF fitted on the same texts the embeddings read.
    let rows: Vec<(Uuid, String, String, String, String)> = sqlx::query_as(
        "SELECT job_id, job_title, company_name, location, job_description FROM jobs ORDER BY job_id",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let documents: Vec<String> = rows
        .iter()
        .map(|(_, title, company, location, description)| {
            posting_text(&PostingText {
                title,
                company,
                location,
                skills: "",
                description,
            })
        })
        .collect();
    let (tfidf, vectors) = Model::fit(&documents, Settings::default());

    let mut totals = [0.0f64; 4];
    println!(
        "{:<48} {:>9} {:>7} {:>9} {:>7}",
        "query", "fulltext", "tfidf", "semantic", "hybrid"
    );
    for (query, relevant) in LABELLED {
        let words = search::fulltext_ranked(&db, query, search::CANDIDATES)
            .await
            .unwrap();
        let q = tfidf.transform(query);
        let mut by_tfidf: Vec<(Uuid, f64)> = rows
            .iter()
            .zip(&vectors)
            .map(|(row, v)| (row.0, v.dot(&q)))
            .filter(|(_, s)| *s > 0.0)
            .collect();
        by_tfidf.sort_by(|a, b| b.1.total_cmp(&a.1));
        let by_tfidf: Vec<Uuid> = by_tfidf.into_iter().map(|(id, _)| id).collect();
        let vector = model.embed(&[query.to_string()]).await.unwrap().remove(0);
        let meaning: Vec<Uuid> =
            search::semantic_ranked(&db, model.model(), &vector, search::CANDIDATES)
                .await
                .unwrap()
                .into_iter()
                .map(|(id, _)| id)
                .collect();
        let all_words = search::fulltext_all_ranked(&db, query, search::CANDIDATES)
            .await
            .unwrap();
        let hybrid = search::fuse(&[&all_words, &meaning]);
        let scores =
            [&words, &by_tfidf, &meaning, &hybrid].map(|r| recall_at_5(r, relevant, &kinds));
        println!(
            "{query:<48} {:>9.2} {:>7.2} {:>9.2} {:>7.2}",
            scores[0], scores[1], scores[2], scores[3]
        );
        for (total, score) in totals.iter_mut().zip(scores) {
            *total += score;
        }
    }
    let n = LABELLED.len() as f64;
    let [fulltext, tfidf, semantic, hybrid] = totals.map(|t| t / n);
    println!(
        "{:<48} {fulltext:>9.3} {tfidf:>7.3} {semantic:>9.3} {hybrid:>7.3}",
        "recall@5 (mean)"
    );
    assert!(LABELLED.len() >= 20);
    assert!(
        hybrid >= fulltext.max(tfidf).max(semantic),
        "hybrid {hybrid} below a single mode"
    );
}
