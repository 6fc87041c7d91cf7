//! Interrupts: Ctrl-C winds a run down truthfully; `kill -9` at any moment is repaired by a
//! re-run, with no copy made twice. The truth is the sandbox's own state.

use crate::support::{BULK, World, wait_until};
use std::process::Stdio;
use std::time::Duration;

/// Waits until the sandbox has seen `n` creates, so a signal lands mid-run.
fn wait_for_creates(world: &World, n: u64) {
    wait_until("the run getting going", || {
        world.requests("POST /connections") >= n
    });
}

#[test]
fn ctrl_c_stops_new_creates_reports_truthfully_and_exits_130() {
    let world = World::with(|c| {
        c.extra_sources = 200;
        c.latency = Duration::from_millis(50);
    });
    let plan = world.plan("bulk.yaml", BULK);
    let child = world
        .replicate_process()
        .args([
            "apply",
            "--yes",
            "--concurrency",
            "2",
            "--report",
            "report.json",
        ])
        .arg(&plan)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_creates(&world, 5);
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(130), "{stdout}");
    assert!(
        stdout.contains("Apply: "),
        "the summary is printed: {stdout}"
    );

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(world.dir.path().join("report.json")).unwrap())
            .unwrap();
    let copies = world.copies_per_source();
    let created = usize::try_from(report["summary"]["created"].as_u64().unwrap()).unwrap();
    assert_eq!(
        created as usize,
        copies.len(),
        "the report matches the server"
    );
    assert!(copies.values().all(|&n| n == 1));
    assert!(created < 200, "the interrupt stopped the run early");
    let not_run = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["outcome"] == "not_run")
        .count();
    assert_eq!(
        created as usize + not_run,
        200,
        "every target is accounted for"
    );
}

#[test]
fn kill_9_mid_run_then_a_rerun_converges_without_duplicates() {
    let world = World::with(|c| {
        c.extra_sources = 120;
        c.latency = Duration::from_millis(30);
    });
    let plan = world.plan("bulk.yaml", BULK);
    let mut child = world
        .replicate_process()
        .args(["apply", "--yes", "--concurrency", "4"])
        .arg(&plan)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_creates(&world, 20);
    child.kill().unwrap();
    child.wait().unwrap();
    let before = world.copies_per_source();
    assert!(before.len() < 120, "killed before the end");

    // The killed run's lease goes stale after the re-run's request timeout and a little more.
    world
        .replicate()
        .args([
            "apply",
            "--yes",
            "--request-timeout",
            "5s",
            "--lock-timeout",
            "60s",
        ])
        .arg(&plan)
        .assert()
        .success();
    let after = world.copies_per_source();
    assert_eq!(after.len(), 120);
    assert!(after.values().all(|&n| n == 1), "{after:?}");
}
