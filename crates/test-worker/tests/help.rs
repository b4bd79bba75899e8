//! Cargo builds a package's binary for its integration tests: this one makes sure
//! `trawl-test-worker` exists for the fault tests, and that it takes the worker's settings.
#[test]
fn the_test_worker_takes_the_worker_settings() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trawl-test-worker"))
        .arg("--help")
        .output()
        .expect("trawl-test-worker runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("WORKER_CONCURRENCY"), "{help}");
}
