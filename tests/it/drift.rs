//! Drift and updates (SPEC §8), end to end: a change to the plan, to the template or to one copy
//! by hand shows as exactly that change, `apply` makes one PATCH per drifted copy, the sandbox
//! then holds the desired state, and a re-run writes nothing. The truth is read from the
//! sandbox's API and `/_sandbox/stats`, not from replicate's output.

use crate::support::seed::{self, CLIENT_ID, CLIENT_SECRET, TEMPLATE};
use crate::support::{BULK, HANG_GUARD, World};
use replicate::wire::ConnectionResponse;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

fn template_id() -> Uuid {
    seed::id(TEMPLATE)
}

/// Two shops, with the plan's own defaults after `version`/`template`/`targets`.
fn plan(extra: &str) -> String {
    format!(
        "version: 1\ntemplate: \"shop-template → Warehouse\"\ntargets:\n  - source: shop-eu\n  \
         - source: shop-us\ndefaults:\n  prefix: \"{{source.name|slug}}_\"\n{extra}"
    )
}

/// `plan --output json --detailed-exitcode`: the exit code and the document.
fn plan_json(world: &World, file: &std::path::Path) -> (i32, Value) {
    let output = world
        .replicate()
        .args(["plan", "--output", "json", "--detailed-exitcode"])
        .arg(file)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), doc)
}

