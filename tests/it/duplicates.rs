//! Owned duplicates (issue 12), end to end: a fleet whose targets have two or more copies that
//! carry the owner tag, as races the lease cannot see leave it. The seed makes them, with fixed
//! ids and `createdAt` (Airbyte's seconds), so which copy is the oldest is known, and two copies
//! made in the same second are told apart by their ids. What was deleted is read from the
//! sandbox's own API (`includeDeleted`) and `/_sandbox/stats`, never from replicate's output.

use crate::support::World;
use replicate::sandbox::seed::{SeedConnection, SeedTag};
use replicate::wire::{ConnectionResponse, ConnectionStatus};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

const OWNER: &str = "replicate:dups";
/// When the first copies were made (seconds since the epoch, as Airbyte's `createdAt`).
const T: i64 = 1_764_000_000;

/// shop-eu's oldest owned copy: the one kept, although its id is the largest of the three.
const EU_OLDEST: &str = "d0000000-0000-4000-8000-0000000000e9";
/// shop-eu's newer owned copies, made in the same second.
const EU_A: &str = "d0000000-0000-4000-8000-0000000000e1";
const EU_B: &str = "d0000000-0000-4000-8000-0000000000e2";
/// shop-us's two owned copies, made in the same second: the smaller id is kept.
const US_KEPT: &str = "d0000000-0000-4000-8000-0000000000a1";
const US_DUPLICATE: &str = "d0000000-0000-4000-8000-0000000000a2";
/// shop-apac's one owned copy, and an older one made by hand (no owner tag) with the name the
/// plan renders: the owned one is the copy, the other is never deleted.
const APAC_OWNED: &str = "d0000000-0000-4000-8000-0000000000b2";
const APAC_BY_HAND: &str = "d0000000-0000-4000-8000-0000000000b1";

/// The shops (shop-latam has no copy yet), owned by [`OWNER`], each writing its own tables.
const PLAN: &str = "version: 1\ntemplate: \"shop-template → Warehouse\"\ntargets:\n  - match: \
                    \"shop-*\"\n    type: postgres\n    exclude: [\"shop-legacy\"]\nowner: \
                    \"replicate:dups\"\ndefaults:\n  prefix: \"{source.name|slug}_\"\n";

fn id(id: &str) -> Uuid {
    id.parse().unwrap()
}

/// A sandbox whose seed adds the owner tag and `copies`: (id, source, name, createdAt, owned).
fn world_with(copies: &[(&str, &str, &str, i64, bool)]) -> World {
    World::with(|c| {
        c.seed.tags.push(
            serde_json::from_value::<SeedTag>(json!({"name": OWNER, "color": "4F46E5"})).unwrap(),
        );
        for (id, source, name, created_at, owned) in copies {
            let tags: &[&str] = if *owned { &[OWNER] } else { &[] };
            c.seed.connections.push(
                serde_json::from_value::<SeedConnection>(json!({
                    "id": id, "name": name, "source": source, "destination": "Warehouse",
                    "createdAt": created_at, "tags": tags
                }))
                .unwrap(),
            );
        }
    })
}

/// The fleet described by the constants above. shop-us's duplicate is seeded first, so the
/// listing's order is not what decides.
fn fleet() -> World {
    world_with(&[
        (EU_A, "shop-eu", "shop-eu → Warehouse", T + 100, true),
        (EU_OLDEST, "shop-eu", "shop-eu (first)", T, true),
        (EU_B, "shop-eu", "shop-eu → Warehouse", T + 100, true),
        (
            US_DUPLICATE,
            "shop-us",
            "shop-us → Warehouse",
            T + 200,
            true,
        ),
        (US_KEPT, "shop-us", "shop-us → Warehouse", T + 200, true),
        (APAC_BY_HAND, "shop-apac", "shop-apac → Warehouse", T, false),
        (APAC_OWNED, "shop-apac", "apac (renamed)", T + 300, true),
    ])
}

/// The duplicates, each with the copy it duplicates.
fn duplicates() -> BTreeMap<Uuid, Uuid> {
    [
        (EU_A, EU_OLDEST),
        (EU_B, EU_OLDEST),
        (US_DUPLICATE, US_KEPT),
    ]
    .map(|(d, kept)| (id(d), id(kept)))
    .into()
}

