//! Ownership, prune, adopt and targeting (SPEC §9), end to end: the real binary against its
//! sandbox. What was written is read from the sandbox's own API (connections with their tags,
//! deleted ones with `includeDeleted`) and `/_sandbox/stats`, never from replicate's output.

#![allow(clippy::unwrap_used)] // helpers shared by the tests below

use crate::support::World;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use replicate::sandbox::SandboxConfig;
use replicate::sandbox::seed::{SeedConnection, SeedSource, SeedTag};
use replicate::wire::{ConnectionResponse, ConnectionStatus, Page};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::{Duration, Instant};
use uuid::Uuid;

const TEMPLATE_ID: &str = "c0000000-0000-4000-8000-000000000001";
const WAREHOUSE_ID: &str = "de570000-0000-4000-8000-000000000001";
/// `shop-latam` in the default seed.
const SHOP_LATAM: &str = "50c00000-0000-4000-8000-000000000005";
/// `shop-eu` in the default seed.
const SHOP_EU: &str = "50c00000-0000-4000-8000-000000000002";

/// Every shop but the legacy one; owned by `replicate:shops`.
fn shops(exclude: &[&str]) -> String {
    let mut excluded = vec!["\"shop-legacy\"".to_string()];
    excluded.extend(exclude.iter().map(|e| format!("\"{e}\"")));
    format!(
        "version: 1\ntemplate: \"shop-template → Warehouse\"\ntargets:\n  - match: \"shop-*\"\n    \
         type: postgres\n    exclude: [{}]\ndefaults:\n  prefix: \"{{source.name|slug}}_\"\n\
         owner: \"replicate:shops\"\n",
        excluded.join(", ")
    )
}

/// One call to the sandbox's API with its static token; 5xx and 429 (the fault knobs) are asked
/// again. Returns the status and the JSON answer (null when there is none).
fn api(world: &World, method: &reqwest::Method, path: &str, body: Option<&Value>) -> (u16, Value) {
    let url = format!("{}{path}", world.url);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let client = reqwest::Client::new();
            for _ in 0..200 {
                let mut request = client
                    .request(method.clone(), &url)
                    .bearer_auth("sandbox-token");
                if let Some(body) = body {
                    request = request.json(body);
                }
                if let Ok(response) = request.send().await {
                    let status = response.status().as_u16();
                    if status < 500 && status != 429 {
                        let value = response.json().await.unwrap_or(Value::Null);
                        return (status, value);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!("the sandbox never answered {method} {url}");
        })
}

/// Every connection, deleted ones too, by id.
fn all_connections(world: &World) -> BTreeMap<Uuid, ConnectionResponse> {
    let mut all = BTreeMap::new();
    loop {
        let path = format!(
            "/connections?includeDeleted=true&limit=100&offset={}",
            all.len()
        );
        let (status, page) = api(world, &reqwest::Method::GET, &path, None);
        assert_eq!(status, 200, "{page}");
        let page: Page<ConnectionResponse> = serde_json::from_value(page).unwrap();
        let n = page.data.len();
        all.extend(page.data.into_iter().map(|c| (c.connection_id, c)));
        if n < 100 {
            return all;
        }
    }
}

/// The ids of the deleted connections.
fn deleted(world: &World) -> BTreeSet<Uuid> {
    all_connections(world)
        .into_values()
        .filter(|c| c.status == ConnectionStatus::Deprecated)
        .map(|c| c.connection_id)
        .collect()
}

/// The workspace's tags named `name`.
fn tags_named(world: &World, name: &str) -> Vec<Value> {
    let (status, tags) = api(world, &reqwest::Method::GET, "/tags", None);
    assert_eq!(status, 200);
    tags["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"] == name)
        .cloned()
        .collect()
}

fn carries(connection: &ConnectionResponse, tag: &str) -> bool {
    connection.tags.iter().any(|t| t.name == tag)
}

/// The live copies into the warehouse, the template left out.
fn live_copies(world: &World) -> Vec<ConnectionResponse> {
    let template: Uuid = TEMPLATE_ID.parse().unwrap();
    world
        .connections()
        .into_iter()
        .filter(|c| c.connection_id != template && c.destination_id.to_string() == WAREHOUSE_ID)
        .collect()
}

