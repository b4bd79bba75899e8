//! The `trawl` binary against real Redis and PostgreSQL, as an operator would use it.
use std::process::Command;

use sqlx::PgPool;
use test_support::TestRedis;

fn trawl(db: &PgPool, redis: &TestRedis, args: &[&str]) -> (bool, serde_json::Value, String) {
    let url = test_support::database_url(db);
    let output = Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(args)
        .env("DATABASE_URL", url)
        .env("REDIS_URL", &redis.url)
        .env("REDIS_PREFIX", &redis.prefix)
        .output()
        .expect("trawl runs");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let json = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    (
        output.status.success(),
        json,
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn operators_manage_sites_runs_and_dead_letters_from_the_shell(
    db: PgPool,
) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let dir = tempfile::tempdir()?;
    let sites = dir.path().join("sites.json");
    std::fs::write(
        &sites,
        r#"[{"site_name": "demo", "payload": {"source": "demo_board", "base_url": "http://127.0.0.1:9"}}]"#,
    )?;
    let (ok, out, err) = trawl(&db, &redis, &["site", "upsert", sites.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(out["saved"], serde_json::json!(["demo"]));

    std::fs::write(
        &sites,
        r#"{"site_name": "bad", "payload": {"source": "demo_board", "base_url": "nope"}}"#,
    )?;
    let (ok, _, err) = trawl(&db, &redis, &["site", "upsert", sites.to_str().unwrap()]);
    assert!(!ok && err.contains("`base_url`"), "{err}");

    let (ok, out, err) = trawl(&db, &redis, &["enqueue", "demo", "--search-term", "rust"]);
    assert!(ok, "{err}");
    assert_eq!(out["status"], "queued");
    let (ok, _, err) = trawl(&db, &redis, &["enqueue", "demo"]);
    assert!(
        !ok && err.contains("is being scraped by run"),
        "one run per site: {err}"
    );
    let (ok, out, _) = trawl(&db, &redis, &["queue", "status"]);
    assert!(ok);
    assert_eq!(out["pending"], 1);

    let services = redis.services(&db);
    let raw = services
        .queue
        .consumer(&redis.url, "w1", std::time::Duration::from_millis(100))
        .next()
        .await?
        .unwrap();
    services.queue.dead_letter("w1", &raw, "testing").await?;
    let (_, out, _) = trawl(&db, &redis, &["dead", "list"]);
    let id = out[0]["id"].as_str().unwrap().to_owned();
    let (ok, out, err) = trawl(&db, &redis, &["dead", "retry", &id]);
    assert!(ok && out["requeued"] == true, "{err}");
    let (ok, _, err) = trawl(&db, &redis, &["dead", "delete", &id]);
    assert!(!ok && err.contains("no dead letter"), "{err}");
    Ok(())
}

/// Recurring work of any kind and the queues, from the shell.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn operators_schedule_recurring_work_and_see_every_queue(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("schedules.json");
    std::fs::write(
        &file,
        r#"[{"name": "nightly", "kind": "pipeline_batch", "queue": "pipeline", "cron": "30 0 * * *",
             "payload": {"pipeline": "daily"}},
            {"name": "digest", "kind": "career_digest", "queue": "careers", "cron": "0 8 * * *",
             "time_zone": "Europe/Paris", "payload": {"subscriber": 7}}]"#,
    )?;
    let path = file.to_str().unwrap();
    let (ok, out, err) = trawl(&db, &redis, &["schedule", "upsert", path]);
    assert!(ok, "{err}");
    assert_eq!(out["saved"][1]["name"], "digest");
    let (_, out, _) = trawl(&db, &redis, &["schedule", "list"]);
    assert_eq!(out.as_array().map(Vec::len), Some(2));
    std::fs::write(
        &file,
        r#"{"name": "bad", "kind": "career_digest", "cron": "61 * * * *",
            "payload": {"subscriber": 7}}"#,
    )?;
    let (ok, _, err) = trawl(&db, &redis, &["schedule", "upsert", path]);
    assert!(
        !ok && err.contains("schedule bad refused") && err.contains("cron"),
        "{err}"
    );
    // A kind trawl does not run, or a payload its kind refuses, would be dead-lettered at every
    // fire: refused at upsert, naming the field, nothing saved.
    for (bad, field) in [
        (
            r#"{"name": "bad", "kind": "digest", "queue": "x", "cron": "0 8 * * *"}"#,
            "kind \"digest\"",
        ),
        (
            r#"{"name": "bad", "kind": "career_digest", "cron": "0 8 * * *",
                "payload": {"audience": "all"}}"#,
            "payload does not fit kind career_digest: unknown field `audience`",
        ),
        (
            r#"{"name": "bad", "kind": "career_digest", "queue": "x", "cron": "0 8 * * *",
                "payload": {"subscriber": 7}}"#,
            "queue \"x\" is not where kind career_digest's tasks run",
        ),
    ] {
        std::fs::write(&file, bad)?;
        let (ok, _, err) = trawl(&db, &redis, &["schedule", "upsert", path]);
        assert!(
            !ok && err.contains("schedule bad refused") && err.contains(field),
            "{err}"
        );
    }
    let (_, out, _) = trawl(&db, &redis, &["schedule", "list"]);
    assert_eq!(out.as_array().map(Vec::len), Some(2), "{out}");
    let (ok, _, err) = trawl(&db, &redis, &["schedule", "delete", "nightly"]);
    assert!(ok, "{err}");

    // The scheduler's latest pass and its totals, repairs included.
    let (ok, out, err) = trawl(&db, &redis, &["schedule", "status"]);
    assert!(ok, "{err}");
    assert_eq!(out["last_pass"], serde_json::Value::Null, "{out}");
    trawl_schedule::run_pass(&redis.services(&db), "test", 100).await?;
    let (ok, out, err) = trawl(&db, &redis, &["schedule", "status"]);
    assert!(ok, "{err}");
    assert_eq!(out["last_pass"]["origin"], "test", "{out}");
    assert_eq!(
        (
            &out["totals"]["passes"],
            &out["totals"]["recovered_workers"]
        ),
        (&serde_json::json!(1), &serde_json::json!(0)),
        "{out}"
    );

    test_support::nap::submit_nap(&redis.services(&db), 5, 0).await;
    let (ok, out, err) = trawl(&db, &redis, &["queue", "list"]);
    assert!(ok, "{err}");
    assert_eq!(out["queues"][1]["queue"], "naps");
    let (_, out, _) = trawl(&db, &redis, &["queue", "status", "--queue", "naps"]);
    assert_eq!(out["pending"], 1);
    let (ok, out, _) = trawl(&db, &redis, &["queue", "pause", "--queue", "naps"]);
    assert!(ok && out["queue"] == "naps" && out["paused"] == true);
    Ok(())
}

