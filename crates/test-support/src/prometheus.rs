//! Prometheus's own checker, `promtool` (Debian's `prometheus` package, which the README's test
//! command installs), run on what trawl exposes and on its alert rules.
use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `promtool <args>` with `stdin`; panics with its output unless it succeeds. A missing
/// promtool fails the test, never skips it.
pub fn promtool(args: &[&str], stdin: &str) -> String {
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| {
            panic!(
                "promtool cannot run ({err}); run the suite with `deploy/dev.sh test`, which \
                 installs Debian's prometheus package, or install it"
            )
        });
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin.as_bytes())
        .expect("promtool reads its input");
    let output = child.wait_with_output().expect("promtool ran");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// `promtool check metrics` on a text exposition: its format and Prometheus's naming rules
/// (counters end in `_total`, units in base units, help on every metric).
pub fn check_metrics(exposition: &str) {
    promtool(&["check", "metrics"], exposition);
}

/// The value of the sample `series` (name and labels exactly as exposed) in `exposition`.
pub fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}

/// `sample`, for a series that must be there: panics showing the whole exposition otherwise.
pub fn value(exposition: &str, series: &str) -> f64 {
    sample(exposition, series).unwrap_or_else(|| panic!("no {series} in:\n{exposition}"))
}

/// Asserts each `(series, value)` of `expected` in `exposition`.
pub fn assert_samples(exposition: &str, expected: &[(&str, f64)]) {
    for (series, want) in expected {
        assert_eq!(
            value(exposition, series),
            *want,
            "{series} in:\n{exposition}"
        );
    }
}
