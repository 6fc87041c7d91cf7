//! End to end: the real binary against a sandbox on a random loopback port, over HTTP.
//! What was written is checked by asking the sandbox, not the tool.

use crate::support::seed::{CLIENT_ID, CLIENT_SECRET};
use crate::support::{BULK, World, redact};
use predicates::prelude::*;
use replicate::wire::{ScheduleTypeWithBasic, SyncMode};

const EXAMPLE: &str = r#"
version: 1
template: "shop-template → Warehouse"
targets:
  - match: "shop-*"
    exclude: ["shop-legacy"]
defaults:
  prefix: "{source.name|slug}_"
"#;

const WITH_LEGACY: &str = r#"
version: 1
template: "shop-template → Warehouse"
targets:
  - match: "shop-*"
defaults:
  prefix: "{source.name|slug}_"
"#;

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn plan_previews_and_writes_nothing() {
    let world = World::new();
    let plan = world.plan("example.yaml", EXAMPLE);
    let before = world.connections().len();
    let output = world.replicate().arg("plan").arg(&plan).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    insta::assert_snapshot!(redact(&stdout(&output), &world), @r"
    Template: shop-template → Warehouse ([UUID])
    + shop-apac   shop-apac → Warehouse
    + shop-eu     shop-eu → Warehouse
    + shop-latam  shop-latam → Warehouse
    + shop-us     shop-us → Warehouse
    Plan: 4 to create, 0 to update, 0 unchanged, 0 errors.
    ");
    assert_eq!(world.requests("POST /connections"), 0);
    assert_eq!(world.connections().len(), before);
}

#[test]
fn apply_creates_the_copies_then_a_rerun_writes_nothing() {
    let world = World::new();
    let plan = world.plan("example.yaml", EXAMPLE);
    let output = world
        .replicate()
        .args(["apply", "--yes"])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("Apply: 4 created, 0 updated, 0 unchanged, 0 failed."),
        "{}",
        stdout(&output)
    );
    assert_eq!(world.requests("POST /connections"), 4);

    let template = world.connection_named("shop-template → Warehouse").unwrap();
    for shop in ["shop-eu", "shop-us", "shop-apac", "shop-latam"] {
        let copy = world
            .connection_named(&format!("{shop} → Warehouse"))
            .unwrap_or_else(|| panic!("no copy for {shop}"));
        assert_ne!(copy.source_id, template.source_id);
        assert_eq!(copy.destination_id, template.destination_id);
        assert_eq!(
            copy.prefix.as_deref(),
            Some(format!("{}_", shop.replace('-', "_")).as_str())
        );
        assert_eq!(copy.schedule.schedule_type, ScheduleTypeWithBasic::Cron);
        assert_eq!(
            copy.schedule.cron_expression.as_deref(),
            Some("0 0 2 * * ? UTC")
        );
        assert_eq!(copy.status, template.status);
        assert_eq!(
            copy.non_breaking_schema_updates_behavior,
            template.non_breaking_schema_updates_behavior
        );
        let streams: Vec<_> = copy
            .configurations
            .streams
            .iter()
            .map(|s| (s.name.as_str(), s.sync_mode))
            .collect();
        assert_eq!(
            streams,
            template
                .configurations
                .streams
                .iter()
                .map(|s| (s.name.as_str(), s.sync_mode))
                .collect::<Vec<_>>()
        );
        let orders = &copy.configurations.streams[0];
        assert_eq!(orders.sync_mode, Some(SyncMode::IncrementalDedupedHistory));
        assert_eq!(orders.cursor_field, Some(vec!["updated_at".to_string()]));
    }

    let again = world
        .replicate()
        .args(["apply", "--yes"])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stdout(&again).contains("Plan: 0 to create, 0 to update, 4 unchanged, 0 errors."));
    assert!(stdout(&again).contains("Apply: 0 created, 0 updated, 4 unchanged, 0 failed."));
    assert_eq!(
        world.requests("POST /connections"),
        4,
        "a re-run must not write"
    );
}

#[test]
fn a_missing_stream_shows_in_plan_and_fails_alone_in_apply() {
    let world = World::new();
    let plan = world.plan("legacy.yaml", WITH_LEGACY);
    let output = world.replicate().arg("plan").arg(&plan).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(text.contains("! shop-legacy"), "{text}");
    assert!(text.contains("products"), "{text}");
    assert!(
        text.contains("Plan: 4 to create, 0 to update, 0 unchanged, 1 error."),
        "{text}"
    );
    assert_eq!(world.requests("POST /connections"), 0);

    let output = world
        .replicate()
        .args(["apply", "--yes"])
        .arg(&plan)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains("Apply: 4 created, 0 updated, 0 unchanged, 1 failed."),
        "{text}"
    );
    assert!(text.contains("! shop-legacy:"), "{text}");
    assert_eq!(
        world.requests("POST /connections"),
        4,
        "the broken target is never posted"
    );
    assert!(world.connection_named("shop-legacy → Warehouse").is_none());
    assert!(world.connection_named("shop-eu → Warehouse").is_some());
}