/// The writes the sandbox has seen, by route.
fn writes(world: &World) -> BTreeMap<String, u64> {
    let stats = world.stats();
    stats["requests"]
        .as_object()
        .unwrap()
        .iter()
        // Tag requests are the lease's (taken and dropped by every apply) and the owner tag's,
        // which the tests check by name.
        .filter(|(route, _)| !route.starts_with("GET ") && !route.contains(" /tags"))
        .map(|(route, n)| (route.clone(), n.as_u64().unwrap()))
        .collect()
}

fn read_report(world: &World, name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(world.dir.path().join(name)).unwrap()).unwrap()
}

/// The connection ids of the report's rows with this outcome.
fn rows_with(report: &Value, outcome: &str) -> BTreeSet<Uuid> {
    report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["outcome"] == outcome)
        .map(|t| t["connectionId"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// Applies `yaml` (as `file`) with `args`; returns the exit code and stdout.
fn apply(world: &World, file: &str, yaml: &str, args: &[&str]) -> (Option<i32>, String) {
    let plan = world.plan(file, yaml);
    let output = world
        .replicate()
        .arg("apply")
        .args(args)
        .arg(&plan)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (output.status.code(), format!("{stdout}{stderr}"))
}

#[test]
fn a_fresh_apply_tags_every_copy_and_plan_makes_no_tag() {
    let world = World::new();
    let plan = world.plan("shops.yaml", &shops(&[]));
    let output = world.replicate().arg("plan").arg(&plan).output().unwrap();
    assert!(output.status.success());
    assert!(
        writes(&world).is_empty(),
        "plan wrote: {:?}",
        writes(&world)
    );
    assert!(tags_named(&world, "replicate:shops").is_empty());

    let (code, out) = apply(&world, "shops.yaml", &shops(&[]), &["--yes"]);
    assert_eq!(code, Some(0), "{out}");
    let copies = live_copies(&world);
    assert_eq!(copies.len(), 4, "{copies:?}");
    assert!(
        copies.iter().all(|c| carries(c, "replicate:shops")),
        "{copies:?}"
    );
    assert_eq!(tags_named(&world, "replicate:shops").len(), 1);
    assert_eq!(
        world.requests("POST /tags"),
        2,
        "the owner tag is made once (the other is the lease's gate)"
    );
    let template = world.connection_named("shop-template → Warehouse").unwrap();
    assert!(
        !carries(&template, "replicate:shops"),
        "the template is not tagged"
    );
}

#[test]
fn the_owner_tag_is_made_once_under_lost_answers_and_failures() {
    let world = World::with(|c| {
        c.extra_sources = 20;
        c.fail_rate = 0.2;
        c.lost_response_rate = 0.3;
        c.fault_seed = Some(11);
    });
    let (code, out) = apply(&world, "bulk.yaml", crate::support::BULK, &["--yes"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        tags_named(&world, "replicate:bulk").len(),
        1,
        "one owner tag, however many tries"
    );
    let copies = live_copies(&world);
    assert_eq!(copies.len(), 20);
    assert!(copies.iter().all(|c| carries(c, "replicate:bulk")));
}

#[test]
fn a_hand_made_copy_is_adopted_by_one_patch() {
    let world = World::new();
    let (status, made) = api(
        &world,
        &reqwest::Method::POST,
        "/connections",
        Some(&json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE_ID, "name": "eu by hand"})),
    );
    assert_eq!(status, 200, "{made}");
    let id: Uuid = made["connectionId"].as_str().unwrap().parse().unwrap();
    let before = writes(&world);
    let yaml = "version: 1\ntemplate: \"shop-template → Warehouse\"\ntargets:\n  - source: \
                shop-eu\ndefaults:\n  prefix: \"{source.name|slug}_\"\nowner: \"replicate:eu\"\n";
    let (code, out) = apply(&world, "eu.yaml", yaml, &["--yes"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("tags: + replicate:eu"), "{out}");

    let after = writes(&world);
    let delta = |route: &str| {
        after.get(route).copied().unwrap_or(0) - before.get(route).copied().unwrap_or(0)
    };
    assert_eq!(delta("PATCH /connections/{connectionId}"), 1);
    assert_eq!(delta("POST /connections"), 0, "adopted, not copied again");
    let copies = live_copies(&world);
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].connection_id, id);
    assert!(carries(&copies[0], "replicate:eu"), "{:?}", copies[0].tags);

    // Adopted: the next run writes nothing.
    let (code, out) = apply(&world, "eu.yaml", yaml, &["--yes"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(writes(&world), after);
}

#[test]
fn excluded_sources_are_listed_as_orphans_and_prune_deletes_exactly_those() {
    let world = World::new();
    let (code, out) = apply(&world, "shops.yaml", &shops(&[]), &["--yes"]);
    assert_eq!(code, Some(0), "{out}");
    let by_source: BTreeMap<String, Uuid> = live_copies(&world)
        .into_iter()
        .map(|c| (c.name.clone(), c.connection_id))
        .collect();
    // A connection with the same source and destination as an orphan, made by someone else:
    // it does not carry the owner tag, so it is never deleted.
    let (status, lookalike) = api(
        &world,
        &reqwest::Method::POST,
        "/connections",
        Some(&json!({"sourceId": SHOP_LATAM, "destinationId": WAREHOUSE_ID, "name": "mine"})),
    );
    assert_eq!(status, 200, "{lookalike}");
    let lookalike: Uuid = lookalike["connectionId"].as_str().unwrap().parse().unwrap();

    let retired = shops(&["shop-apac", "shop-latam"]);
    let orphans: BTreeSet<Uuid> = [
        by_source["shop-apac → Warehouse"],
        by_source["shop-latam → Warehouse"],
    ]
    .into();
    let plan = world.plan("shops.yaml", &retired);
    let before = writes(&world);
    let output = world
        .replicate()
        .args(["plan", "--output", "json"])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(output.status.success());
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["summary"]["orphaned"], 2, "{json}");
    let listed: BTreeSet<Uuid> = json["orphans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["connectionId"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(listed, orphans);
    // Without prune, apply deletes nothing.
    let (code, out) = apply(&world, "shops.yaml", &retired, &["--yes"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("2 copies owned by this plan are no longer in it (prune: true deletes them)"),
        "{out}"
    );
    assert_eq!(writes(&world), before, "nothing written without prune");

    let (code, out) = apply(
        &world,
        "shops.yaml",
        &retired,
        &["--yes", "--prune", "--report", "report.json"],
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(deleted(&world), orphans, "exactly the two orphans");
    assert_eq!(world.requests("DELETE /connections/{connectionId}"), 2);
    let all = all_connections(&world);
    assert_eq!(all[&lookalike].status, ConnectionStatus::Active);
    let report = read_report(&world, "report.json");
    assert_eq!(rows_with(&report, "deleted"), orphans, "{report}");
    assert_eq!(report["summary"]["deleted"], 2);
    // Gone: the next run has no orphans.
    let (code, out) = apply(&world, "shops.yaml", &retired, &["--yes", "--prune"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(world.requests("DELETE /connections/{connectionId}"), 2);
}

#[test]
fn a_glob_that_matches_nothing_fails_before_any_write_and_never_prunes() {
    let world = World::new();
    let (code, out) = apply(&world, "shops.yaml", &shops(&[]), &["--yes"]);
    assert_eq!(code, Some(0), "{out}");
    let before = writes(&world);
    let typo = "version: 1\ntemplate: \"shop-template → Warehouse\"\ntargets:\n  - match: \
                \"shpo-*\"\nowner: \"replicate:shops\"\nprune: true\n";
    for args in [
        &["--yes"][..],
        &["--yes", "--prune"],
        &["--yes", "--dry-run"],
    ] {
        let (code, out) = apply(&world, "typo.yaml", typo, args);
        assert_eq!(code, Some(1), "{args:?}: {out}");
        assert!(out.contains("\"shpo-*\" selects no source"), "{out}");
        assert!(out.contains("\"shop-eu\""), "names the closest: {out}");
        assert!(out.contains("prune refused"), "{out}");
        assert_eq!(writes(&world), before, "{args:?}: something was written");
    }
    assert_eq!(live_copies(&world).len(), 4);
    assert!(deleted(&world).is_empty());

    // `allow_empty: true` with nothing else: no targets at all, and still no prune.
    let empty = "version: 1\ntemplate: \"shop-template → Warehouse\"\ntargets:\n  - match: \
                 \"retired-*\"\n    allow_empty: true\nowner: \"replicate:shops\"\n";
    let (code, out) = apply(&world, "empty.yaml", empty, &["--yes", "--prune"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("the plan's targets resolve to no source"),
        "{out}"
    );
    assert_eq!(writes(&world), before);
}

#[test]
fn a_targeted_run_writes_to_those_targets_only_and_prunes_nothing() {
    let world = World::with(|c| c.extra_sources = 30);
    let all = "version: 1\ntemplate: \"shop-template → Warehouse\"\ntargets:\n  - match: \
               \"bulk-*\"\ndefaults:\n  prefix: \"{source.name|slug}_\"\nowner: \
               \"replicate:bulk\"\n";
    // Owned copies of bulk-000020…29 first: a canary run of the whole plan.
    let (code, out) = apply(
        &world,
        "bulk.yaml",
        all,
        &["--yes", "--target", "bulk-00002*"],
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(world.requests("POST /connections"), 10);
    assert_eq!(
        world.requests("GET /streams"),
        10,
        "no catalog of another target"
    );

    // Then those are retired, and the plan pruned, but the run targets bulk-000010…19.
    let retired = format!("{all}prune: true\n").replace(
        "  - match: \"bulk-*\"\n",
        "  - match: \"bulk-*\"\n    exclude: [\"bulk-00002*\"]\n",
    );
    let (code, out) = apply(
        &world,
        "bulk.yaml",
        &retired,
        &[
            "--yes",
            "--prune",
            "--target",
            "bulk-00001*",
            "--report",
            "report.json",
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("a --target run never prunes"), "{out}");
    assert_eq!(world.requests("POST /connections"), 20);
    assert_eq!(world.requests("GET /streams"), 20);
    assert_eq!(world.requests("DELETE /connections/{connectionId}"), 0);
    assert!(deleted(&world).is_empty());
    let names: BTreeSet<String> = live_copies(&world)
        .into_iter()
        .map(|c| c.name[..11].to_string())
        .collect();
    let want: BTreeSet<String> = (10..30).map(|n| format!("bulk-{n:06}")).collect();
    assert_eq!(names, want);
    let report = read_report(&world, "report.json");
    assert_eq!(report["summary"]["untargeted"], 10, "{}", report["summary"]);
    assert_eq!(report["summary"]["orphaned"], 10);
    assert_eq!(report["prune"], "targeted");
}

/// A world with `n` sources `gone-000…` whose copies carry the owner tag `replicate:prune`
/// (owned orphans of [`PRUNE_PLAN`]), a lookalike copy of `gone-000` without it, and a copy of
/// shop-eu (the plan's target, left alone with `existing: skip`).
fn orphan_world(n: usize, configure: impl FnOnce(&mut SandboxConfig)) -> World {
    World::with(|c| {
        c.seed.tags.push(
            serde_json::from_value::<SeedTag>(
                json!({"name": "replicate:prune", "color": "4F46E5"}),
            )
            .unwrap(),
        );
        for i in 0..n {
            let name = format!("gone-{i:03}");
            c.seed.sources.push(
                serde_json::from_value::<SeedSource>(
                    json!({"name": name, "type": "postgres", "catalog": "shop"}),
                )
                .unwrap(),
            );
            c.seed.connections.push(
                serde_json::from_value::<SeedConnection>(json!({
                    "source": name, "destination": "Warehouse", "tags": ["replicate:prune"]
                }))
                .unwrap(),
            );
        }
        for copy in [
            json!({"name": "not ours", "source": "gone-000", "destination": "Warehouse"}),
            json!({"source": "shop-eu", "destination": "Warehouse"}),
        ] {
            c.seed
                .connections
                .push(serde_json::from_value::<SeedConnection>(copy).unwrap());
        }
        configure(c);
    })
}

const PRUNE_PLAN: &str = "version: 1\ntemplate: \"shop-template → Warehouse\"\ntargets:\n  - \
                          source: shop-eu\nowner: \"replicate:prune\"\nexisting: skip\n";

/// The ids of the seeded orphans.
fn seeded_orphans(world: &World) -> BTreeSet<Uuid> {
    all_connections(world)
        .into_values()
        .filter(|c| carries(c, "replicate:prune"))
        .map(|c| c.connection_id)
        .collect()
}

#[test]
fn prune_under_faults_deletes_every_orphan_once_and_nothing_else() {
    let world = orphan_world(100, |c| {
        c.fail_rate = 0.2;
        c.lost_response_rate = 0.3;
        c.rate_limit = Some(40);
        c.fault_seed = Some(5);
    });
    let orphans = seeded_orphans(&world);
    assert_eq!(orphans.len(), 100);
    let before = all_connections(&world);
    let (code, out) = apply(
        &world,
        "prune.yaml",
        PRUNE_PLAN,
        &[
            "--yes",
            "--prune",
            "--concurrency",
            "8",
            "--report",
            "r.json",
        ],
    );
    assert_eq!(code, Some(0), "{out}");

    let after = all_connections(&world);
    assert_eq!(deleted(&world), orphans, "every orphan, and only them");
    for (id, connection) in &before {
        if !orphans.contains(id) {
            assert_eq!(&after[id], connection, "touched: {}", connection.name);
        }
    }
    assert_eq!(after.len(), before.len(), "nothing made");
    let report = read_report(&world, "r.json");
    assert_eq!(rows_with(&report, "deleted"), orphans);
    assert_eq!(report["summary"]["deleted"], 100);
    assert_eq!(report["summary"]["failed"], 0);

    // Each delete was sent once, plus once per answer the faults spoiled (a 5xx or a 429
    // changes nothing and is tried again).
    let stats = world.stats();
    let sent = world.requests("DELETE /connections/{connectionId}");
    let spoiled = stats["faults"]["failed"].as_u64().unwrap()
        + stats["faults"]["rate_limited"].as_u64().unwrap();
    assert!(
        sent >= 100 && sent <= 100 + spoiled,
        "{sent} deletes, {stats}"
    );
    assert_eq!(world.requests("POST /connections"), 0);
    assert_eq!(world.requests("PATCH /connections/{connectionId}"), 0);
}

#[test]
fn ctrl_c_during_a_prune_reports_what_the_server_deleted() {
    let world = orphan_world(100, |c| c.latency = Duration::from_millis(40));
    let plan = world.plan("prune.yaml", PRUNE_PLAN);
    let mut child = world
        .replicate_process()
        .args(["apply", "--yes", "--prune", "--concurrency", "2"])
        .args(["--report", "report.json"])
        .arg(&plan)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while world.requests("DELETE /connections/{connectionId}") < 5 {
        assert!(started.elapsed() < Duration::from_secs(120), "no deletes");
        std::thread::sleep(Duration::from_millis(10));
    }
    kill(
        Pid::from_raw(i32::try_from(child.id()).unwrap()),
        Signal::SIGINT,
    )
    .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("replicate did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));

    let report = read_report(&world, "report.json");
    assert_eq!(report["state"], "interrupted", "{report}");
    let gone = deleted(&world);
    assert_eq!(rows_with(&report, "deleted"), gone, "{report}");
    assert!(
        gone.len() >= 5 && gone.len() < 100,
        "stopped early: {}",
        gone.len()
    );
    let not_run = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["action"] == "delete" && t["outcome"] == "not_run")
        .count();
    assert_eq!(gone.len() + not_run, 100, "every orphan deleted or not run");
    assert!(
        gone.is_subset(&seeded_orphans(&world)),
        "only orphans deleted"
    );
}
