//! The fault matrix: each of the sandbox's fault knobs alone, then all together, against 120
//! targets. Whatever the server does, `apply` must end with exactly one copy per target, and its
//! report must match what the server holds, and each knob must have fired (a knob that silently
//! stopped injecting would make the test pass for nothing). The truth is read from the sandbox,
//! not the tool.

use crate::support::seed::{CLIENT_ID, CLIENT_SECRET};
use crate::support::{BULK, HANG_GUARD, World};
use replicate::sandbox::SandboxConfig;
use serde_json::Value;
use std::time::Duration;

const TARGETS: usize = 120;

/// A fault knob, and how `/_sandbox/stats` shows that it fired during a run.
#[derive(Debug, Clone, Copy)]
enum Knob {
    /// `--fail-rate`: requests answered 500 or 503.
    Fail,
    /// `--lost-response-rate`: writes that took effect, their answers lost.
    Lose,
    /// `--rate-limit`: requests answered 429.
    RateLimit,
    /// `--token-ttl`: tokens expired, so the run exchanged its credentials more than once.
    TokenTtl,
    /// `--create-delay`: every create the server carried out was held.
    CreateDelay,
}

impl Knob {
    /// The counter that shows the knob at work, and the least it must read.
    fn counter(self, stats: &Value) -> (&'static str, u64, u64) {
        let count = |v: &Value| v.as_u64().unwrap_or(0);
        match self {
            Knob::Fail => ("faults.failed", count(&stats["faults"]["failed"]), 1),
            Knob::Lose => ("faults.lost", count(&stats["faults"]["lost"]), 1),
            Knob::RateLimit => (
                "faults.rate_limited",
                count(&stats["faults"]["rate_limited"]),
                1,
            ),
            Knob::TokenTtl => (
                "requests.POST /applications/token",
                count(&stats["requests"]["POST /applications/token"]),
                2,
            ),
            Knob::CreateDelay => (
                "faults.delayed",
                count(&stats["faults"]["delayed"]),
                TARGETS as u64,
            ),
        }
    }
}

/// Applies the bulk plan with application credentials (so tokens expire and are refreshed),
/// checks the outcome against the sandbox, and checks that each of `knobs` fired.
fn converges(name: &str, knobs: &[Knob], faults: impl FnOnce(&mut SandboxConfig)) {
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
        .timeout(HANG_GUARD)
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

    let stats = world.stats();
    for knob in knobs {
        let (counter, seen, least) = knob.counter(&stats);
        assert!(
            seen >= least,
            "{name}: {knob:?} did not fire ({counter} is {seen}, at least {least} expected): {stats}"
        );
    }
}

#[test]
fn failing_requests() {
    converges("fail-rate 0.25", &[Knob::Fail], |c| c.fail_rate = 0.25);
}

#[test]
fn lost_responses() {
    converges("lost-response-rate 0.3", &[Knob::Lose], |c| {
        c.lost_response_rate = 0.3;
    });
}

#[test]
fn rate_limit() {
    converges("rate-limit 35", &[Knob::RateLimit], |c| {
        c.rate_limit = Some(35);
    });
}

#[test]
fn expiring_tokens() {
    // With 100 ms per answer, 8 at a time, the ~240 requests take at least 3 s, whatever the
    // machine: longer than a token lives, so the run must exchange its credentials again.
    converges("token-ttl 2s", &[Knob::TokenTtl], |c| {
        c.token_ttl = Duration::from_secs(2);
        c.latency = Duration::from_millis(100);
    });
}

#[test]
fn slow_creates() {
    converges("create-delay 300ms", &[Knob::CreateDelay], |c| {
        c.create_delay = Duration::from_millis(300);
    });
}

#[test]
fn everything_at_once() {
    // The creates alone take at least 120 × 200 ms / 8 = 3 s, longer than a token lives.
    let every = [
        Knob::Fail,
        Knob::Lose,
        Knob::RateLimit,
        Knob::TokenTtl,
        Knob::CreateDelay,
    ];
    converges("all faults", &every, |c| {
        c.fail_rate = 0.2;
        c.lost_response_rate = 0.25;
        c.rate_limit = Some(35);
        c.token_ttl = Duration::from_secs(2);
        c.create_delay = Duration::from_millis(200);
        c.latency = Duration::from_millis(5);
    });
}
