//! What a user sees when the run is stopped, the server is slow, or it says odd things: SIGTERM
//! and a second Ctrl-C still leave a true report, a report file is never stale, a slow create is
//! never made twice, names from the server cannot drive the terminal, duplicate copies are named
//! as they are, and a template deleted meanwhile is noticed. The truth is the sandbox's own
//! state, read through its API.

use crate::support::seed::{self, TEMPLATE, WAREHOUSE};
use crate::support::{BULK, HANG_GUARD, World, wait_until};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use replicate::sandbox::seed::{SeedConnection, SeedSource};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Waits for the child to exit (killing it after the hang guard) and returns its exit code.
fn exit_code(child: &mut Child) -> Option<i32> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if started.elapsed() > HANG_GUARD {
            let _ = child.kill();
            panic!("replicate did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stderr, line by line, read on its own thread so the child never blocks on a full pipe.
fn stderr_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a stderr line that contains `needle`; returns every line read so far.
fn wait_for_line(lines: &std::sync::mpsc::Receiver<String>, needle: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        match lines.recv_timeout(HANG_GUARD) {
            Ok(line) => {
                let found = line.contains(needle);
                seen.push(line);
                if found {
                    return seen;
                }
            }
            Err(e) => panic!("no line with {needle:?} on stderr ({e}); saw {seen:?}"),
        }
    }
}

fn signal(child: &Child, signal: Signal) {
    kill(Pid::from_raw(i32::try_from(child.id()).unwrap()), signal).unwrap();
}

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
    let template = seed::id(TEMPLATE);
    let warehouse = seed::id(WAREHOUSE);
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
fn sigterm_winds_down_like_ctrl_c_writes_the_report_and_exits_143() {
    let world = World::with(|c| {
        c.extra_sources = 200;
        c.latency = Duration::from_millis(50);
    });
    let plan = world.plan("bulk.yaml", BULK);
    let mut child = world
        .replicate_process()
        .args(["apply", "--yes", "--concurrency", "2"])
        .args(["--report", "report.json"])
        .arg(&plan)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("5 creates", || world.requests("POST /connections") >= 5);
    signal(&child, Signal::SIGTERM);
    assert_eq!(exit_code(&mut child), Some(143));
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    assert!(
        stdout.contains("Apply: "),
        "the summary is printed: {stdout}"
    );

    let report = read_report(&world, "report.json");
    assert_eq!(report["state"], "interrupted", "{report}");
    let created = report_matches_server(&world, &report, false);
    assert!(created < 200, "the signal stopped the run early");
    let accounted = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["outcome"] == "created" || t["outcome"] == "not_run")
        .count();
    assert_eq!(accounted, 200, "every target is created or not run");
}

#[test]
fn a_second_ctrl_c_exits_at_once_and_still_writes_what_is_known() {
    // Creates take 5 s: the second Ctrl-C comes while some are surely in flight.
    let world = World::with(|c| {
        c.extra_sources = 40;
        c.create_delay = Duration::from_secs(5);
    });
    let plan = world.plan("bulk.yaml", BULK);
    std::fs::write(
        world.dir.path().join("report.json"),
        r#"{"summary": {"created": 999}, "note": "an older run's report"}"#,
    )
    .unwrap();
    let mut child = world
        .replicate_process()
        .args(["apply", "--yes", "--concurrency", "4"])
        .args(["--report", "report.json"])
        .arg(&plan)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut child);
    // Some copies are made, and the next creates are in flight.
    wait_until("4 copies and 8 creates", || {
        world.stats()["connections"].as_u64() >= Some(5) && world.requests("POST /connections") >= 8
    });
    signal(&child, Signal::SIGINT);
    wait_for_line(&lines, "interrupted");
    signal(&child, Signal::SIGINT);
    assert_eq!(exit_code(&mut child), Some(130));

    let report = read_report(&world, "report.json");
    assert_eq!(report["mode"], "apply", "{report}");
    assert_eq!(report["state"], "interrupted", "{report}");
    let created = report_matches_server(&world, &report, true);
    assert!(
        created >= 4,
        "the copies made before are reported: {report}"
    );
    let unknown = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["outcome"] == "failed")
        .count();
    // Had the run waited for them, the creates in flight would have ended `created`.
    assert!(
        unknown >= 1,
        "the second Ctrl-C did not wait: the creates in flight are reported as unknown: {report}"
    );
}

#[test]
fn a_report_file_is_never_left_stale() {
    let world = World::with(|c| {
        c.extra_sources = 100;
        c.latency = Duration::from_millis(30);
    });
    let plan = world.plan("bulk.yaml", BULK);
    std::fs::write(
        world.dir.path().join("report.json"),
        r#"{"mode": "apply", "summary": {"created": 999}}"#,
    )
    .unwrap();
    let mut child = world
        .replicate_process()
        .args(["apply", "--yes", "--concurrency", "2"])
        .args(["--report", "report.json"])
        .arg(&plan)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("5 creates", || world.requests("POST /connections") >= 5);
    child.kill().unwrap();
    child.wait().unwrap();
    let report = read_report(&world, "report.json");
    assert_eq!(report["state"], "in_progress", "{report}");
    assert_eq!(report["mode"], "apply", "{report}");
}

#[test]
fn an_unwritable_report_path_fails_before_any_write() {
    let world = World::with(|c| c.extra_sources = 3);
    let plan = world.plan("bulk.yaml", BULK);
    let before = world.connections().len();
    let output = world
        .replicate()
        .args(["apply", "--yes", "--report", "no-such-dir/report.json"])
        .arg(&plan)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no-such-dir/report.json"), "{stderr}");
    assert_eq!(world.requests("POST /connections"), 0);
    assert_eq!(world.connections().len(), before);
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

#[test]
fn a_template_deleted_during_the_run_is_reported() {
    let world = World::with(|c| {
        c.extra_sources = 6;
        c.create_delay = Duration::from_millis(500);
    });
    let plan = world.plan("bulk.yaml", BULK);
    let child = world
        .replicate_process()
        .args(["apply", "--yes", "--concurrency", "1"])
        .args(["--report", "report.json"])
        .arg(&plan)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("a create", || world.requests("POST /connections") >= 1);
    assert!(
        world
            .status(reqwest::Method::DELETE, &format!("/connections/{TEMPLATE}"))
            .is_success()
    );
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let all = format!("{stdout}{stderr}");
    assert!(
        all.contains("template") && all.contains("deleted"),
        "the summary says the template is gone: {all}"
    );
    let report = read_report(&world, "report.json");
    let warnings = report["warnings"].as_array().cloned().unwrap_or_default();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("deleted"))),
        "{report}"
    );
    let copies: BTreeSet<Uuid> = server_copies(&world).into_keys().collect();
    assert_eq!(copies.len(), 6, "the copies were still made");
}
