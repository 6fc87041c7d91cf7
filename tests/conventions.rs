//! The command line's conventions, end to end: a closed stdout, an unreachable server, the
//! prompt and Ctrl-C, `--yes` without a terminal, suggestions, reports, completions and the
//! plan's schema.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use support::{BULK, World};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Issue 13.1: `replicate plan big.yaml | head -2` ends quietly with the run's status.
#[test]
fn a_closed_stdout_is_a_normal_end() {
    let world = World::with(|c| c.extra_sources = 3000);
    let plan = world.plan("big.yaml", BULK);
    let mut child = world
        .replicate_process()
        .arg("plan")
        .arg(&plan)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    // `head -2`: two lines, then the reader goes away.
    for _ in 0..2 {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(!line.is_empty());
    }
    drop(stdout);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{stderr}"
    );
}
