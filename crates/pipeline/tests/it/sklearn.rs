//! A stored model's TF-IDF scores against scikit-learn's `TfidfVectorizer` on the same corpus
//! (scikit-learn from PyPI in the venv the test command installs: TRAWL_SKLEARN_PYTHON).
use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use sqlx::PgPool;
use trawl_pipeline::models;
use trawl_pipeline::tfidf::{Model, Settings, preprocess};
use uuid::Uuid;

fn python() -> String {
    std::env::var("TRAWL_SKLEARN_PYTHON").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/trawl-tools/sklearn/bin/python")
    })
}

fn corpus() -> Vec<String> {
    let mut documents: Vec<String> = (1..=demo_board::catalog::POSTING_COUNT)
        .filter_map(demo_board::catalog::posting)
        .map(|p| format!("{}\n{}", p.title, p.description))
        .collect();
    documents.extend(
        [
            "Développeur Python à Paris — télétravail possible, écrivez à jobs@exemple.fr",
            "Ingénieur données (Python, Spark) à Lyon: https://exemple.fr/offres/42",
            "Data engineer: Python, Spark, Airflow; the data platform team",
            "Straße, café, naïve résumé — café naïve",
        ]
        .map(str::to_owned),
    );
    documents
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_stored_model_scores_like_scikit_learn(db: PgPool) {
    let documents = corpus();
    let (model, vectors) = Model::fit(&documents, Settings::default());
    assert!(
        model.terms.len() < 10_000,
        "the cut at max_features is not compared: ties there are ordered differently by numpy's unstable argsort"
    );

    // Stored, activated and read back: the model the API would score with.
    let ids: Vec<Uuid> = (0..documents.len()).map(|_| Uuid::new_v4()).collect();
    let batch_id = Uuid::new_v4();
    sqlx::query("INSERT INTO pipelines (name, definition) VALUES ('t', '{}')")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("INSERT INTO batches (batch_id, pipeline, batch_date, definition, trigger) VALUES ($1, 't', CURRENT_DATE, '{}', 'manual')")
        .bind(batch_id).execute(&db).await.unwrap();
    let mut tx = db.begin().await.unwrap();
    let pairs: Vec<_> = ids.iter().copied().zip(vectors.clone()).collect();
    models::store_model(&mut tx, &model, &pairs, batch_id)
        .await
        .unwrap();
    models::activate_staged(&mut tx, batch_id).await.unwrap();
    tx.commit().await.unwrap();
    let (_, stored) = models::active_model(&db)
        .await
        .unwrap()
        .expect("an active model");

    let stop_words: Vec<&str> = trawl_pipeline::tfidf::stop_words().to_vec();
    let input = json!({"documents": documents.iter().map(|d| preprocess(d)).collect::<Vec<_>>(), "stop_words": stop_words});
    let mut child = Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/sklearn/tfidf.py"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| {
            panic!(
                "{} (scikit-learn's venv; `deploy/dev.sh test` installs it): {err}",
                python()
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "scikit-learn failed");
    let theirs: Value = serde_json::from_slice(&output.stdout).unwrap();

    let terms: Vec<String> = serde_json::from_value(theirs["terms"].clone()).unwrap();
    assert_eq!(terms, stored.terms, "the same vocabulary in the same order");
    let idf: Vec<f64> = serde_json::from_value(theirs["idf"].clone()).unwrap();
    for (a, b) in idf.iter().zip(&stored.idf) {
        assert!((a - b).abs() < 1e-9, "idf {a} vs {b}");
    }
    let rows = theirs["rows"].as_array().unwrap();
    let mut compared = 0;
    for (document, row) in documents.iter().zip(rows) {
        let ours = stored.transform(document);
        let theirs: Vec<(i32, f64)> = {
            let mut cells: Vec<(i32, f64)> = row
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.parse().unwrap(), v.as_f64().unwrap()))
                .collect();
            cells.sort_by_key(|(f, _)| *f);
            cells
        };
        assert_eq!(
            ours.features,
            theirs.iter().map(|(f, _)| *f).collect::<Vec<_>>(),
            "{document}"
        );
        for (a, (_, b)) in ours.weights.iter().zip(&theirs) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b} in {document}");
            compared += 1;
        }
    }
    assert!(compared > 1_000, "{compared} scores compared");
}
