//! The plan's lease: two applies of one plan never both write; a run killed at any moment is
//! followed by a re-run that waits out its stale lease and ends with exactly one copy per source;
//! `plan` says when the lease is held; `replicate unlock` drops it; a run whose lease is taken
//! from it starts no further write. The truth is the sandbox's state.

use crate::support::{BULK, World, seed, wait_until};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::{Output, Stdio};
use std::time::Duration;

/// The lease tags in the seed's workspace, by name.
fn lease_tags(world: &World) -> Vec<String> {
    let tags = world.get(&format!("/tags?workspaceIds={}", seed::WORKSPACE));
    tags["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .filter(|name| name.starts_with("lease:"))
        .map(str::to_string)
        .collect()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Starts `replicate ARGS PLAN` in the background, its output thrown away.
fn quiet_run(world: &World, plan: &std::path::Path, args: &[&str]) -> std::process::Child {
    world
        .replicate_process()
        .args(args)
        .arg(plan)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn slow_fleet(sources: usize) -> World {
    World::with(|c| {
        c.extra_sources = sources;
        c.latency = Duration::from_millis(20);
        c.create_delay = Duration::from_millis(300);
    })
}

/// Two applies of one 300-source plan started at once, with `args`; both outputs, once both
/// ended.
fn two_at_once(args: &[&str]) -> (World, Output, Output) {
    let world = World::with(|c| {
        c.extra_sources = 300;
        c.latency = Duration::from_millis(20);
    });
    let plan = world.plan("bulk.yaml", BULK);
    let spawn = || {
        world
            .replicate_process()
            .args(["apply", "--yes", "-q"])
            .args(args)
            .arg(&plan)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    (world, a, b)
}

/// Each of the 300 sources has one copy, made by one create.
fn made_once(world: &World) {
    let copies = world.copies_per_source();
    assert_eq!(copies.len(), 300);
    assert!(copies.values().all(|&n| n == 1), "{copies:?}");
    assert_eq!(world.requests("POST /connections"), 300);
}

#[test]
fn two_applies_at_once_one_writes_the_other_stops_before_any_write_naming_the_lease() {
    let (world, a, b) = two_at_once(&[]);
    let mut codes = [a.status.code(), b.status.code()];
    codes.sort_unstable();
    assert_eq!(codes, [Some(0), Some(1)], "{}\n---\n{}", text(&a), text(&b));
    let loser = if a.status.success() { &b } else { &a };
    let said = text(loser);
    assert!(
        said.contains("the plan's lease (owner \"replicate:bulk\") is held by run")
            && said.contains("Nothing was written")
            && said.contains("replicate unlock"),
        "{said}"
    );
    made_once(&world);
    assert!(lease_tags(&world).is_empty(), "the winner dropped it");
}

/// The run that waits for the lease lists the connections only once it holds it, so it finds
/// every copy the first run made and makes none of its own.
#[test]
fn two_applies_at_once_that_wait_for_the_lease_make_each_copy_once() {
    let (world, a, b) = two_at_once(&["--lock-timeout", "60s", "--output", "json"]);
    assert!(
        a.status.success() && b.status.success(),
        "{}\n---\n{}",
        text(&a),
        text(&b)
    );
    let created = |output: &Output| {
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        report["summary"]["created"].as_u64().unwrap()
    };
    let mut created = [created(&a), created(&b)];
    created.sort_unstable();
    assert_eq!(
        created,
        [0, 300],
        "the second run found the first one's copies"
    );
    made_once(&world);
    assert!(lease_tags(&world).is_empty(), "both dropped it");
}

/// Kills a run once `moment` says so, then re-runs at once with a lock timeout; the re-run must
/// end with exactly one copy per source, and its report must be the server's state. Both runs
/// have the same short request timeout, as the README asks of every run of a plan: staleness
/// is judged by the waiting run's. (With the killed run on the default 120 s, it renewed its
/// lease every 30 s, so a kill 13 s in found its lease stale by the re-run's 5 s measure at
/// once, and the re-run listed while the killed run's last creates were still landing.)
fn kill_then_rerun(moment: (&str, u64)) {
    let (route, seen) = moment;
    let world = slow_fleet(300);
    let plan = world.plan("bulk.yaml", BULK);
    let mut child = quiet_run(
        &world,
        &plan,
        &["apply", "--yes", "-q", "--request-timeout", "5s"],
    );
    wait_until("the run getting to its moment", || {
        world.requests(route) >= seen
    });
    child.kill().unwrap();
    child.wait().unwrap();

    let rerun = world
        .replicate()
        .args([
            "apply",
            "--yes",
            "-q",
            "--request-timeout",
            "5s",
            "--lock-timeout",
            "60s",
            "--report",
            "report.json",
        ])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(
        rerun.status.success(),
        "killed at {seen} × {route}: {}",
        text(&rerun)
    );
    let copies = world.copies_per_source();
    assert_eq!(copies.len(), 300, "killed at {seen} × {route}");
    let twice: Vec<_> = copies.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "killed at {seen} × {route}: {twice:?}");
    let report: Value =
        serde_json::from_slice(&std::fs::read(world.dir.path().join("report.json")).unwrap())
            .unwrap();
    let reported: BTreeSet<String> = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| matches!(t["outcome"].as_str(), Some("created" | "unchanged")))
        .map(|t| t["connectionId"].as_str().unwrap().to_string())
        .collect();
    let on_server: BTreeSet<String> = world
        .connections()
        .into_iter()
        .filter(|c| c.name.starts_with("bulk-"))
        .map(|c| c.connection_id.to_string())
        .collect();
    assert_eq!(reported, on_server, "killed at {seen} × {route}");
    assert!(lease_tags(&world).is_empty(), "the re-run dropped it");
}

/// Ten moments, from taking the lease (the gate may be left behind) to the last creates, five
/// per test so the harness runs the two halves side by side; each half runs its moments at
/// once, each on its own sandbox.
fn kill_at(moments: &[(&'static str, u64)]) {
    std::thread::scope(|scope| {
        for &moment in moments {
            scope.spawn(move || kill_then_rerun(moment));
        }
    });
}

#[test]
fn kill_9_early_then_an_immediate_rerun_leaves_one_copy_per_source() {
    kill_at(&[
        ("POST /tags", 1),
        ("PATCH /tags/{tagId}", 1),
        ("POST /connections", 1),
        ("POST /connections", 10),
        ("POST /connections", 40),
    ]);
}

#[test]
fn kill_9_late_then_an_immediate_rerun_leaves_one_copy_per_source() {
    kill_at(&[
        ("POST /connections", 80),
        ("POST /connections", 130),
        ("POST /connections", 190),
        ("POST /connections", 250),
        ("POST /connections", 295),
    ]);
}

/// 40 slow sources and an apply of their plan killed after two creates: its lease is left,
/// fresh for 155 s.
fn lease_left_by_a_killed_run() -> (World, std::path::PathBuf) {
    let world = slow_fleet(40);
    let plan = world.plan("bulk.yaml", BULK);
    let mut child = quiet_run(
        &world,
        &plan,
        &["apply", "--yes", "-q", "--concurrency", "1"],
    );
    wait_until("some creates", || world.requests("POST /connections") >= 2);
    child.kill().unwrap();
    child.wait().unwrap();
    (world, plan)
}

#[test]
fn plan_says_when_the_lease_is_held_and_unlock_drops_it() {
    let (world, plan) = lease_left_by_a_killed_run();
    assert_eq!(
        lease_tags(&world).len(),
        1,
        "the killed run's lease is left"
    );

    let preview = world.replicate().arg("plan").arg(&plan).output().unwrap();
    let said = text(&preview);
    assert!(preview.status.success(), "{said}");
    assert!(
        said.contains("warning: the plan's lease is held by run")
            && said.contains("an apply of this plan is running"),
        "{said}"
    );

    // Without a terminal, unlock asks for --yes and drops nothing.
    let refused = world.replicate().arg("unlock").arg(&plan).output().unwrap();
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("pass --yes"), "{}", text(&refused));
    assert_eq!(lease_tags(&world).len(), 1);

    let dropped = world
        .replicate()
        .args(["unlock", "--yes"])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(dropped.status.success(), "{}", text(&dropped));
    assert!(
        String::from_utf8_lossy(&dropped.stdout).contains("Dropped the lease of"),
        "{}",
        text(&dropped)
    );
    assert!(lease_tags(&world).is_empty());
    let again = world
        .replicate()
        .args(["unlock", "--yes"])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("No lease is held on"),
        "{}",
        text(&again)
    );

    // With the lease dropped, an apply goes at once (no lock timeout) and converges.
    world
        .replicate()
        .args(["apply", "--yes", "-q"])
        .arg(&plan)
        .assert()
        .success();
    let copies = world.copies_per_source();
    assert_eq!(copies.len(), 40);
    assert!(copies.values().all(|&n| n == 1), "{copies:?}");
}

/// A run reads the catalogs of the copies it will make while it takes its lease; when another
/// run holds the lease, no more than two waves of them (2 × `--concurrency`) are read for nothing.
#[test]
fn a_run_that_finds_the_lease_held_reads_at_most_two_waves_of_catalogs_and_writes_nothing() {
    let (world, plan) = lease_left_by_a_killed_run();
    let (catalogs, creates) = (
        world.requests("GET /streams"),
        world.requests("POST /connections"),
    );

    // Two seconds of waiting would be time enough to read all 38 catalogs left.
    let refused = world
        .replicate()
        .args([
            "apply",
            "--yes",
            "-q",
            "--concurrency",
            "2",
            "--lock-timeout",
            "2s",
        ])
        .arg(&plan)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("is held by run"),
        "{}",
        text(&refused)
    );
    let read = world.requests("GET /streams") - catalogs;
    assert!(
        read <= 4,
        "{read} catalogs read by a run that never held the lease"
    );
    assert_eq!(world.requests("POST /connections"), creates);
}

#[test]
fn a_run_whose_lease_is_dropped_starts_no_further_write_and_says_so() {
    let world = slow_fleet(200);
    let plan = world.plan("bulk.yaml", BULK);
    let child = world
        .replicate_process()
        // Renewed every second, so the loss is found within about one.
        .args(["apply", "--yes", "-q", "--concurrency", "2"])
        .args(["--request-timeout", "2s"])
        .arg(&plan)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("some creates", || world.requests("POST /connections") >= 4);
    world
        .replicate()
        .args(["unlock", "--yes"])
        .arg(&plan)
        .assert()
        .success();
    let output = child.wait_with_output().unwrap();
    let said = text(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(
        said.contains("the plan's lease was lost during the run"),
        "{said}"
    );
    let made = world.copies_per_source().len();
    assert!(made < 200, "the writes stopped: {made} of 200 made");
}

#[test]
fn ctrl_c_drops_the_lease() {
    let world = slow_fleet(100);
    let plan = world.plan("bulk.yaml", BULK);
    let child = quiet_run(
        &world,
        &plan,
        &["apply", "--yes", "-q", "--concurrency", "2"],
    );
    wait_until("some creates", || world.requests("POST /connections") >= 2);
    assert_eq!(lease_tags(&world).len(), 1);
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130));
    assert!(lease_tags(&world).is_empty(), "{:?}", lease_tags(&world));
}