#[test]
fn missing_streams_skip_drops_the_stream_with_a_warning() {
    let world = World::new();
    let plan = world.plan(
        "skip.yaml",
        r#"
version: 1
template: "shop-template → Warehouse"
missing_streams: skip
targets:
  - source: shop-legacy
defaults:
  prefix: "{source.name|slug}_"
"#,
    );
    let output = world
        .replicate()
        .args(["apply", "--yes"])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("warning:"), "{}", stdout(&output));
    let copy = world.connection_named("shop-legacy → Warehouse").unwrap();
    let names: Vec<_> = copy
        .configurations
        .streams
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["orders", "customers"]);
}

#[test]
fn detailed_exitcode_says_whether_changes_are_pending() {
    let world = World::new();
    let plan = world.plan("example.yaml", EXAMPLE);
    world
        .replicate()
        .args(["plan", "--detailed-exitcode"])
        .arg(&plan)
        .assert()
        .code(2);
    world
        .replicate()
        .args(["apply", "-y"])
        .arg(&plan)
        .assert()
        .success();
    world
        .replicate()
        .args(["plan", "--detailed-exitcode"])
        .arg(&plan)
        .assert()
        .code(0);
}

#[test]
fn json_output_is_one_document_and_the_report_file_matches_the_server() {
    let world = World::new();
    let plan = world.plan("example.yaml", EXAMPLE);
    let output = world
        .replicate()
        .args([
            "apply",
            "--yes",
            "--output",
            "json",
            "--report",
            "report.json",
        ])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(doc["mode"], "apply");
    assert_eq!(doc["summary"]["created"], 4);
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(world.dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(file, doc);
    for target in doc["targets"].as_array().unwrap() {
        assert_eq!(target["action"], "create");
        assert_eq!(target["outcome"], "created");
        let id = target["connectionId"].as_str().unwrap();
        let live = world.connections();
        let copy = live
            .iter()
            .find(|c| c.connection_id.to_string() == id)
            .unwrap();
        assert_eq!(copy.name, target["name"].as_str().unwrap());
    }
}

#[test]
fn the_concurrency_cap_holds_at_the_server() {
    for cap in [2_u64, 6] {
        let world = World::with(|c| {
            c.extra_sources = 40;
            c.latency = std::time::Duration::from_millis(30);
        });
        let plan = world.plan("bulk.yaml", BULK);
        world
            .replicate()
            .args(["apply", "--yes", "--concurrency", &cap.to_string()])
            .arg(&plan)
            .assert()
            .success();
        let stats = world.stats();
        let max = stats["max_in_flight"].as_u64().unwrap();
        assert!(max <= cap, "cap {cap}, server saw {max} in flight");
        assert_eq!(max, cap, "40 targets behind latency should fill every slot");
        assert_eq!(world.requests("POST /connections"), 40);
    }
}

#[test]
fn application_credentials_are_exchanged_and_never_shown() {
    let world = World::new();
    let plan = world.plan("example.yaml", EXAMPLE);
    let output = world
        .replicate()
        .env_remove("AIRBYTE_TOKEN")
        .env("AIRBYTE_CLIENT_ID", CLIENT_ID)
        .env("AIRBYTE_CLIENT_SECRET", CLIENT_SECRET)
        .args(["plan", "-vv"])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(world.requests("POST /applications/token"), 1);
    let all = format!("{}{}", stdout(&output), stderr(&output));
    assert!(!all.contains(CLIENT_SECRET), "{all}");

    let output = world
        .replicate()
        .env_remove("AIRBYTE_TOKEN")
        .env("AIRBYTE_CLIENT_ID", CLIENT_ID)
        .env("AIRBYTE_CLIENT_SECRET", "wrong-secret")
        .arg("plan")
        .arg(&plan)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("POST /applications/token"), "{err}");
    assert!(!err.contains("wrong-secret"), "{err}");
}

