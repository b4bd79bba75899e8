//! Issue 8, item 8: the worker binary refuses a bad value naming its variable, never prints a
//! DSN's password, and writes no colour codes to a pipe.
use std::process::{Command, Stdio};
use std::time::Duration;

const SECRET: &str = "s3cr3t-pw";

fn worker() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trawl-worker"));
    command
        .env_clear()
        .env(
            "DATABASE_URL",
            format!("postgres://trawl:{SECRET}@127.0.0.1:1/none"),
        )
        .env("REDIS_URL", format!("redis://:{SECRET}@127.0.0.1:1"))
        .env("BROWSER_ENABLED", "false")
        .env("EMBEDDER", "hashing")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// A metrics address already taken is a startup error naming METRICS_BIND, not a worker
/// running with no metrics.
#[test]
fn a_metrics_address_in_use_is_refused_at_startup() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = worker()
        .env("METRICS_BIND", &address)
        .output()
        .expect("worker runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("METRICS_BIND={address}")),
        "{stderr}"
    );
}

#[test]
fn a_bad_value_is_refused_at_startup_naming_its_variable() {
    for (variable, value) in [
        ("WORKER_CONCURRENCY", "0"),
        ("HEARTBEAT_TTL_MS", "10"),
        ("PAGE_TIMEOUT", "0"),
        ("DOMAIN_RATE", "-1"),
        ("MAX_DELIVERIES", "0"),
        ("DATABASE_IDLE_IN_TRANSACTION_TIMEOUT", "3000000"),
        ("METRICS_BIND", "nowhere"),
        ("LLM_URL", "not a url"),
        ("SMTP_URL", "ftp://mail.example"),
        ("SMTP_CA_FILE", "/nonexistent/ca.pem"),
        ("MAIL_FROM", "not an address"),
    ] {
        let output = worker().env(variable, value).output().expect("worker runs");
        assert!(!output.status.success(), "{variable}={value} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(variable), "{variable}: {stderr}");
        assert!(!stderr.contains(SECRET), "{stderr}");
    }
}

#[test]
fn a_malformed_url_is_refused_naming_its_variable() {
    for (variable, value) in [("REDIS_URL", "not a url"), ("DATABASE_URL", "not a url")] {
        let output = worker().env(variable, value).output().expect("worker runs");
        assert!(!output.status.success(), "{variable}={value} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("{variable}:")),
            "{variable}: {stderr}"
        );
    }
}

#[test]
fn a_wrong_embeddings_setting_is_refused_at_startup_naming_its_variable() {
    for (settings, variable) in [
        (&[("EMBEDDER", "openai")][..], "EMBEDDINGS_URL"),
        (
            &[
                ("EMBEDDER", "openai"),
                ("EMBEDDINGS_URL", "http://127.0.0.1:9/v1"),
            ][..],
            "EMBEDDINGS_MODEL",
        ),
        (
            &[
                ("EMBEDDER", "minilm"),
                ("EMBEDDINGS_MODEL_DIR", "/nonexistent"),
            ][..],
            "EMBEDDINGS_MODEL_DIR",
        ),
        (&[("EMBEDDINGS_BATCH", "0")][..], "EMBEDDINGS_BATCH"),
        (&[("EMBEDDER", "word2vec")][..], "EMBEDDER"),
    ] {
        let output = worker()
            .envs(settings.iter().copied())
            .output()
            .expect("worker runs");
        assert!(!output.status.success(), "{settings:?} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(variable), "{variable}: {stderr}");
    }
    // A worker that does not serve the embeddings queue never loads a model: it starts.
    let mut scraping_only = worker();
    scraping_only
        .env("EMBEDDER", "openai")
        .env("WORKER_QUEUES", "scraping");
    let logs = run_then_stop(scraping_only);
    assert!(logs.contains("worker started"), "{logs}");
}

/// Starts the worker, lets it run 1.5 s, stops it with SIGTERM (it stops cleanly and its
/// output ends); its standard output.
fn run_then_stop(mut command: Command) -> String {
    let child = command.spawn().expect("worker starts");
    std::thread::sleep(Duration::from_millis(1500));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    let output = child.wait_with_output().expect("worker exits");
    String::from_utf8_lossy(&output.stdout).to_string()
}

#[test]
fn help_never_prints_a_password() {
    let output = worker().arg("--help").output().expect("worker runs");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("DATABASE_URL"), "{help}");
    assert!(!help.contains(SECRET), "{help}");
}

#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    let logs = run_then_stop(worker());
    assert!(logs.contains("worker started"), "{logs}");
    assert!(!logs.contains('\u{1b}'), "escape codes in {logs:?}");
    assert!(!logs.contains(SECRET), "{logs}");
}
