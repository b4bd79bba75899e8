//! The probes under `probes/` still run against today's migrations and statements.
use std::process::Command;

use anyhow::Context;

/// `ledger-variants.sh` builds its four schemas from `migrations/`, prepares the ledger's own
/// statements from `.sqlx/`, and every copy ends each run it submits, with the attempt rows it
/// should write (none for the bare run row): its figures measure the work they name.
#[test]
fn the_ledger_variants_probe_ends_every_run_in_every_variant() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL").context("DATABASE_URL names the test server")?;
    let url = url::Url::parse(&url)?;
    let output = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/probes/ledger-variants.sh"
        ))
        .arg("1")
        .env("TRAWL_PROBE_RUNS", "120")
        .env(
            "TRAWL_PROBE_PREFIX",
            format!("trawl_probe_{}", std::process::id()),
        )
        .env("PGHOST", url.host_str().context("a host")?)
        .env("PGPORT", url.port().unwrap_or(5432).to_string())
        .env("PGUSER", url.username())
        .env("PGPASSWORD", url.password().unwrap_or_default())
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let did = stdout
        .lines()
        .find(|line| line.starts_with("runs ended / attempt rows"));
    assert_eq!(
        did,
        Some("runs ended / attempt rows | 120 / 120 | 120 / 120 | 120 / 120 | 120 / 0"),
        "{stdout}"
    );
    let round = stdout.lines().find(|line| line.starts_with("1 |"));
    assert!(round.is_some(), "a round's figures: {stdout}");
    Ok(())
}
