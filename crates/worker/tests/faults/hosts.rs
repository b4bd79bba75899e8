//! A multi-host run: network namespaces stand in for machines — a Redis Cluster, PostgreSQL, the
//! demo board, a Selenium Grid (hub and node) and two worker hosts (the first also runs the
//! scheduler) — joined by a bridge, on addresses from 198.18.0.0/15 only. A few hundred scrapes
//! run across them, a few through the Grid's browsers; one worker host's cable is pulled for
//! 30 s under load: the other recovers its tasks, its late results are dropped by the attempt
//! fence once it is back, and every run ends once.
use std::time::{Duration, Instant};

use sqlx::PgPool;
use test_support::cluster::OwnCluster;
use test_support::grid::Grid;
use test_support::netns::TestNet;
use test_support::procs::{OwnPostgres, Proc, wait_for, workspace_binary};
use test_support::{
    FaultAction, FaultRule, FaultTarget, eventually, js_listing_definition, unpaused_site,
};

use crate::fleet::*;

const SITES: usize = 300;
/// Of which JavaScript-rendered, scraped through the Grid.
const BROWSER_SITES: usize = 4;
/// How long the second worker host is cut off.
const CUT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_host_cut_off_for_30_s_loses_and_doubles_nothing() {
    if let Some(reason) = TestNet::unavailable() {
        println!("skipped: this machine cannot create network namespaces: {reason}");
        return;
    }
    let net = TestNet::create(&["redis", "db", "board", "grid", "w1", "w2"]);
    let (redis_host, db_host) = (net.host("redis").clone(), net.host("db").clone());
    let cluster = tokio::task::spawn_blocking(move || OwnCluster::start_on(&redis_host, 3, 0))
        .await
        .unwrap();
    let postgres = tokio::task::spawn_blocking(move || OwnPostgres::start_on(&db_host))
        .await
        .unwrap();
    let db = migrated_database(&postgres).await;

    let logs = tempfile::tempdir().unwrap();
    let board = net.host("board");
    let _board = Proc::spawn_on(
        Some(board),
        "board",
        &workspace_binary("trawl-demo-board"),
        &[("DEMO_BOARD_BIND", format!("{}:8090", board.addr))],
        logs.path(),
    );
    wait_for(&board.addr, 8090, Duration::from_secs(10), "demo board");
    let board_url = format!("http://{}:8090/", board.addr);
    // A run takes about a second: the load outlasts the cut, so both hosts work before and after.
    slow_details_at(&board_url, 100).await;
    register_sites_at(&db, &board_url, "hosts", SITES - BROWSER_SITES).await;
    for n in 0..BROWSER_SITES {
        let mut payload = js_listing_definition(&board_url.parse().unwrap(), "browser");
        payload["results_wanted"] = WANTED.into();
        let site = unpaused_site(&format!("hosts-js-{n}"), payload, 3);
        trawl_scrape_runs::sites::upsert_site(&db, &site)
            .await
            .unwrap();
    }
    let grid = Grid::start_on(net.host("grid"), 2).await;

    let mut fleet = Fleet::new(
        &postgres.url("trawl"),
        &cluster.url(),
        "trawl:",
        &[
            ("BROWSER_ENABLED", "true"),
            ("WEBDRIVER_URL", &grid.url),
            ("BROWSER_GLOBAL_SLOTS", "2"),
            // A dead host's browser leases come back in 5 s, as its heartbeat expires in 1 s
            // here: with the default 30 s, a w1 scrape waiting for a browser slot w2 held would
            // keep a worker slot for the whole cut, and a recovered task waits for every slot.
            ("BROWSER_SLOT_LEASE", "5"),
            // The cut may catch the second host mid-transaction (a batch of run starts): its
            // row locks would stall every worker that recovers those runs until its cable
            // came back, unless PostgreSQL ends a session left waiting.
            ("DATABASE_IDLE_IN_TRANSACTION_TIMEOUT", "5"),
        ],
    );
    fleet.spawn_scheduler_on(Some(net.host("w1")));
    fleet.spawn_worker_on(Some(net.host("w1")));
    fleet.spawn_worker_on(Some(net.host("w2")));
    let w2_pid = fleet.workers[1].pid();
    // Worker ids are `<hostname>-<pid>-…`: the namespaces share the machine's hostname.
    let w2_runs = |status: &'static str| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM task_runs WHERE status = $1 AND worker_id LIKE $2",
            )
            .bind(status)
            .bind(format!("%-{w2_pid}-%"))
            .fetch_one(&db)
            .await
            .unwrap()
        }
    };
    eventually(
        Duration::from_secs(90),
        "the second host to be mid-run",
        || async {
            (w2_runs("succeeded").await >= 10 && w2_runs("running").await > 0).then_some(())
        },
    )
    .await;

    let cut_at = Instant::now();
    net.cut("w2");
    let held_runs: Vec<String> = sqlx::query_scalar(
        "SELECT run_id FROM task_runs WHERE status = 'running' AND worker_id LIKE $1",
    )
    .bind(format!("%-{w2_pid}-%"))
    .fetch_all(&db)
    .await
    .unwrap();
    let held = held_runs.len() as i64;
    let browsers_at_cut = fleet.services(&db).browser_slots_held().await.unwrap();
    while cut_at.elapsed() < CUT {
        tokio::time::sleep(Duration::from_secs(1)).await;
        fleet.assert_all_running("while the second host was cut off");
    }
    let taken_over = taken_over(&db, w2_pid, &fleet.workers[0]).await;
    net.restore("w2");
    let restored_at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&db)
        .await
        .unwrap();

    until_terminal(
        &db,
        &mut fleet,
        SITES as i64,
        Duration::from_secs(180),
        |f| f.assert_all_running("after the second host came back"),
    )
    .await;
    // A run the cut-off host held and no one took over before it came back ends with the pages
    // the cut failed recorded (`partial`): its own single attempt, nothing doubled.
    let unsuccessful: Vec<(String, String, Option<String>, serde_json::Value)> = sqlx::query_as(
        "SELECT r.run_id, r.status, r.message, \
             (SELECT json_agg(json_build_object('attempt', a.attempt, 'worker', a.worker_id, \
                 'status', a.status, 'started', a.started_at)) \
              FROM task_run_attempts a WHERE a.run_id = r.run_id) \
         FROM task_runs r WHERE r.kind = 'scrape' AND r.status <> 'succeeded'",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let w2_id = format!("-{w2_pid}-");
    for (run_id, status, message, attempts) in &unsuccessful {
        let attempts = attempts.as_array().unwrap();
        let cut_held = status == "partial"
            && attempts.len() == 1
            && attempts[0]["worker"].as_str().unwrap().contains(&w2_id)
            && chrono::DateTime::parse_from_rfc3339(attempts[0]["started"].as_str().unwrap())
                .unwrap()
                < restored_at;
        assert!(
            cut_held,
            "run {run_id} ended {status} ({message:?}) other than by the cut: {attempts:?}"
        );
    }
    assert_once_with_partial(&db, SITES as i64, 0, unsuccessful.len() as i64).await;
    let through_grid: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM scrape_runs WHERE site_name LIKE 'hosts-js-%' \
         AND status = 'succeeded' AND jobs_found = $1",
    )
    .bind(i32::try_from(WANTED).unwrap())
    .fetch_one(&db)
    .await
    .unwrap();
    assert!(
        through_grid > 0,
        "the JavaScript sites were scraped through the Grid"
    );
    if taken_over == 0 {
        // A recovered task waits for all of w1's slots: what held them across the cut.
        let w1_across_cut: Vec<(String, String, String, f64)> = sqlx::query_as(
            "SELECT r.kind, a.run_id, a.status, \
                 extract(epoch FROM coalesce(a.finished_at, now()) - a.started_at)::float8 \
             FROM task_run_attempts a JOIN task_runs r USING (run_id) \
             WHERE a.worker_id NOT LIKE $1 AND a.started_at < $2 \
                 AND coalesce(a.finished_at, now()) > $2 - interval '30 seconds' \
                 AND coalesce(a.finished_at, now()) - a.started_at > interval '3 seconds'",
        )
        .bind(format!("%-{w2_pid}-%"))
        .bind(restored_at)
        .fetch_all(&db)
        .await
        .unwrap();
        panic!(
            "the first host took over none of the second's runs during the cut ({browsers_at_cut} \
             browser slots held at the cut; w1's attempts over 3 s across the cut (kind, run, \
             status, seconds): {w1_across_cut:?}):\n{}\n{}",
            what_became_of(&db, &fleet, &held_runs).await,
            fleet.workers[0]
                .log_lines("recovered")
                .iter()
                .rev()
                .take(10)
                .rev()
                .map(|line| format!("  [w1] {line}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    let superseded = late_results_dropped(&db, &fleet, w2_pid, &held_runs).await;
    let by_host: Vec<(String, i64)> = sqlx::query_as(
        "SELECT CASE WHEN a.worker_id LIKE $1 THEN 'w2' ELSE 'w1' END, count(*) \
         FROM task_run_attempts a JOIN task_runs r USING (run_id) \
         WHERE a.status = 'succeeded' AND r.kind = 'scrape' GROUP BY 1 ORDER BY 1",
    )
    .bind(format!("%-{w2_pid}-%"))
    .fetch_all(&db)
    .await
    .unwrap();
    let w2_after: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM task_run_attempts a JOIN task_runs r USING (run_id) \
         WHERE a.worker_id LIKE $1 AND a.status = 'succeeded' AND a.started_at > $2 \
         AND r.kind = 'scrape'",
    )
    .bind(format!("%-{w2_pid}-%"))
    .bind(restored_at)
    .fetch_one(&db)
    .await
    .unwrap();
    assert!(
        w2_after > 0,
        "the second host works again once its cable is back"
    );
    println!(
        "hosts: {SITES} scrapes ({through_grid} of {BROWSER_SITES} JS sites through the Grid) over 6 namespaces; w2 cut off for {} s holding {held} running \
         runs; w1 took over {taken_over} of its runs (started, or held unstarted); w2's {superseded} late results dropped (by the \
         fence, or given back); succeeded scrapes by host {by_host:?}, {w2_after} by w2 after the cut; {} held \
         through the cut ended partial; all terminal {:.1} s after the cut",
        CUT.as_secs(),
        unsuccessful.len(),
        cut_at.elapsed().as_secs_f64(),
    );
    // As `assert_invariants`, with what became of each run a broken invariant names.
    let services = fleet.services(&db);
    let settle = Instant::now() + Duration::from_secs(10);
    let mut broken = test_support::violations(&services).await;
    while !broken.is_empty() && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(200)).await;
        broken = test_support::violations(&services).await;
    }
    if !broken.is_empty() {
        let named: Vec<String> = broken
            .iter()
            .flat_map(|line| line.split_whitespace())
            .filter(|word| word.starts_with("sched_") || word.starts_with("manual_"))
            .map(|word| {
                word.trim_matches(|c: char| !c.is_alphanumeric() && c != '_')
                    .to_owned()
            })
            .collect();
        panic!(
            "invariants broken:\n  {}\n{}",
            broken.join("\n  "),
            what_became_of(&db, &fleet, &named).await
        );
    }
}

