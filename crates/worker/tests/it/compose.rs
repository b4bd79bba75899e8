//! `deploy/docker-compose.yml` parsed by a real Compose (`docker compose`, else Debian's
//! `docker-compose`, which needs no daemon; `deploy/dev.sh test` names it in TRAWL_COMPOSE):
//! valid with and without the `cluster` profile, and the profile's URLs are ones trawl accepts.
use std::path::Path;
use std::process::Command;

fn compose(args: &[&str], env: &[(&str, &str)]) -> String {
    let program = std::env::var("TRAWL_COMPOSE")
        .expect("TRAWL_COMPOSE must name a Compose command (deploy/dev.sh test sets it)");
    let mut words = program.split_whitespace();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/docker-compose.yml");
    let out = Command::new(words.next().expect("a command"))
        .args(words)
        .arg("-f")
        .arg(&file)
        .args(args)
        .env("TRAWL_API_KEYS", "compose-test")
        .envs(env.iter().copied())
        .output()
        .expect("compose runs");
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn the_compose_file_is_valid_and_its_cluster_profile_adds_a_redis_cluster_and_a_grid() {
    let plain = compose(&["config"], &[]);
    for service in ["worker", "scheduler", "api", "redis", "postgres"] {
        let block = service_block(&plain, service);
        assert!(
            !block.contains("profiles:"),
            "{service} runs without a profile:\n{block}"
        );
    }
    for service in (1..=6)
        .map(|n| format!("redis-node-{n}"))
        .chain(["redis-cluster-init", "selenium-hub", "selenium-node"].map(String::from))
    {
        let block = service_block(&plain, &service);
        assert!(
            block.contains("profiles:\n    - cluster\n"),
            "{service} is opt-in (profile cluster):\n{block}"
        );
    }

    let url = "redis+cluster://redis-node-1:6379,redis-node-2:6379,redis-node-3:6379";
    let resolved = compose(
        &["--profile", "cluster", "config"],
        &[
            ("TRAWL_REDIS_URL", url),
            ("TRAWL_WEBDRIVER_URL", "http://selenium-hub:4444"),
        ],
    );
    assert!(
        resolved.contains(&format!("REDIS_URL: {url}")),
        "{resolved}"
    );
    assert!(resolved.contains("WEBDRIVER_URL: http://selenium-hub:4444"));
    let queue_core::RedisTarget::Cluster(nodes) = queue_core::RedisTarget::parse(url).unwrap()
    else {
        panic!("{url} is a cluster URL");
    };
    assert_eq!(nodes.len(), 3);
    assert!(plain.contains("REDIS_URL: redis://redis:6379"), "{plain}");
}

/// The lines of `service` in `compose config`'s output (services two spaces in, their
/// settings deeper).
fn service_block(config: &str, service: &str) -> String {
    let header = format!("  {service}:");
    let mut lines = config
        .lines()
        .skip_while(|line| *line != "services:")
        .skip_while(|line| *line != header);
    assert!(lines.next().is_some(), "service {service} in:\n{config}");
    let block: Vec<&str> = lines.take_while(|line| line.starts_with("   ")).collect();
    block.join("\n") + "\n"
}
