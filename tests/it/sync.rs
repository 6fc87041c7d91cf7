//! First syncs and the fleet's state (SPEC §10), end to end: `apply --sync --wait` starts exactly
//! one job per new copy, never more starts at once than `--sync-concurrency`, fails the targets
//! whose sync fails; a lost answer never makes a second job; `status` tells what the sandbox
//! holds. The truth is the sandbox's jobs list and `/_sandbox/stats`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{BULK, World};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Every job the sandbox holds, by connection id.
fn jobs_by_connection(world: &World) -> BTreeMap<String, Vec<Value>> {
    let mut all = BTreeMap::<String, Vec<Value>>::new();
    let mut offset = 0;
    loop {
        let page = world.get(&format!("/jobs?limit=100&offset={offset}"));
        let data = page["data"].as_array().unwrap().clone();
        for job in &data {
            all.entry(job["connectionId"].as_str().unwrap().to_string())
                .or_default()
                .push(job.clone());
        }
        if data.len() < 100 {
            return all;
        }
        offset += 100;
    }
}

#[test]
fn apply_sync_wait_starts_one_job_per_new_copy_a_few_at_a_time() {
    let world = World::with(|c| {
        c.extra_sources = 40;
        c.latency = Duration::from_millis(30);
        c.job_duration = Duration::from_millis(300);
    });
    let plan = world.plan("bulk.yaml", BULK);
    let output = world
        .replicate()
        .args([
            "apply",
            "--yes",
            "--sync",
            "--wait",
            "--poll-interval",
            "100ms",
            "--sync-concurrency",
            "3",
            "--report",
            "report.json",
        ])
        .arg(&plan)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("Syncs: 40 started, 40 succeeded, 0 failed."),
        "{stdout}"
    );

    let jobs = jobs_by_connection(&world);
    let copies = world.copies_per_source();
    assert_eq!(copies.len(), 40);
    assert_eq!(jobs.len(), 40, "one connection per job");
    assert!(jobs.values().all(|j| j.len() == 1), "one job per copy");
    assert!(jobs.values().flatten().all(|j| j["status"] == "succeeded"));
    let stats = world.stats();
    let most = stats["max_in_flight_by_route"]["POST /jobs"]
        .as_u64()
        .unwrap();
    assert!((1..=3).contains(&most), "{most} starts at once: {stats:#}");

    let report: Value =
        serde_json::from_slice(&std::fs::read(world.dir.path().join("report.json")).unwrap())
            .unwrap();
    for row in report["targets"].as_array().unwrap() {
        let connection = row["connectionId"].as_str().unwrap();
        let job = &jobs[connection][0];
        assert_eq!(row["syncJobId"], job["jobId"], "{row:#}");
        assert_eq!(row["syncStatus"], "succeeded");
    }

    // A re-run creates nothing, so it starts no sync.
    world
        .replicate()
        .args(["apply", "--yes", "--sync"])
        .arg(&plan)
        .assert()
        .success();
    assert_eq!(world.requests("POST /jobs"), 40);
}

#[test]
fn a_failed_sync_fails_its_target() {
    let world = World::with(|c| {
        c.extra_sources = 30;
        c.job_duration = Duration::from_millis(200);
        c.job_fail_rate = 0.2;
        c.fault_seed = Some(5);
    });
    let plan = world.plan("bulk.yaml", BULK);
    let output = world
        .replicate()
        .args([
            "apply",
            "--yes",
            "--sync",
            "--wait",
            "--poll-interval",
            "100ms",
        ])
        .args(["--report", "report.json"])
        .arg(&plan)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let failed: Vec<String> = jobs_by_connection(&world)
        .into_iter()
        .filter(|(_, jobs)| jobs[0]["status"] == "failed")
        .map(|(connection, _)| connection)
        .collect();
    assert!(!failed.is_empty(), "the knob made some syncs fail");
    let report: Value =
        serde_json::from_slice(&std::fs::read(world.dir.path().join("report.json")).unwrap())
            .unwrap();
    let mut reported: Vec<String> = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["syncStatus"] == "failed")
        .map(|t| {
            assert!(t["error"].as_str().unwrap().contains("first sync"), "{t:#}");
            assert_eq!(t["outcome"], "created", "the copy itself was made");
            t["connectionId"].as_str().unwrap().to_string()
        })
        .collect();
    reported.sort();
    assert_eq!(reported, failed);
    assert_eq!(report["summary"]["syncFailed"], failed.len());
}

