//! What a user sees when the server is slow or says odd things: a slow create is never made
//! twice, names from the server and values from the plan cannot drive the terminal, and
//! duplicate copies are named as they are. The truth is the sandbox's own state, read through its
//! API.

#![allow(clippy::unwrap_used)] // helpers shared by the tests below

mod support;

use replicate::sandbox::seed::{SeedConnection, SeedSource};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use support::{BULK, World};
use uuid::Uuid;

const TEMPLATE_ID: &str = "c0000000-0000-4000-8000-000000000001";
const WAREHOUSE_ID: &str = "de570000-0000-4000-8000-000000000001";

fn read_report(world: &World, name: &str) -> Value {
    let path = world.dir.path().join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

/// The report's rows by source id.
fn rows(report: &Value) -> BTreeMap<Uuid, Value> {
    report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["sourceId"].as_str().unwrap().parse().unwrap(), t.clone()))
        .collect()
}

/// The copies the server holds, by source: their ids.
fn server_copies(world: &World) -> BTreeMap<Uuid, Vec<Uuid>> {
    let template: Uuid = TEMPLATE_ID.parse().unwrap();
    let warehouse: Uuid = WAREHOUSE_ID.parse().unwrap();
    let mut copies: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
    for c in world.connections() {
        if c.connection_id != template && c.destination_id == warehouse {
            copies.entry(c.source_id).or_default().push(c.connection_id);
        }
    }
    copies
}

/// The report tells the truth about what the server holds: every `created` row's copy exists,
/// and every copy on the server is a `created` row, or (`unknown_allowed`) a row that says its
/// create may or may not have happened. Returns how many rows were created.
fn report_matches_server(world: &World, report: &Value, unknown_allowed: bool) -> usize {
    let rows = rows(report);
    let copies = server_copies(world);
    assert!(
        copies.values().all(|ids| ids.len() == 1),
        "a copy was made twice: {copies:?}"
    );
    let mut created = 0;
    for (source, row) in &rows {
        if row["outcome"] == "created" {
            created += 1;
            let id: Uuid = row["connectionId"].as_str().unwrap().parse().unwrap();
            assert_eq!(
                copies.get(source),
                Some(&vec![id]),
                "the report says created, the server disagrees: {row}"
            );
        }
    }
    for source in copies.keys() {
        let row = &rows[source];
        let unknown = row["outcome"] == "failed"
            && row["error"]
                .as_str()
                .is_some_and(|e| e.contains("may or may not exist"));
        assert!(
            row["outcome"] == "created" || (unknown_allowed && unknown),
            "the server holds a copy the report does not tell of: {row}"
        );
    }
    assert_eq!(
        report["summary"]["created"].as_u64().unwrap(),
        created as u64,
        "the summary counts the rows"
    );
    created
}

#[test]
fn a_create_slower_than_the_request_timeout_is_made_once() {
    let world = World::with(|c| {
        c.extra_sources = 20;
        c.create_delay = Duration::from_millis(1500);
    });
    let plan = world.plan("bulk.yaml", BULK);
    let output = world
        .replicate()
        .args(["apply", "--yes", "--request-timeout", "1s"])
        .args(["--report", "report.json"])
        .arg(&plan)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let copies = server_copies(&world);
    assert!(
        copies.values().all(|ids| ids.len() == 1),
        "copies per source: {:?}",
        copies.values().map(Vec::len).collect::<Vec<_>>()
    );
    assert_eq!(copies.len(), 20, "every source has its copy");
    assert!(output.status.success(), "{stdout}");
    let report = read_report(&world, "report.json");
    assert_eq!(report_matches_server(&world, &report, false), 20);
}

/// A source whose name holds a screen clear, a window-title sequence and an 8-bit CSI.
const HOSTILE_NAME: &str = "shop-\u{1b}[2J\u{1b}]0;pwned\u{7}x\u{9b}31m\r\u{7f}";

#[test]
fn escape_sequences_from_the_server_are_shown_escaped() {
    let world = World::with(|c| {
        let source: SeedSource = serde_json::from_value(
            serde_json::json!({"name": HOSTILE_NAME, "type": "postgres", "catalog": "shop"}),
        )
        .unwrap();
        c.seed.sources.push(source);
    });
    let plan = world.plan(
        "shops.yaml",
        "version: 1\ntemplate: \"shop-template → Warehouse\"\ntargets:\n  - match: \"shop-*\"\n",
    );
    let output = world.replicate().arg("plan").arg(&plan).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() || output.status.code() == Some(1));
    let raw_control = |s: &str| s.chars().any(|c| c.is_control() && c != '\n' && c != '\t');
    assert!(!raw_control(&stdout), "raw control characters: {stdout:?}");
    assert!(
        stdout.contains(r"shop-\u{1b}[2J\u{1b}]0;pwned\u{7}x\u{9b}31m\u{d}\u{7f}"),
        "{stdout}"
    );

    // A plan value in an error, printed by the command line itself.
    let plan = world.plan(
        "bad.yaml",
        "version: 1\ntemplate: \"nope\\e]0;pwned\\a\"\ntargets:\n  - match: \"shop-*\"\n",
    );
    let output = world.replicate().arg("plan").arg(&plan).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!raw_control(&stderr), "raw control characters: {stderr:?}");
    assert!(stderr.contains(r"nope\u{1b}]0;pwned\u{7}"), "{stderr}");
}

#[test]
fn two_copies_with_the_plans_name_are_named_truthfully() {
    let first = Uuid::from_u128(0xd0_0001);
    let second = Uuid::from_u128(0xd0_0002);
    let world = World::with(|c| {
        for id in [first, second] {
            let copy: SeedConnection = serde_json::from_value(serde_json::json!({
                "name": "shop-eu → Warehouse", "id": id,
                "source": "shop-eu", "destination": "Warehouse",
            }))
            .unwrap();
            c.seed.connections.push(copy);
        }
    });
    let plan = world.plan(
        "eu.yaml",
        "version: 1\ntemplate: \"shop-template → Warehouse\"\ntargets:\n  - source: shop-eu\n",
    );
    let output = world.replicate().arg("plan").arg(&plan).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let line = stdout.lines().find(|l| l.starts_with('!')).unwrap();
    assert!(!line.contains("none named"), "{line}");
    assert!(
        line.contains("both named \"shop-eu → Warehouse\""),
        "says both carry the plan's name: {line}"
    );
    assert!(
        line.contains(&first.to_string()) && line.contains(&second.to_string()),
        "{line}"
    );
}