/// The fields each target's changes name, by source name.
fn changed_fields(doc: &Value) -> Vec<(String, Vec<String>)> {
    doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["sourceName"].as_str().unwrap_or("?").to_string(),
                t["changes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["field"].as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

fn apply(world: &World, file: &std::path::Path) -> std::process::Output {
    let output = world
        .replicate()
        .args(["apply", "--yes"])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn copy_of(world: &World, source: &str) -> ConnectionResponse {
    world
        .connection_named(&format!("{source} → Warehouse"))
        .unwrap_or_else(|| panic!("no copy of {source}"))
}

/// The template's streams in the form the API takes back: what the server filled in (empty
/// selections, the source-defined key of `customers` and cursor of `products`) left out.
fn template_streams(world: &World) -> Vec<Value> {
    let template = world
        .connections()
        .into_iter()
        .find(|c| c.connection_id == template_id())
        .unwrap();
    template
        .configurations
        .streams
        .iter()
        .map(|s| {
            let mut v = serde_json::to_value(s).unwrap();
            let map = v.as_object_mut().unwrap();
            if map.get("selectedFields") == Some(&json!([])) {
                map.remove("selectedFields");
            }
            if s.name == "customers" {
                map.remove("cursorField");
                map.remove("primaryKey");
            }
            if s.name == "products" {
                map.remove("cursorField");
            }
            v
        })
        .collect()
}

/// After a change: `plan` shows exactly `fields` on both copies and exits 2; `apply` makes
/// exactly two `PATCH`es and no create; then `plan` exits 0 with nothing to change and `apply`
/// writes nothing.
fn converges(world: &World, file: &std::path::Path, fields: &[&str]) {
    let (code, doc) = plan_json(world, file);
    let want: Vec<(String, Vec<String>)> = ["shop-eu", "shop-us"]
        .iter()
        .map(|s| {
            (
                (*s).to_string(),
                fields.iter().map(|f| (*f).to_string()).collect(),
            )
        })
        .collect();
    assert_eq!(changed_fields(&doc), want, "{doc:#}");
    assert_eq!(code, 2, "changes pending");
    assert_eq!(doc["summary"]["update"], 2);

    let (patches, posts, streams) = (
        world.requests("PATCH /connections/{connectionId}"),
        world.requests("POST /connections"),
        world.requests("GET /streams"),
    );
    apply(world, file);
    assert_eq!(
        world.requests("PATCH /connections/{connectionId}") - patches,
        2,
        "one PATCH per drifted copy"
    );
    assert_eq!(world.requests("POST /connections"), posts, "no copy made");
    let (code, doc) = plan_json(world, file);
    assert_eq!(code, 0, "in line after the update: {doc:#}");
    assert_eq!(doc["summary"]["unchanged"], 2);
    let patches = world.requests("PATCH /connections/{connectionId}");
    apply(world, file);
    assert_eq!(
        world.requests("PATCH /connections/{connectionId}"),
        patches,
        "a re-run writes nothing"
    );
    let touched_streams = fields.iter().any(|f| f.starts_with("streams"));
    if !touched_streams {
        assert_eq!(
            world.requests("GET /streams"),
            streams,
            "no catalog is read when no stream differs"
        );
    }
}

/// What a copy must look like after a case was applied.
type Holds = fn(&ConnectionResponse) -> bool;

#[test]
fn each_field_changed_in_the_plan_is_one_change_and_one_patch() {
    let world = World::new();
    let file = world.plan("shops.yaml", &plan(""));
    apply(&world, &file);
    let (code, _) = plan_json(&world, &file);
    assert_eq!(code, 0);

    let cases: &[(&str, &[&str], Holds)] = &[
        (
            "  schedule: { scheduleType: cron, cronExpression: \"0 0 6 * * ?\" }\n",
            &["schedule.cronExpression"],
            |c| c.schedule.cron_expression.as_deref() == Some("0 0 6 * * ? UTC"),
        ),
        ("  status: inactive\n", &["status"], |c| {
            c.status == replicate::wire::ConnectionStatus::Inactive
        }),
        (
            "  nonBreakingSchemaUpdatesBehavior: ignore\n",
            &["nonBreakingSchemaUpdatesBehavior"],
            |c| {
                c.non_breaking_schema_updates_behavior
                    == Some(replicate::wire::NonBreakingSchemaUpdatesBehavior::Ignore)
            },
        ),
        (
            "  namespaceDefinition: custom_format\n  namespaceFormat: \"{source.name|slug}\"\n",
            &["namespaceDefinition", "namespaceFormat"],
            |c| {
                c.namespace_format
                    .as_deref()
                    .is_some_and(|f| f.starts_with("shop_"))
            },
        ),
    ];
    let mut defaults = String::new();
    for (extra, fields, holds) in cases {
        defaults.push_str(extra);
        std::fs::write(&file, plan(&defaults)).unwrap();
        converges(&world, &file, fields);
        for source in ["shop-eu", "shop-us"] {
            assert!(holds(&copy_of(&world, source)), "{extra}: {source}");
        }
    }

    // The prefix and the name: the name is a field like any other, so the renamed copy is the
    // same connection, not a second one.
    let before = copy_of(&world, "shop-eu").connection_id;
    std::fs::write(
        &file,
        plan(&format!("{defaults}  name: \"{{source.name}} (copy)\"\n"))
            .replace("{source.name|slug}_\"", "{source.name|slug}_v2_\""),
    )
    .unwrap();
    converges(&world, &file, &["name", "prefix"]);
    let renamed = world.connection_named("shop-eu (copy)").unwrap();
    assert_eq!(renamed.connection_id, before, "renamed in place");
    assert_eq!(renamed.prefix.as_deref(), Some("shop_eu_v2_"));
    assert_eq!(world.copies_per_source().values().max(), Some(&1));
}

#[test]
fn a_change_to_the_template_reaches_every_copy() {
    let world = World::new();
    let file = world.plan("shops.yaml", &plan(""));
    apply(&world, &file);

    world.patch(
        template_id(),
        &json!({"schedule": {"scheduleType": "cron", "cronExpression": "0 0 6 * * ?"}}),
    );
    converges(&world, &file, &["schedule.cronExpression"]);

    let all = template_streams(&world);

    // A stream removed from the template, then added back.
    let without: Vec<Value> = all
        .iter()
        .filter(|s| s["name"] != "products")
        .cloned()
        .collect();
    world.patch(
        template_id(),
        &json!({"configurations": {"streams": without}}),
    );
    converges(&world, &file, &["streams.products"]);
    assert!(
        copy_of(&world, "shop-eu")
            .configurations
            .streams
            .iter()
            .all(|s| s.name != "products")
    );
    world.patch(template_id(), &json!({"configurations": {"streams": all}}));
    converges(&world, &file, &["streams.products"]);

    // A sync mode (resets the stream's state) and a field selection.
    let mut changed = all.clone();
    for s in &mut changed {
        if s["name"] == "orders" {
            s["syncMode"] = json!("incremental_append");
        }
        if s["name"] == "customers" {
            s["selectedFields"] = json!([{"fieldPath": ["id"]}, {"fieldPath": ["email"]}]);
        }
    }
    world.patch(
        template_id(),
        &json!({"configurations": {"streams": changed}}),
    );
    let (_, doc) = plan_json(&world, &file);
    let resets: Vec<&Value> = doc["targets"][0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["resetsState"] == true)
        .collect();
    assert_eq!(resets.len(), 1, "{doc:#}");
    assert_eq!(resets[0]["field"], "streams.orders.syncMode");
    let human = world.replicate().arg("plan").arg(&file).output().unwrap();
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(
        human.contains(
            "    stream orders: syncMode incremental_deduped_history → incremental_append (resets its sync state)"
        ),
        "{human}"
    );
    converges(
        &world,
        &file,
        &[
            "streams.orders.syncMode",
            "streams.customers.selectedFields",
        ],
    );
    let copy = copy_of(&world, "shop-us");
    let orders = copy
        .configurations
        .streams
        .iter()
        .find(|s| s.name == "orders")
        .unwrap();
    assert_eq!(
        orders.sync_mode,
        Some(replicate::wire::SyncMode::IncrementalAppend)
    );
}

#[test]
fn a_copy_edited_by_hand_is_shown_and_brought_back() {
    let world = World::new();
    let file = world.plan("shops.yaml", &plan(""));
    apply(&world, &file);
    let eu = copy_of(&world, "shop-eu");
    world.patch(
        eu.connection_id,
        &json!({"prefix": "by_hand_", "schedule": {"scheduleType": "manual"}}),
    );

    let (code, doc) = plan_json(&world, &file);
    assert_eq!(code, 2);
    assert_eq!(
        changed_fields(&doc),
        [
            (
                "shop-eu".to_string(),
                vec!["schedule".to_string(), "prefix".to_string()]
            ),
            ("shop-us".to_string(), vec![])
        ]
    );
    let human = world.replicate().arg("plan").arg(&file).output().unwrap();
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(human.contains("~ shop-eu"), "{human}");
    assert!(
        human.contains("    schedule: manual → cron \"0 0 2 * * ?\""),
        "{human}"
    );
    assert!(
        human.contains("    prefix: \"by_hand_\" → \"shop_eu_\""),
        "{human}"
    );

    // `existing: skip` shows the drift and writes nothing.
    // The same owner as `shops.yaml`: a plan file's owner tag defaults to its name.
    let skip = world.plan(
        "skip.yaml",
        &plan("existing: skip\nowner: replicate:shops\n"),
    );
    let (code, doc) = plan_json(&world, &skip);
    assert_eq!(code, 0, "a skipped drift is not a change to make");
    assert_eq!(doc["summary"]["drifted"], 1);
    let patches = world.requests("PATCH /connections/{connectionId}");
    apply(&world, &skip);
    assert_eq!(world.requests("PATCH /connections/{connectionId}"), patches);

    apply(&world, &file);
    let eu = copy_of(&world, "shop-eu");
    assert_eq!(eu.prefix.as_deref(), Some("shop_eu_"));
    assert_eq!(
        eu.schedule.cron_expression.as_deref(),
        Some("0 0 2 * * ? UTC")
    );
    let (code, _) = plan_json(&world, &file);
    assert_eq!(code, 0);
}

#[test]
fn a_stream_the_target_lacks_obeys_missing_streams() {
    let world = World::new();
    // Start with a template without `products`, which shop-legacy's catalog lacks.
    let all = template_streams(&world);
    let without: Vec<Value> = all
        .iter()
        .filter(|s| s["name"] != "products")
        .cloned()
        .collect();
    world.patch(
        template_id(),
        &json!({"configurations": {"streams": without}}),
    );
    let targets = "version: 1\ntemplate: \"shop-template → Warehouse\"\ntargets:\n  - source: \
                   shop-eu\n  - source: shop-legacy\ndefaults:\n  prefix: \"{source.name|slug}_\"\nowner: \
                   replicate:fleet\n";
    let fail = world.plan("fail.yaml", targets);
    apply(&world, &fail);

    world.patch(template_id(), &json!({"configurations": {"streams": all}}));
    let (code, doc) = plan_json(&world, &fail);
    assert_eq!(code, 1, "{doc:#}");
    let rows = doc["targets"].as_array().unwrap();
    assert_eq!(rows[0]["action"], "update");
    assert_eq!(rows[1]["action"], "error");
    assert!(
        rows[1]["error"].as_str().unwrap().contains("products"),
        "{doc:#}"
    );

    let skip = world.plan("skip.yaml", &format!("{targets}missing_streams: skip\n"));
    let (code, doc) = plan_json(&world, &skip);
    assert_eq!(code, 2, "{doc:#}");
    let rows = doc["targets"].as_array().unwrap();
    assert_eq!(rows[0]["action"], "update");
    assert_eq!(rows[1]["action"], "unchanged", "{doc:#}");
    assert!(!rows[1]["warnings"].as_array().unwrap().is_empty());
}

#[test]
fn an_unchanged_fleet_costs_the_list_pages_only() {
    let world = World::with(|c| c.extra_sources = 150);
    let file = world.plan("bulk.yaml", BULK);
    apply(&world, &file);
    let before = world.stats()["requests"].clone();
    let (code, doc) = plan_json(&world, &file);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["summary"]["unchanged"], 150);
    let after = world.stats()["requests"].clone();
    let delta =
        |route: &str| after[route].as_u64().unwrap_or(0) - before[route].as_u64().unwrap_or(0);
    assert_eq!(delta("GET /streams"), 0, "no catalog read");
    assert_eq!(delta("PATCH /connections/{connectionId}"), 0);
    let total: u64 = after
        .as_object()
        .unwrap()
        .keys()
        .map(|route| delta(route))
        .sum();
    // The template by name, the destination, the pages of sources and connections (read a few
    // at once, so a few past the end): nothing per copy.
    assert!(total <= 12, "{total} requests for 150 copies: {after:#}");
}

#[test]
fn an_update_converges_under_every_fault() {
    const TARGETS: usize = 120;
    let faulty = World::with(|c| {
        c.extra_sources = TARGETS;
        c.fault_seed = Some(11);
        c.fail_rate = 0.2;
        c.lost_response_rate = 0.3;
        c.rate_limit = Some(40);
        c.token_ttl = Duration::from_secs(2);
    });
    let file = faulty.plan("bulk.yaml", BULK);
    // Build the fleet on the faulty server too (creates converge: see `faults.rs`).
    faulty
        .replicate()
        .args(["apply", "--yes"])
        .arg(&file)
        .timeout(HANG_GUARD)
        .assert()
        .success();
    faulty.patch(
        template_id(),
        &json!({"schedule": {"scheduleType": "cron", "cronExpression": "0 0 6 * * ?"}}),
    );
    let lost_before = faulty.stats()["faults"]["lost"].as_u64().unwrap_or(0);
    let output = faulty
        .replicate()
        .env_remove("AIRBYTE_TOKEN")
        .env("AIRBYTE_CLIENT_ID", CLIENT_ID)
        .env("AIRBYTE_CLIENT_SECRET", CLIENT_SECRET)
        .args(["apply", "--yes", "--report", "report.json"])
        .arg(&file)
        .timeout(HANG_GUARD)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stats = faulty.stats();
    assert!(
        stats["faults"]["lost"].as_u64().unwrap_or(0) > lost_before,
        "some PATCH answers were lost: {stats:#}"
    );
    assert!(
        stats["faults"]["failed"].as_u64().unwrap_or(0) > 0,
        "{stats:#}"
    );
    assert!(
        stats["faults"]["rate_limited"].as_u64().unwrap_or(0) > 0,
        "{stats:#}"
    );

    let copies = faulty.copies_per_source();
    assert_eq!(copies.len(), TARGETS);
    assert!(copies.values().all(|&n| n == 1), "{copies:?}");
    let template = faulty
        .connections()
        .into_iter()
        .find(|c| c.connection_id == template_id())
        .unwrap();
    for copy in faulty.connections() {
        if copy.destination_id == template.destination_id && copy.connection_id != template_id() {
            assert_eq!(
                copy.schedule.cron_expression.as_deref(),
                Some("0 0 6 * * ? UTC"),
                "{}",
                copy.name
            );
        }
    }
    let report: Value =
        serde_json::from_slice(&std::fs::read(faulty.dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(
        report["summary"]["updated"], TARGETS,
        "{:#}",
        report["summary"]
    );
    assert_eq!(report["summary"]["failed"], 0);
}
