//! The fault matrix: each of the sandbox's fault knobs alone, then all together, against 120
//! targets. Whatever the server does, `apply` must end with exactly one copy per target, and its
//! report must match what the server holds. The truth is read from the sandbox, not the tool.

use crate::support::seed::{CLIENT_ID, CLIENT_SECRET};
use crate::support::{BULK, World};
use replicate::sandbox::SandboxConfig;
use std::time::Duration;

const TARGETS: usize = 120;

/// Applies the bulk plan with application credentials (so tokens expire and are refreshed)
/// and checks the outcome against the sandbox.
fn converges(name: &str, faults: impl FnOnce(&mut SandboxConfig)) {
    let world = World::with(|c| {
        c.extra_sources = TARGETS;
        c.fault_seed = Some(7);
        faults(c);
    });
    let plan = world.plan("bulk.yaml", BULK);
    let output = world
        .replicate()
        .env_remove("AIRBYTE_TOKEN")
        .env("AIRBYTE_CLIENT_ID", CLIENT_ID)
        .env("AIRBYTE_CLIENT_SECRET", CLIENT_SECRET)
        .args([
            "apply",
            "--yes",
            "--concurrency",
            "8",
            "-v",
            "--report",
            "report.json",
        ])
        .arg(&plan)
        .timeout(Duration::from_secs(240))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{name}: {stdout}\n{stderr}");
    assert!(
        !stderr.contains(CLIENT_SECRET) && !stdout.contains(CLIENT_SECRET),
        "{name}: a secret was shown"
    );
    assert!(!stderr.contains("sbx."), "{name}: a token was shown");

    let copies = world.copies_per_source();
    assert_eq!(copies.len(), TARGETS, "{name}: every target has a copy");
    assert!(
        copies.values().all(|&n| n == 1),
        "{name}: a copy was made twice: {copies:?}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(world.dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(
        report["summary"]["created"], TARGETS,
        "{name}: {}",
        report["summary"]
    );
    assert_eq!(report["summary"]["failed"], 0, "{name}");
    let live: std::collections::HashSet<String> = world
        .connections()
        .iter()
        .map(|c| c.connection_id.to_string())
        .collect();
    for target in report["targets"].as_array().unwrap() {
        let id = target["connectionId"].as_str().unwrap();
        assert!(
            live.contains(id),
            "{name}: the report names a copy the server does not have"
        );
    }
}

#[test]
fn failing_requests() {
    converges("fail-rate 0.25", |c| c.fail_rate = 0.25);
}

#[test]
fn lost_responses() {
    converges("lost-response-rate 0.3", |c| c.lost_response_rate = 0.3);
}

#[test]
fn rate_limit() {
    converges("rate-limit 35", |c| c.rate_limit = Some(35));
}

#[test]
fn expiring_tokens() {
    converges("token-ttl 2s", |c| c.token_ttl = Duration::from_secs(2));
}

#[test]
fn slow_creates() {
    converges("create-delay 300ms", |c| {
        c.create_delay = Duration::from_millis(300);
    });
}

#[test]
fn everything_at_once() {
    converges("all faults", |c| {
        c.fail_rate = 0.2;
        c.lost_response_rate = 0.25;
        c.rate_limit = Some(35);
        c.token_ttl = Duration::from_secs(2);
        c.create_delay = Duration::from_millis(200);
        c.latency = Duration::from_millis(5);
    });
}
