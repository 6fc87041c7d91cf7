//! Hostile files: plans and seeds that are not regular files, too big, alias bombs, or nested
//! deeper than any parser should go. Each is given to the real binary (`replicate validate FILE`,
//! `replicate sandbox --seed FILE`), which must refuse it with exit code 1 and a message that
//! names the file and the limit, without hanging and without eating memory.
//!
//! Memory is the child's peak RSS from `getrusage(RUSAGE_CHILDREN)`, as the benchmark measures
//! it: a test process runs many children at once, so each run goes through a wrapper, this test
//! binary started again with only [`wrapper_for_measured_runs`], whose one child is `replicate`.
//! The wrapper also holds the watchdog (a hung child is killed, and the test fails) and caps the
//! child's address space, so that a regression cannot take the machine down with it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The most memory a refusal may take: replicate itself needs about 15 MB.
const MAX_RSS_KIB: u64 = 100 * 1024;

/// How long a run may take before the watchdog kills it: far beyond what a refusal needs.
const WATCHDOG: Duration = crate::support::HANG_GUARD;

/// The address-space cap of the wrapped child, a safety net (a /dev/zero read stops there).
const ADDRESS_SPACE: u64 = 4 << 30;

const WRAP_ENV: &str = "HOSTILE_FILES_WRAP";
const WRAP_PROGRAM_ENV: &str = "HOSTILE_FILES_PROGRAM";
const WRAP_ARGS_ENV: &str = "HOSTILE_FILES_ARGS";

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stderr: String,
    wall: Duration,
    max_rss_kib: u64,
    killed: bool,
}

/// Runs `replicate ARGS` through the wrapper, with `env` added.
fn measured(args: &[&str], env: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let program = assert_cmd::cargo::cargo_bin("replicate");
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &wrapper_test_name(),
            "--test-threads=1",
            "--quiet",
        ])
        .env(WRAP_ENV, dir.path())
        .env(WRAP_PROGRAM_ENV, &program)
        .env(WRAP_ARGS_ENV, args.join("\n"))
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "the wrapper failed: {status}");
    let result = std::fs::read_to_string(dir.path().join("result")).unwrap();
    let fields: Vec<&str> = result.split_whitespace().collect();
    let run = Run {
        code: fields[0].parse().ok(),
        wall: Duration::from_millis(fields[1].parse().unwrap()),
        max_rss_kib: fields[2].parse().unwrap(),
        killed: fields[3] == "killed",
        stderr: std::fs::read_to_string(dir.path().join("stderr")).unwrap(),
    };
    // For the record (`--nocapture`): what each case costs.
    eprintln!(
        "replicate {}: exit {:?}, {:?}, peak {} MiB{}",
        args.join(" "),
        run.code,
        run.wall,
        run.max_rss_kib / 1024,
        if run.killed {
            ", killed by the watchdog"
        } else {
            ""
        }
    );
    run
}

/// The wrapper's name as the test harness knows it: its path in the test binary, without the
/// crate (`hostile_files::wrapper_for_measured_runs`), so `--exact` runs it and nothing else.
fn wrapper_test_name() -> String {
    let module = module_path!()
        .split_once("::")
        .map_or("", |(_crate, module)| module);
    format!("{module}::wrapper_for_measured_runs")
}