/// `trawl postings`: the same search as GET /jobs/postings, from the shell.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn operators_search_postings_from_the_shell(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    for (n, title) in ["Rust Engineer", "Python Engineer", "Chef"]
        .iter()
        .enumerate()
    {
        sqlx::query(
            "INSERT INTO jobs (job_id, site, external_id, job_title, location, url, source, \
                 content_hash, first_seen_at) \
             VALUES (gen_random_uuid(), 'demo', $1, $2, 'Berlin', 'http://127.0.0.1:9/', \
                 'demo_board', 'h', now() - make_interval(mins => $3))",
        )
        .bind(format!("e{n}"))
        .bind(title)
        .bind(n as i32)
        .execute(&db)
        .await?;
    }
    let (ok, out, err) = trawl(
        &db,
        &redis,
        &["postings", "--q", "engineer", "--limit", "1"],
    );
    assert!(ok, "{err}");
    assert_eq!(out["postings"][0]["job_title"], "Rust Engineer");
    let next = out["next"].as_str().expect("a second page").to_owned();
    let (ok, out, err) = trawl(
        &db,
        &redis,
        &["postings", "--q", "engineer", "--cursor", &next],
    );
    assert!(ok, "{err}");
    assert_eq!(out["postings"][0]["job_title"], "Python Engineer");
    assert_eq!(out["next"], serde_json::Value::Null);
    let (ok, _, err) = trawl(&db, &redis, &["postings", "--posted-since", "yesterday"]);
    assert!(!ok && err.contains("--posted-since"), "{err}");
    let (ok, _, err) = trawl(&db, &redis, &["postings", "--cursor", "nope"]);
    assert!(!ok && err.contains("is not a page's `next`"), "{err}");
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn operators_run_watch_and_roll_back_the_pipeline_from_the_shell(
    db: PgPool,
) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let board = test_support::TestBoard::start().await;
    test_support::register_site(&db, "demo", &board.url, 0).await;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("daily.json");
    std::fs::write(
        &file,
        r#"{"sources": [{"site": "demo", "queries": ["engineer"], "max_per_query": 8}], "cron": "99 0 * * *"}"#,
    )?;
    let upsert = [
        "pipeline",
        "upsert",
        "daily",
        "--file",
        file.to_str().unwrap(),
    ];
    let (ok, _, err) = trawl(&db, &redis, &upsert);
    assert!(!ok && err.contains("cron:"), "the field is named: {err}");
    std::fs::write(
        &file,
        r#"{"sources": [{"site": "demo", "queries": ["engineer"], "max_per_query": 8}]}"#,
    )?;
    let (ok, out, err) = trawl(&db, &redis, &upsert);
    assert!(ok, "{err}");
    assert_eq!(out["pipeline"]["definition"]["retry"]["tries"], 3);

    let (ok, out, err) = trawl(&db, &redis, &["pipeline", "run", "daily"]);
    assert!(ok, "{err}");
    let batch = out["batch_id"].as_str().unwrap().to_owned();
    let _worker =
        test_support::procs::WorkerProcess::start(&test_support::database_url(&db), &redis);
    let shown = test_support::eventually(
        std::time::Duration::from_secs(60),
        "the batch succeeds",
        || async {
            let (_, out, _) = trawl(&db, &redis, &["pipeline", "show", &batch]);
            (out["batch"]["status"] == "success").then_some(out)
        },
    )
    .await;
    assert_eq!(shown["stages"][4]["jobs_inserted"], 8);

    let (ok, out, _) = trawl(&db, &redis, &["pipeline", "status", "--pipeline", "daily"]);
    assert!(ok);
    assert_eq!(out["latest"]["batch"]["batch_id"], batch.as_str());
    let (ok, out, _) = trawl(&db, &redis, &["pipeline", "batches"]);
    assert!(ok);
    assert_eq!(out["batches"].as_array().unwrap().len(), 1);
    let (ok, out, _) = trawl(&db, &redis, &["model", "list"]);
    assert!(ok);
    let version = out["models"][0]["model_version"]
        .as_str()
        .unwrap()
        .to_owned();
    let (ok, out, err) = trawl(&db, &redis, &["model", "activate", &version]);
    assert!(ok, "{err}");
    assert_eq!(out["model"]["status"], "active");
    let (ok, _, err) = trawl(
        &db,
        &redis,
        &["model", "activate", "tfidf_v19990101_000000"],
    );
    assert!(!ok && err.contains("no model"), "{err}");

    let (ok, _, err) = trawl(
        &db,
        &redis,
        &["pipeline", "rerun", &batch, "--from", "export"],
    );
    assert!(!ok && err.contains("failed or stopped"), "{err}");
    let (ok, out, err) = trawl(&db, &redis, &["pipeline", "rollback", &batch]);
    assert!(ok, "{err}");
    assert_eq!(out["deleted"], 8);
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&db)
        .await?;
    assert_eq!(jobs, 0);
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn operators_backfill_embeddings_and_follow_coverage_from_the_shell(
    db: PgPool,
) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    sqlx::query(
        "INSERT INTO jobs (job_id, site, external_id, job_title, location, url, source, content_hash) \
         SELECT gen_random_uuid(), 'fixture', n::text, 'Engineer ' || n, 'Paris', \
                'http://127.0.0.1/', 'fixture', 'h' FROM generate_series(1, 50) n",
    )
    .execute(&db)
    .await?;
    // No worker has registered a model: the backfill says what is missing.
    let (ok, _, err) = trawl(&db, &redis, &["embed", "backfill"]);
    assert!(!ok);
    assert!(err.contains("no active embedding model"), "{err}");

    let _worker =
        test_support::procs::WorkerProcess::start(&test_support::database_url(&db), &redis);
    test_support::eventually(
        std::time::Duration::from_secs(30),
        "the model registered",
        || async {
            let (_, out, _) = trawl(&db, &redis, &["embed", "status"]);
            (out["active_model"] == "hashing-384").then_some(())
        },
    )
    .await;
    // The backfill queues, follows until nothing waits (its progress on stderr) and reports.
    let (ok, out, err) = trawl(&db, &redis, &["embed", "backfill"]);
    assert!(ok, "{err}");
    assert_eq!(out["backfill"]["model"], "hashing-384");
    assert_eq!(out["coverage"]["embedded"], 50, "{out}");
    assert_eq!(out["coverage"]["percent"], 100.0);
    assert!(err.contains("hashing-384 50/50"), "{err}");
    // Run again: nothing left, nothing queued twice.
    let (ok, out, _) = trawl(&db, &redis, &["embed", "backfill"]);
    assert!(ok);
    assert_eq!(out["backfill"]["queued"], 0);
    let (ok, out, _) = trawl(&db, &redis, &["embed", "backfill", "--watch"]);
    assert!(ok);
    assert_eq!(out["backfill"], serde_json::Value::Null);
    let (ok, out, _) = trawl(&db, &redis, &["embed", "status"]);
    assert!(ok);
    assert_eq!(out["models"][0]["embedded"], 50);
    let (ok, _, err) = trawl(&db, &redis, &["embed", "activate", "nope"]);
    assert!(!ok);
    assert!(err.contains("no embedding model \"nope\""), "{err}");
    Ok(())
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn operators_manage_companies_and_subscribers_from_the_shell(
    db: PgPool,
) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let dir = tempfile::tempdir()?;
    let csv = dir.path().join("companies.csv");
    std::fs::write(
        &csv,
        "company,url\nAcme,https://acme.example/careers\nLocal,http://127.0.0.1:9/jobs\n",
    )?;
    let path = csv.to_str().unwrap();
    let (ok, _, err) = trawl(&db, &redis, &["careers", "import", path]);
    assert!(
        !ok && err.contains("line 3") && err.contains("private address"),
        "{err}"
    );
    let (ok, out, err) = trawl(&db, &redis, &["careers", "import", path, "--allow-private"]);
    assert!(ok, "{err}");
    assert_eq!(out["imported"], serde_json::json!(["acme", "local"]));
    let (ok, out, err) = trawl(
        &db,
        &redis,
        &[
            "careers",
            "add",
            "Globex",
            "https://globex.example/jobs",
            "--cron",
            "0 9 * * 1-5",
            "--time-zone",
            "Europe/Paris",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out["company"]["cron"], "0 9 * * 1-5");
    let (ok, out, _) = trawl(&db, &redis, &["careers", "list"]);
    assert!(ok);
    assert_eq!(out["companies"].as_array().unwrap().len(), 3);
    let (ok, out, err) = trawl(&db, &redis, &["careers", "snapshot", "acme"]);
    assert!(ok, "{err}");
    assert!(out["run_id"].as_str().unwrap().starts_with("manual_"));
    let (ok, _, err) = trawl(&db, &redis, &["careers", "snapshot", "nobody"]);
    assert!(!ok && err.contains("no company \"nobody\""), "{err}");
    let (ok, out, _) = trawl(&db, &redis, &["careers", "disable", "local"]);
    assert!(ok && out["enabled"] == false);

    let (ok, _, err) = trawl(&db, &redis, &["careers", "subscribe", "not-an-address"]);
    assert!(!ok && err.contains("is not an address"), "{err}");
    let (ok, out, err) = trawl(
        &db,
        &redis,
        &[
            "careers",
            "subscribe",
            "ada@example.com",
            "--keyword",
            "rust",
            "--max-years",
            "5",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out["subscriber"]["status"], "pending");
    let (ok, out, _) = trawl(&db, &redis, &["careers", "subscribers"]);
    assert!(ok && out["subscribers"][0]["keywords"] == serde_json::json!(["rust"]));
    let (ok, out, err) = trawl(&db, &redis, &["careers", "unsubscribe", "ada@example.com"]);
    assert!(ok, "{err}");
    assert_eq!(out["subscriber"]["status"], "unsubscribed");
    let (ok, out, _) = trawl(&db, &redis, &["careers", "mails"]);
    assert!(ok && out["mails"].as_array().unwrap().is_empty());
    Ok(())
}

/// `trawl runs` reads the ledger of every kind; `trawl dead` works on any queue, one entry or
/// the whole list.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn operators_read_runs_and_sweep_any_queues_dead_letters(db: PgPool) -> anyhow::Result<()> {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let first = test_support::nap::submit_nap(&services, 10, 0).await;
    let second = test_support::nap::submit_nap(&services, 10, 0).await;
    let (ok, out, err) = trawl(
        &db,
        &redis,
        &["runs", "list", "--kind", "nap", "--limit", "1"],
    );
    assert!(ok, "{err}");
    assert_eq!(
        out["runs"][0]["run_id"],
        second.as_str(),
        "newest first: {out}"
    );
    let next = out["next"].as_str().expect("a second page").to_owned();
    let (ok, out, err) = trawl(&db, &redis, &["runs", "list", "--cursor", &next]);
    assert!(ok, "{err}");
    assert_eq!(out["runs"][0]["run_id"], first.as_str(), "{out}");
    assert_eq!(out["next"], serde_json::Value::Null);
    let (ok, out, _) = trawl(&db, &redis, &["runs", "list", "--status", "failed"]);
    assert!(ok && out["runs"] == serde_json::json!([]), "{out}");
    let (ok, _, err) = trawl(&db, &redis, &["runs", "list", "--status", "done"]);
    assert!(!ok && err.contains("--status"), "{err}");
    let (ok, out, err) = trawl(&db, &redis, &["runs", "show", &first]);
    assert!(ok, "{err}");
    assert_eq!(
        (&out["run"]["kind"], &out["run"]["status"]),
        (&serde_json::json!("nap"), &serde_json::json!("queued"))
    );
    let (ok, _, err) = trawl(&db, &redis, &["runs", "show", "nope"]);
    assert!(!ok && err.contains("no run with run_id nope"), "{err}");

    let naps = services.queue_named("naps");
    for n in 0..3 {
        naps.dead_letter(
            "w1",
            format!("garbage {n}").as_bytes(),
            "malformed task JSON",
        )
        .await?;
    }
    let (_, out, _) = trawl(&db, &redis, &["dead", "list", "--queue", "naps"]);
    let id = out[0]["id"].as_str().expect("a dead letter").to_owned();
    let (ok, _, err) = trawl(&db, &redis, &["dead", "retry", &id]);
    assert!(!ok && err.contains("on queue scraping"), "{err}");
    let (ok, out, err) = trawl(&db, &redis, &["dead", "delete", &id, "--queue", "naps"]);
    assert!(ok && out["deleted"] == true, "{err}");
    let (ok, out, err) = trawl(&db, &redis, &["dead", "retry", "--all", "--queue", "naps"]);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        serde_json::json!({"queue": "naps", "requeued": 2, "skipped": 0})
    );
    assert_eq!(naps.metrics().await?.dead, 0);
    let (ok, _, err) = trawl(&db, &redis, &["dead", "retry"]);
    assert!(!ok && err.contains("--all"), "an id or --all: {err}");
    Ok(())
}