/// Runs replicate with `args` then the plan file; returns the exit code, stdout and stderr.
fn run(world: &World, args: &[&str]) -> (Option<i32>, String, String) {
    let plan = world.plan("dups.yaml", PLAN);
    let output = world.replicate().args(args).arg(&plan).output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Every connection, deleted ones too.
fn every_connection(world: &World) -> Vec<ConnectionResponse> {
    let page = world.get("/connections?includeDeleted=true&limit=100");
    let all: Vec<ConnectionResponse> = serde_json::from_value(page["data"].clone()).unwrap();
    assert!(all.len() < 100, "one page holds them all");
    all
}

fn deleted(world: &World) -> BTreeSet<Uuid> {
    every_connection(world)
        .into_iter()
        .filter(|c| c.status == ConnectionStatus::Deprecated)
        .map(|c| c.connection_id)
        .collect()
}

/// The live copies into the warehouse by source name, the template left out.
fn live_copies(world: &World) -> BTreeMap<String, BTreeSet<Uuid>> {
    let names: BTreeMap<String, String> = crate::support::seed::SOURCES
        .iter()
        .map(|(name, _, id)| ((*id).to_string(), (*name).to_string()))
        .collect();
    let mut by_source: BTreeMap<String, BTreeSet<Uuid>> = BTreeMap::new();
    for c in world.connections() {
        if c.connection_id != id(crate::support::seed::TEMPLATE) {
            let source = names[&c.source_id.to_string()].clone();
            by_source.entry(source).or_default().insert(c.connection_id);
        }
    }
    by_source
}

/// The rows of a JSON document, by source name and action: their connection ids.
fn rows(doc: &Value, action: &str) -> BTreeMap<Uuid, (String, Value)> {
    doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["action"] == action)
        .map(|t| {
            let id = id(t["connectionId"].as_str().unwrap());
            (
                id,
                (t["sourceName"].as_str().unwrap().to_string(), t.clone()),
            )
        })
        .collect()
}

#[test]
fn plan_lists_the_duplicates_and_fails_without_prune() {
    let world = fleet();
    let (code, out, err) = run(&world, &["plan"]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains(&format!(
            "3 duplicate copies owned by this plan (prune: true deletes them):\n    shop-eu  \
             shop-eu → Warehouse ({EU_A}; a duplicate of {EU_OLDEST})\n    shop-eu  shop-eu → \
             Warehouse ({EU_B}; a duplicate of {EU_OLDEST})\n    shop-us  shop-us → Warehouse \
             ({US_DUPLICATE}; a duplicate of {US_KEPT})\n"
        )),
        "{out}"
    );
    assert!(
        out.contains(
            "Plan: 1 to create, 3 to update, 0 unchanged, 0 errors; 3 duplicates left in place.\n"
        ),
        "{out}"
    );
    assert!(!out.contains("\n- "), "no delete row without prune: {out}");
    assert!(!out.contains("\n! "), "no target is ambiguous: {out}");

    let (code, out, err) = run(&world, &["plan", "--output", "json"]);
    assert_eq!(code, Some(1), "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["summary"]["duplicates"], 3, "{}", doc["summary"]);
    assert_eq!(doc["summary"]["delete"], 0);
    assert_eq!(doc["summary"]["error"], 0);
    assert_eq!(doc["prune"], "off");
    let listed: BTreeMap<Uuid, Uuid> = doc["duplicates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                id(d["connectionId"].as_str().unwrap()),
                id(d["duplicateOf"].as_str().unwrap()),
            )
        })
        .collect();
    assert_eq!(listed, duplicates(), "{}", doc["duplicates"]);
    assert_eq!(doc["duplicates"][2]["sourceName"], "shop-us");
    // Each target is decided against its oldest owned copy.
    let copies: BTreeMap<String, Value> = doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let source = t["sourceName"].as_str().unwrap().to_string();
            (source, t["connectionId"].clone())
        })
        .collect();
    assert_eq!(copies["shop-eu"], EU_OLDEST);
    assert_eq!(copies["shop-us"], US_KEPT);
    assert_eq!(
        copies["shop-apac"], APAC_OWNED,
        "owned beats the rendered name"
    );
    assert_eq!(copies["shop-latam"], Value::Null);
    assert!(
        doc["warnings"][0]
            .as_str()
            .unwrap()
            .starts_with("3 duplicate copies owned by this plan left in place"),
        "{}",
        doc["warnings"]
    );
    assert_eq!(world.requests("DELETE /connections/{connectionId}"), 0);
}

