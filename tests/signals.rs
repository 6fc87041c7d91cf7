//! What a user sees when the server says odd things: names from the server and values from the
//! plan cannot drive the terminal, and duplicate copies are named as they are.

mod support;

use replicate::sandbox::seed::{SeedConnection, SeedSource};
use support::World;
use uuid::Uuid;

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