#[test]
fn a_bad_token_names_the_request_and_the_server_message() {
    let world = World::new();
    let plan = world.plan("example.yaml", EXAMPLE);
    let output = world
        .replicate()
        .env("AIRBYTE_TOKEN", "not-a-token")
        .arg("plan")
        .arg(&plan)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("GET /connections"), "{err}");
    assert!(err.contains("401"), "{err}");
    assert!(!err.contains("not-a-token"), "{err}");
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    let world = World::new();
    let plan = world.plan("example.yaml", EXAMPLE);
    world
        .replicate()
        .env("AIRBYTE_URL", "http://airbyte.example.com/api/public/v1")
        .arg("plan")
        .arg(&plan)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--allow-insecure-http"));
}

#[test]
fn validate_points_at_the_line_of_a_mistake() {
    let world = World::new();
    let plan = world.plan(
        "typo.yaml",
        "version: 1\ntemplate: t\ntargets:\n  - source: a\n    nmae: x\n",
    );
    let output = world
        .replicate()
        .arg("validate")
        .arg(&plan)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = redact(&stderr(&output), &world);
    assert!(err.contains("[DIR]/typo.yaml:5:5"), "{err}");
    assert!(err.contains("did you mean `name`?"), "{err}");
    assert_eq!(
        world.stats()["requests"]
            .as_object()
            .map_or(0, serde_json::Map::len),
        0
    );
}

#[test]
fn usage_errors_exit_2() {
    let world = World::new();
    world.replicate().args(["plan"]).assert().code(2);
    world
        .replicate()
        .args(["plan", "x.yaml", "--concurrency", "0"])
        .assert()
        .code(2);
}

#[test]
fn a_ca_certificate_file_must_hold_certificates() {
    let world = World::new();
    let plan = world.plan("example.yaml", EXAMPLE);
    let junk = world.plan("junk.pem", "not a certificate\n");
    world
        .replicate()
        .arg("plan")
        .arg(&plan)
        .arg("--ca-cert")
        .arg(&junk)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "--ca-cert: no PEM certificate found",
        ));
    world
        .replicate()
        .args(["plan", "--ca-cert", "missing.pem"])
        .arg(&plan)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--ca-cert missing.pem"));
    assert_eq!(
        world.requests("GET /connections"),
        0,
        "nothing is sent without a working client"
    );
}

/// The default seed with one mapper on the template's `orders` stream.
#[allow(clippy::unwrap_used)] // a test fixture
fn world_with_mapper(mapper: serde_json::Value) -> World {
    World::with(|c| {
        let mapper: replicate::wire::ConfiguredStreamMapper =
            serde_json::from_value(mapper).unwrap();
        let template = &mut c.seed.connections[0];
        let orders = template
            .streams
            .iter_mut()
            .find(|s| s.name == "orders")
            .unwrap();
        orders.mappers = Some(vec![mapper]);
    })
}

#[test]
fn a_template_whose_mapper_secret_comes_back_masked_is_refused_before_any_write() {
    let world = world_with_mapper(serde_json::json!({
        "type": "encryption",
        "mapperConfiguration": {
            "algorithm": "AES", "key": "0123456789abcdef0123456789abcdef", "mode": "CBC",
            "padding": "PKCS5Padding", "targetField": "status", "fieldNameSuffix": "_enc"
        }
    }));
    let plan = world.plan("example.yaml", EXAMPLE);
    let output = world.replicate().arg("plan").arg(&plan).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("orders"), "{err}");
    assert!(err.contains("masked"), "{err}");
    assert!(
        !err.contains("0123456789abcdef"),
        "the secret is never shown: {err}"
    );
    assert_eq!(world.requests("POST /connections"), 0);
}

#[test]
fn mappers_are_copied_with_new_ids() {
    let world = world_with_mapper(serde_json::json!({
        "type": "hashing",
        "mapperConfiguration": {
            "method": "SHA-256", "targetField": "customer_id", "fieldNameSuffix": "_hash"
        }
    }));
    let plan = world.plan("example.yaml", EXAMPLE);
    world
        .replicate()
        .args(["apply", "--yes"])
        .arg(&plan)
        .assert()
        .success();
    let mapper_of = |name: &str| {
        let connection = world.connection_named(name).unwrap();
        let orders = connection
            .configurations
            .streams
            .into_iter()
            .find(|s| s.name == "orders")
            .unwrap();
        orders.mappers.unwrap().remove(0)
    };
    let template = mapper_of("shop-template → Warehouse");
    let copy = mapper_of("shop-eu → Warehouse");
    assert_eq!(copy.mapper_configuration, template.mapper_configuration);
    assert_ne!(copy.id, template.id, "the copy's mapper is its own");
}