/// The wrapper: runs its one child, with a watchdog, and writes `code wall_ms max_rss_kib
/// killed|done` to `$HOSTILE_FILES_WRAP/result`. A no-op in a normal test run.
#[test]
fn wrapper_for_measured_runs() {
    use nix::sys::resource::{Resource, UsageWho, getrusage, setrlimit};

    let Some(dir) = std::env::var_os(WRAP_ENV).map(PathBuf::from) else {
        return;
    };
    let program = std::env::var_os(WRAP_PROGRAM_ENV).unwrap();
    let args = std::env::var(WRAP_ARGS_ENV).unwrap();
    setrlimit(Resource::RLIMIT_AS, ADDRESS_SPACE, ADDRESS_SPACE).unwrap();
    let start = Instant::now();
    let mut child = Command::new(program)
        .args(args.split('\n'))
        .env_remove(WRAP_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let (done, watch) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let timed_out = matches!(
            watch.recv_timeout(WATCHDOG),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
        if timed_out {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
        timed_out
    });
    let status = child.wait().unwrap();
    let wall = start.elapsed();
    let _ = done.send(());
    let killed = watchdog.join().unwrap();
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).unwrap();
    let code = status
        .code()
        .map_or("signal".to_string(), |c| c.to_string());
    std::fs::write(
        dir.join("result"),
        format!(
            "{code} {} {} {}\n",
            wall.as_millis(),
            usage.max_rss(),
            if killed { "killed" } else { "done" }
        ),
    )
    .unwrap();
}

/// Asserts what a user sees of a refusal: exit code 1, the file named, `expected` in the
/// message; and that it was quick to come and small.
fn assert_refused(run: &Run, file: &Path, expected: &str) {
    assert!(
        !run.killed,
        "still running after {WATCHDOG:?}; stderr: {}",
        run.stderr
    );
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains(&file.display().to_string()),
        "the message does not name {}: {}",
        file.display(),
        run.stderr
    );
    assert!(
        run.stderr.contains(expected),
        "the message does not say {expected:?}: {}",
        run.stderr
    );
    assert!(
        run.stderr.len() < 2048,
        "a {}-byte message",
        run.stderr.len()
    );
    assert!(
        run.max_rss_kib < MAX_RSS_KIB,
        "peak memory {} MiB",
        run.max_rss_kib / 1024
    );
}

fn validate(file: &Path) -> Run {
    measured(&["validate", file.to_str().unwrap()], &[])
}

fn sandbox(file: &Path) -> Run {
    measured(
        &[
            "sandbox",
            "--listen",
            "127.0.0.1:0",
            "--seed",
            file.to_str().unwrap(),
        ],
        &[],
    )
}

// ---------------------------------------------------------------------------------------------
// The hostile files.

fn fifo(dir: &Path) -> PathBuf {
    let path = dir.join("plan.fifo");
    let status = Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(status.success());
    path
}

/// 17 MiB of comments: valid YAML, one MiB past the default limit.
fn oversized(dir: &Path) -> PathBuf {
    let path = dir.join("big.yaml");
    let line = format!("# {}\n", "x".repeat(77));
    std::fs::write(&path, line.repeat(17 * 1024 * 1024 / line.len() + 1)).unwrap();
    path
}