/// Waits (up to 60 s) for the second host to log its late results of runs taken over during
/// the cut as dropped; returns how many it logged. On timeout the panic says what the ledger
/// and the host's log show, so a failure in CI can be read without rerunning it.
async fn late_results_dropped(db: &PgPool, fleet: &Fleet, w2_pid: u32, held: &[String]) -> usize {
    let w2 = &fleet.workers[1];
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // Dropped by the fence, or given back when the attempt could not be finished (its
        // write failed during the cut) and found no longer in flight: recovery had it.
        let lines = w2.log_count("\"superseded\"") + w2.log_count("could not be processed");
        if lines > 0 {
            return lines;
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let w2_attempts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, count(*) FROM task_run_attempts WHERE worker_id LIKE $1 GROUP BY 1",
    )
    .bind(format!("%-{w2_pid}-%"))
    .fetch_all(db)
    .await
    .unwrap();
    let mut noted = w2.log_lines(r#""level":"warn""#);
    noted.extend(w2.log_lines(r#""level":"error""#));
    let noted = &noted[noted.len().saturating_sub(40)..];
    panic!(
        "timed out after 60 s waiting for the second host's late results: it held {} running \
         runs at the cut; its attempts by status {w2_attempts:?}; its last warnings and errors:\n{}\n\
         its log's tail:\n{}\nthe runs it held:\n{}",
        held.len(),
        noted.join("\n"),
        w2.log_tail(30),
        what_became_of(db, fleet, held).await
    );
}

/// For a failure message: each run's attempts, and what the fleet's logs say of it and of
/// recovering workers.
async fn what_became_of(db: &PgPool, fleet: &Fleet, runs: &[String]) -> String {
    let mut said = String::new();
    for run_id in runs {
        let attempts: Vec<(i32, String, String)> = sqlx::query_as(
            "SELECT attempt, worker_id, status FROM task_run_attempts WHERE run_id = $1 \
             ORDER BY attempt",
        )
        .bind(run_id)
        .fetch_all(db)
        .await
        .unwrap();
        said += &format!("run {run_id}: attempts {attempts:?}\n");
        for (n, proc) in fleet.workers.iter().chain(&fleet.schedulers).enumerate() {
            for line in proc.log_lines(run_id).iter().rev().take(12).rev() {
                said += &format!("  [process {n}] {line}\n");
            }
        }
    }
    for scheduler in &fleet.schedulers {
        for line in scheduler.log_lines("\"recovered\"").iter().rev().take(10) {
            said += &format!("  [scheduler] {line}\n");
        }
    }
    said
}

/// Runs of the second host that the first one started: those the second had started whose
/// newer attempt started elsewhere, and those whose task it held while its start had not
/// committed when the cut came (the cut often lands as a batch of runs ends and the next
/// batch's start is on the wire): recovered by the first host, they start there as attempt 1,
/// seen only in its log.
async fn taken_over(db: &PgPool, w2_pid: u32, w1: &Proc) -> i64 {
    let mut runs: std::collections::HashSet<String> = sqlx::query_scalar(
        "SELECT DISTINCT a.run_id FROM task_run_attempts a JOIN task_run_attempts b \
         USING (run_id) WHERE a.worker_id LIKE $1 AND b.attempt > a.attempt \
         AND b.worker_id NOT LIKE $1",
    )
    .bind(format!("%-{w2_pid}-%"))
    .fetch_all(db)
    .await
    .unwrap()
    .into_iter()
    .collect();
    // Logged once a recovered task's run has started; only the second host died.
    for line in w1.log_lines("task recovered from a crashed worker; running it alone") {
        let line: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
        runs.insert(line["run_id"].as_str().expect("a run id").to_owned());
    }
    runs.len() as i64
}

/// Detail pages of the board at `url` answer after `millis` (its /_admin/faults).
async fn slow_details_at(url: &str, millis: u64) {
    let rules = vec![FaultRule {
        target: FaultTarget::AnyDetail,
        action: FaultAction::Delay { millis },
        times: None,
    }];
    let status = reqwest::Client::new()
        .put(format!("{url}_admin/faults"))
        .json(&rules)
        .send()
        .await
        .expect("the board answers")
        .status();
    assert!(status.is_success(), "{status}");
}