#[test]
fn plan_with_prune_shows_them_as_delete_rows() {
    let world = fleet();
    let (code, out, err) = run(&world, &["plan", "--prune", "--detailed-exitcode"]);
    assert_eq!(code, Some(2), "changes pending: {out}{err}");
    for (duplicate, kept) in duplicates() {
        assert!(
            out.contains(&format!(
                " → Warehouse ({duplicate}; owned, a duplicate of {kept})\n"
            )),
            "{out}"
        );
    }
    assert!(out.contains(", 3 to delete,"), "{out}");
    assert!(!out.contains("duplicate copies owned"), "{out}");
    let (code, ..) = run(&world, &["plan", "--prune"]);
    assert_eq!(code, Some(0));

    let (code, out, err) = run(&world, &["plan", "--prune", "--output", "json"]);
    assert_eq!(code, Some(0), "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let deletes = rows(&doc, "delete");
    let got: BTreeMap<Uuid, Uuid> = deletes
        .iter()
        .map(|(d, (_, row))| (*d, id(row["duplicateOf"].as_str().unwrap())))
        .collect();
    assert_eq!(got, duplicates());
    assert_eq!(deletes[&id(US_DUPLICATE)].0, "shop-us");
    assert_eq!(doc["summary"]["delete"], 3);
    assert_eq!(doc["summary"]["duplicates"], 3);
    assert_eq!(doc["prune"], "on");
    assert_eq!(doc["warnings"], json!([]));
    assert_eq!(world.requests("DELETE /connections/{connectionId}"), 0);
}

#[test]
fn apply_with_prune_deletes_the_newer_copies_only() {
    let world = fleet();
    let (code, out, err) = run(&world, &["apply", "--yes", "--prune", "--report", "r.json"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("Apply: 1 created, 3 updated, 3 deleted, 0 unchanged, 0 failed."),
        "{out}"
    );

    let wanted: BTreeSet<Uuid> = duplicates().into_keys().collect();
    assert_eq!(deleted(&world), wanted, "exactly the duplicates");
    assert_eq!(world.requests("DELETE /connections/{connectionId}"), 3);
    let live = live_copies(&world);
    assert_eq!(live["shop-eu"], [id(EU_OLDEST)].into(), "the oldest kept");
    assert_eq!(live["shop-us"], [id(US_KEPT)].into(), "the smaller id kept");
    assert_eq!(
        live["shop-apac"],
        [id(APAC_OWNED), id(APAC_BY_HAND)].into(),
        "a copy without the owner tag is never deleted"
    );
    assert_eq!(live["shop-latam"].len(), 1, "created");

    let report: Value =
        serde_json::from_slice(&std::fs::read(world.dir.path().join("r.json")).unwrap()).unwrap();
    let outcomes: BTreeSet<Uuid> = rows(&report, "delete")
        .into_iter()
        .filter(|(_, (_, row))| row["outcome"] == "deleted")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(outcomes, wanted, "{report}");
    assert_eq!(report["summary"]["deleted"], 3);
    assert_eq!(report["summary"]["duplicates"], 3);

    // One copy each: the next run finds no duplicate and deletes nothing more.
    let (code, out, err) = run(&world, &["apply", "--yes", "--prune"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(!out.contains("duplicate"), "{out}");
    assert_eq!(world.requests("DELETE /connections/{connectionId}"), 3);
}

#[test]
fn apply_without_prune_deletes_nothing_and_fails() {
    let world = fleet();
    let (code, out, err) = run(&world, &["apply", "--yes", "--report", "r.json"]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains(
            "warning: 3 duplicate copies owned by this plan left in place (prune: true or --prune \
             deletes them); the run fails until each source has one copy"
        ),
        "{out}"
    );
    assert_eq!(world.requests("DELETE /connections/{connectionId}"), 0);
    assert!(deleted(&world).is_empty());
    let live = live_copies(&world);
    assert_eq!(live["shop-eu"].len(), 3);
    assert_eq!(live["shop-us"].len(), 2);
    // The targets themselves are still brought in line, against their oldest copies.
    assert_eq!(live["shop-latam"].len(), 1, "created");
    let names: BTreeMap<Uuid, String> = world
        .connections()
        .into_iter()
        .map(|c| (c.connection_id, c.name))
        .collect();
    assert_eq!(names[&id(EU_OLDEST)], "shop-eu → Warehouse", "renamed");
    assert_eq!(names[&id(APAC_OWNED)], "shop-apac → Warehouse", "renamed");
    let report: Value =
        serde_json::from_slice(&std::fs::read(world.dir.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(report["summary"]["failed"], 0, "no target failed: {report}");
    assert_eq!(report["summary"]["duplicates"], 3);
}

#[test]
fn a_targeted_run_never_deletes_duplicates() {
    let world = fleet();
    let (code, out, err) = run(
        &world,
        &["apply", "--yes", "--prune", "--target", "shop-us"],
    );
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains(&format!(
            "1 duplicate copy owned by this plan (not pruned: a --target run never prunes):\n    \
             shop-us  shop-us → Warehouse ({US_DUPLICATE}; a duplicate of {US_KEPT})\n"
        )),
        "only the targeted source's: {out}"
    );
    assert!(
        out.contains("; 3 targets left out by --target; 1 duplicate left in place.\n"),
        "{out}"
    );
    assert_eq!(world.requests("DELETE /connections/{connectionId}"), 0);
    assert!(deleted(&world).is_empty());

    // A target without duplicates: a canary run of it succeeds.
    let (code, out, err) = run(
        &world,
        &["apply", "--yes", "--prune", "--target", "shop-latam"],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(!out.contains("duplicate"), "{out}");
}

#[test]
fn copies_without_the_owner_tag_are_never_deleted() {
    // shop-eu: an owned copy and an older one by hand with the plan's name; shop-latam: two by
    // hand, neither with the plan's name (ambiguous, as before: the user must choose).
    let world = world_with(&[
        (EU_A, "shop-eu", "eu (owned)", T + 100, true),
        (EU_OLDEST, "shop-eu", "shop-eu → Warehouse", T, false),
        (US_KEPT, "shop-latam", "latam one", T, false),
        (US_DUPLICATE, "shop-latam", "latam two", T + 1, false),
    ]);
    let (code, out, err) = run(&world, &["apply", "--yes", "--prune", "--output", "json"]);
    assert_eq!(code, Some(1), "{out}{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["summary"]["duplicates"], 0, "{}", doc["summary"]);
    assert_eq!(doc["summary"]["delete"], 0);
    let latam = doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["sourceName"] == "shop-latam")
        .unwrap();
    assert_eq!(latam["action"], "error");
    assert!(
        latam["error"]
            .as_str()
            .unwrap()
            .starts_with("2 connections already copy this source to Warehouse, none named"),
        "{latam}"
    );
    let eu = rows(&doc, "update");
    assert_eq!(eu[&id(EU_A)].0, "shop-eu", "the owned copy is shop-eu's");
    assert_eq!(world.requests("DELETE /connections/{connectionId}"), 0);
    assert!(deleted(&world).is_empty());
    let live = live_copies(&world);
    assert_eq!(live["shop-eu"], [id(EU_A), id(EU_OLDEST)].into());
    assert_eq!(live["shop-latam"], [id(US_KEPT), id(US_DUPLICATE)].into());
}

#[test]
fn status_shows_each_targets_oldest_copy_and_lists_the_duplicates() {
    let world = fleet();
    let (code, stdout, stderr) = run(&world, &["status", "--output", "json"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let listed: BTreeMap<Uuid, Uuid> = doc["duplicates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["connectionId"].as_str().unwrap().parse().unwrap(),
                d["duplicateOf"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, duplicates());
    assert_eq!(doc["summary"]["duplicates"], 3, "{}", doc["summary"]);
    let eu = doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["sourceName"] == "shop-eu")
        .unwrap();
    assert_eq!(
        eu["connectionId"], EU_OLDEST,
        "the oldest is the copy: {eu}"
    );

    let (code, stdout, _) = run(&world, &["status"]);
    assert_eq!(code, Some(0));
    assert!(
        stdout.contains(
            "3 duplicate copies owned by this plan (each source's oldest is its copy; `apply \
             --prune` deletes the others):"
        ) && stdout.contains(&format!("a duplicate of {US_KEPT}")),
        "{stdout}"
    );
    assert!(deleted(&world).is_empty(), "status writes nothing");
}
