//! `replicate status` reads each copy's last sync once (issue 15): the copies the plan owns as
//! soon as the connections are listed, the others once the targets are decided, and with
//! `--target` only the copies it keeps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{BULK, World};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// `replicate status PLAN --output json [args]`: the document, and how many `GET /jobs` it sent.
fn status(world: &World, plan: &std::path::Path, args: &[&str]) -> (Value, u64) {
    let before = world.requests("GET /jobs");
    let output = world
        .replicate()
        .args(["status", "--output", "json"])
        .args(args)
        .arg(plan)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let reads = world.requests("GET /jobs") - before;
    (serde_json::from_slice(&output.stdout).unwrap(), reads)
}

/// `apply --yes` (with `extra` flags); must succeed.
fn apply(world: &World, plan: &std::path::Path, extra: &[&str]) {
    world
        .replicate()
        .args(["apply", "--yes"])
        .args(extra)
        .arg(plan)
        .assert()
        .success();
}

/// Eight copies the plan owns, two it does not (another plan made them, and synced them), two
/// targets without a copy: ten reads, one per copy, and each row's last sync is its own.
#[test]
fn status_reads_each_copy_once_owned_or_not() {
    let world = World::with(|c| {
        c.extra_sources = 12;
        c.job_duration = Duration::from_millis(100);
    });
    let plan = world.plan(
        "bulk.yaml",
        &BULK.replace(
            "  - match: \"bulk-*\"",
            "  - match: \"bulk-*\"\n    exclude: [\"bulk-000009\", \"bulk-00001*\"]",
        ),
    );
    apply(&world, &plan, &[]);
    let other = world.plan(
        "other.yaml",
        "version: 1\ntemplate: \"shop-template → Warehouse\"\ntargets:\n  - source: bulk-000009\n  \
         - source: bulk-000010\ndefaults:\n  prefix: \"{source.name|slug}_\"\n",
    );
    apply(
        &world,
        &other,
        &["--sync", "--wait", "--poll-interval", "50ms"],
    );
    std::fs::write(&plan, BULK).unwrap();

    let (doc, reads) = status(&world, &plan, &[]);
    assert_eq!(reads, 10, "one jobs request per copy");
    let summary = &doc["summary"];
    assert_eq!(summary["targets"], 12, "{summary}");
    assert_eq!(summary["inLine"], 8, "{summary}");
    assert_eq!(summary["drifted"], 2, "not tagged by this plan: {summary}");
    assert_eq!(summary["missing"], 2, "{summary}");
    assert_eq!(summary["syncedOk"], 2, "{summary}");
    assert_eq!(summary["neverSynced"], 8, "{summary}");
    let jobs: BTreeMap<String, Value> = world.get("/jobs?limit=100")["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["connectionId"].as_str().unwrap().to_string(), j.clone()))
        .collect();
    assert_eq!(jobs.len(), 2);
    for row in doc["targets"].as_array().unwrap() {
        let Some(id) = row["connectionId"].as_str() else {
            continue;
        };
        match jobs.get(id) {
            Some(job) => assert_eq!(row["lastSync"]["jobId"], job["jobId"], "{row:#}"),
            None => assert_eq!(row["lastSync"], Value::Null, "{row:#}"),
        }
    }
}

/// `--target` keeps one copy of twelve: only its last sync is read.
#[test]
fn status_with_target_reads_only_the_kept_copies() {
    let world = World::with(|c| c.extra_sources = 12);
    let plan = world.plan("bulk.yaml", BULK);
    apply(&world, &plan, &[]);
    let (doc, reads) = status(&world, &plan, &["--target", "bulk-000003"]);
    assert_eq!(reads, 1);
    let rows = doc["targets"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["sourceName"], "bulk-000003");
    assert_eq!(rows[0]["state"], "in_line");
}