#[test]
fn a_lost_start_never_makes_a_second_job() {
    let world = World::with(|c| {
        c.extra_sources = 40;
        c.lost_response_rate = 0.3;
        c.fault_seed = Some(9);
        c.job_duration = Duration::from_secs(5);
    });
    let plan = world.plan("bulk.yaml", BULK);
    let output = world
        .replicate()
        .args(["apply", "--yes", "--sync"])
        .arg(&plan)
        .timeout(Duration::from_secs(240))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        world.stats()["faults"]["lost"].as_u64().unwrap() > 0,
        "answers were lost"
    );
    let jobs = jobs_by_connection(&world);
    assert_eq!(jobs.len(), 40, "every new copy has its sync");
    let twice: Vec<&String> = jobs
        .iter()
        .filter(|(_, j)| j.len() > 1)
        .map(|(c, _)| c)
        .collect();
    assert!(twice.is_empty(), "two jobs for {twice:?}");
}

#[test]
fn status_tells_what_the_sandbox_holds() {
    let world = World::with(|c| {
        c.extra_sources = 12;
        c.job_duration = Duration::from_millis(100);
    });
    let plan = world.plan(
        "bulk.yaml",
        &BULK.replace(
            "  - match: \"bulk-*\"",
            "  - match: \"bulk-*\"\n    exclude: [\"bulk-00001[12]\"]",
        ),
    );
    world
        .replicate()
        .args([
            "apply",
            "--yes",
            "--sync",
            "--wait",
            "--poll-interval",
            "50ms",
        ])
        .arg(&plan)
        .assert()
        .success();
    // One copy drifts by hand; two more targets appear without copies.
    let drifted = world.connection_named("bulk-000001 → Warehouse").unwrap();
    world.patch(
        drifted.connection_id,
        &serde_json::json!({"prefix": "by_hand_"}),
    );
    std::fs::write(&plan, BULK).unwrap();

    let before = world.stats()["requests"].clone();
    let output = world
        .replicate()
        .args(["status", "--output", "json"])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let after = world.stats()["requests"].clone();
    let delta = |r: &str| after[r].as_u64().unwrap_or(0) - before[r].as_u64().unwrap_or(0);
    assert_eq!(delta("GET /streams"), 0, "status reads no catalog");
    assert_eq!(delta("GET /jobs"), 10, "one jobs request per copy");
    for write in [
        "POST /connections",
        "PATCH /connections/{connectionId}",
        "POST /jobs",
    ] {
        assert_eq!(delta(write), 0, "status writes nothing");
    }

    let doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    let jobs = jobs_by_connection(&world);
    let summary = &doc["summary"];
    assert_eq!(summary["targets"], 12);
    assert_eq!(summary["inLine"], 9);
    assert_eq!(summary["drifted"], 1);
    assert_eq!(summary["missing"], 2);
    assert_eq!(summary["syncedOk"], 10);
    for row in doc["targets"].as_array().unwrap() {
        match row["connectionId"].as_str() {
            None => assert_eq!(row["state"], "missing", "{row:#}"),
            Some(id) => {
                let truth = world
                    .connections()
                    .into_iter()
                    .find(|c| c.connection_id.to_string() == id)
                    .unwrap();
                assert_eq!(row["name"], truth.name);
                assert_eq!(row["lastSync"]["jobId"], jobs[id][0]["jobId"]);
                assert_eq!(row["lastSync"]["status"], "succeeded");
                let want = if id == drifted.connection_id.to_string() {
                    "drifted"
                } else {
                    "in_line"
                };
                assert_eq!(row["state"], want, "{row:#}");
            }
        }
    }
}