/// A 24 KB plan: a 21,000-character string aliased 200 times in one target's `exclude`, and
/// that target aliased 200 times: 850 MB of strings, expanded.
fn plan_alias_bomb(dir: &Path) -> PathBuf {
    let mut text = format!(
        "version: 1\ntemplate: t\ntargets:\n  - &t {{match: x, exclude: [&s \"{}\", {}]}}\n",
        "x".repeat(21_000),
        vec!["*s"; 200].join(", ")
    );
    for _ in 0..200 {
        text.push_str("  - *t\n");
    }
    let path = dir.join("aliases.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The same shape in a seed: a destination's free-form `configuration`.
fn seed_alias_bomb(dir: &Path) -> PathBuf {
    let text = format!(
        "workspaces: [{{name: W}}]\ndestinations:\n  - name: D\n    type: bigquery\n    \
         configuration:\n      s: &s \"{}\"\n      l: &l [{}]\n      m: [{}]\n",
        "x".repeat(21_000),
        vec!["*s"; 200].join(", "),
        vec!["*l"; 200].join(", ")
    );
    let path = dir.join("aliases.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `key: [[[…]]]`, 100,000 deep: 200 KB.
fn deep(dir: &Path, key: &str) -> PathBuf {
    let mut text = format!("{key}: ");
    text.push_str(&"[".repeat(100_000));
    text.push_str(&"]".repeat(100_000));
    text.push('\n');
    let path = dir.join("deep.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

const NOT_A_FILE: &str = "not a regular file; plans and seeds are read only from regular files";
const TOO_LARGE: &str = "larger than 16 MiB, the most replicate reads; set \
                         REPLICATE_MAX_FILE_BYTES to a larger number of bytes to raise the limit";
const ALIASES: &str = "aliases (`*name`) expand this document past";
const TOO_DEEP: &str = "nested more than 128 levels deep, the most the YAML reader takes";

// ---------------------------------------------------------------------------------------------
// Plans.

#[test]
fn a_fifo_plan_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let file = fifo(dir.path());
    let run = validate(&file);
    assert_refused(&run, &file, "it is a FIFO (named pipe)");
    assert_refused(&run, &file, NOT_A_FILE);
}

#[test]
fn dev_zero_as_a_plan_is_refused_without_reading() {
    let file = Path::new("/dev/zero");
    let run = validate(file);
    assert_refused(&run, file, "it is a character device");
    assert_refused(&run, file, NOT_A_FILE);
}

#[test]
fn an_oversized_plan_is_refused_and_the_limit_can_be_raised() {
    let dir = tempfile::tempdir().unwrap();
    let file = oversized(dir.path());
    assert_refused(&validate(&file), &file, TOO_LARGE);

    // A valid plan of 200 bytes: refused under a 100-byte limit, read under a 1000-byte one.
    let plan = dir.path().join("plan.yaml");
    let mut text = String::from("version: 1\ntemplate: t\ntargets:\n  - source: s\n");
    while text.len() < 200 {
        writeln!(text, "# padding").unwrap();
    }
    std::fs::write(&plan, &text).unwrap();
    let arg = plan.to_str().unwrap();
    let low = measured(&["validate", arg], &[("REPLICATE_MAX_FILE_BYTES", "100")]);
    assert_refused(&low, &plan, "larger than 100 bytes");
    let high = measured(&["validate", arg], &[("REPLICATE_MAX_FILE_BYTES", "1000")]);
    assert_eq!(high.code, Some(0), "stderr: {}", high.stderr);
    let bad = measured(&["validate", arg], &[("REPLICATE_MAX_FILE_BYTES", "lots")]);
    assert_refused(
        &bad,
        &plan,
        "REPLICATE_MAX_FILE_BYTES=\"lots\" is not a number of bytes",
    );
}

#[test]
fn an_alias_bomb_in_exclude_is_refused_early() {
    let dir = tempfile::tempdir().unwrap();
    let file = plan_alias_bomb(dir.path());
    assert_refused(&validate(&file), &file, ALIASES);
}

#[test]
fn flow_nesting_100k_deep_is_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let file = deep(dir.path(), "targets");
    let run = validate(&file);
    assert_refused(&run, &file, TOO_DEEP);
    // Where it went past the limit: line 1, the 128th bracket after `targets: `.
    assert!(
        run.stderr.contains(&format!("{}:1:137:", file.display())),
        "{}",
        run.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// Sandbox seeds: the same bounds, through the same code.

#[test]
fn a_fifo_seed_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let file = fifo(dir.path());
    assert_refused(&sandbox(&file), &file, "it is a FIFO (named pipe)");
}

#[test]
fn dev_zero_as_a_seed_is_refused_without_reading() {
    let file = Path::new("/dev/zero");
    assert_refused(&sandbox(file), file, "it is a character device");
}

#[test]
fn an_oversized_seed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = oversized(dir.path());
    assert_refused(&sandbox(&file), &file, TOO_LARGE);
}

#[test]
fn an_alias_bomb_in_a_seed_is_refused_early() {
    let dir = tempfile::tempdir().unwrap();
    let file = seed_alias_bomb(dir.path());
    assert_refused(&sandbox(&file), &file, ALIASES);
}

#[test]
fn flow_nesting_100k_deep_in_a_seed_is_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let file = deep(dir.path(), "workspaces");
    assert_refused(&sandbox(&file), &file, TOO_DEEP);
}
