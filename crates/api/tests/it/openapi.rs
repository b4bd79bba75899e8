//! The OpenAPI description: served at /openapi.json, every route in it, and the committed copy
//! (`docs/openapi.json`) the same, so a contract change shows in review. After changing the
//! API on purpose: `TRAWL_BLESS_OPENAPI=1 cargo nextest run -p trawl-api openapi` rewrites it.
use sqlx::PgPool;
use test_support::TestRedis;

use crate::helpers::*;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
const HOOKS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis_hooks.py");
const SETTINGS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis.toml");

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn the_served_openapi_is_the_committed_one_and_lists_every_route(db: PgPool) {
    let redis = TestRedis::new();
    let api = spawn_api(&redis.services(&db)).await;
    let (status, served) = read(api.get("/openapi.json")).await;
    assert_eq!(status, 200);
    assert_eq!(served["openapi"], "3.1.0");
    let mut pretty = serde_json::to_string_pretty(&served).unwrap();
    pretty.push('\n');
    if std::env::var_os("TRAWL_BLESS_OPENAPI").is_some() {
        std::fs::write(COMMITTED, &pretty).unwrap();
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == pretty,
        "the served OpenAPI differs from docs/openapi.json; if the change is meant, run \
         TRAWL_BLESS_OPENAPI=1 cargo nextest run -p trawl-api openapi and commit the file"
    );

    let paths = served["paths"].as_object().unwrap();
    for (path, method) in [
        ("/health", "get"),
        ("/metrics", "get"),
        ("/jobs/health", "get"),
        ("/jobs/sites", "get"),
        ("/jobs/postings", "get"),
        ("/jobs/postings/{job_id}", "get"),
        ("/jobs/scrape", "post"),
        ("/jobs/scrape/{run_id}", "get"),
        ("/jobs/scrape/{run_id}/cancel", "post"),
        ("/jobs/queue/status", "get"),
        ("/queues", "get"),
        ("/jobs/queue/dead", "get"),
        ("/jobs/queue/dead/{id}/retry", "post"),
        ("/jobs/queue/dead/{id}", "delete"),
        ("/jobs/queue/pause", "post"),
        ("/jobs/queue/resume", "post"),
        ("/scheduler/run", "post"),
        ("/scheduler/status", "get"),
        ("/schedules", "get"),
        ("/schedules", "post"),
        ("/schedules/{name}", "delete"),
    ] {
        let operation = &paths[path][method];
        assert!(operation.is_object(), "{method} {path} is not described");
        let responses = operation["responses"].as_object().unwrap();
        if path == "/health" {
            // Always 200 or 503, naming what is down.
            assert!(responses.contains_key("503"), "{method} {path}: its 503");
            continue;
        }
        assert!(responses.contains_key("500"), "{method} {path}: its 500");
        if method != "get" {
            assert!(responses.contains_key("401"), "{method} {path}: its 401");
            assert!(operation["security"].is_array(), "{method} {path}: its key");
        } else {
            assert!(responses.contains_key("503"), "{method} {path}: its 503");
        }
    }
    let postings = &paths["/jobs/postings"]["get"]["parameters"];
    let names: Vec<&str> = postings
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"salary_at_least") && names.contains(&"cursor"),
        "{names:?}"
    );
}

/// schemathesis (from PyPI; `deploy/dev.sh test` installs it and names it in SCHEMATHESIS)
/// against a live API, with its key and without, every check on: no server error, no response
/// that breaks the spec, no malformed request accepted and no well-formed one refused. Its
/// hooks (`tests/schemathesis_hooks.py`) teach it the spec's `cron` and `time-zone` formats;
/// its settings (`tests/schemathesis.toml`) name the few rules JSON Schema cannot state.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn schemathesis_finds_nothing_wrong(db: PgPool) {
    let schemathesis = std::env::var("SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".into());
    let redis = TestRedis::new();
    let api = spawn_api(&redis.services(&db)).await;
    let scratch = tempfile::tempdir().unwrap();
    for key in [Some(KEY), None] {
        let mut command = tokio::process::Command::new(&schemathesis);
        // It keeps a cache in its working folder: one of the test's own, not the checkout.
        command
            .current_dir(&scratch)
            .env("SCHEMATHESIS_HOOKS", HOOKS);
        command.args([
            "--config-file",
            SETTINGS,
            "run",
            &format!("{}/openapi.json", api.base),
            "--checks",
            "all",
            "--max-examples",
            "25",
            "--seed",
            "1",
        ]);
        if let Some(key) = key {
            command.args(["--header", &format!("Authorization: Bearer {key}")]);
        }
        let output = command.output().await.unwrap_or_else(|err| {
            panic!(
                "{schemathesis} cannot run ({err}); run the suite with `deploy/dev.sh test`, \
                 which installs it, or set SCHEMATHESIS to its path"
            )
        });
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "schemathesis (key: {}) found problems:\n{report}{}",
            key.is_some(),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(report.contains("passed"), "{report}");
    }
}
