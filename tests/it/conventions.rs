//! The command line's conventions, end to end: a closed stdout, an unreachable server, the
//! prompt and Ctrl-C, `--yes` without a terminal, suggestions, reports, completions and the
//! plan's schema.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{BULK, World};
use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;

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

/// A loopback port nothing listens on (bound, then let go).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Issue 13.2: a refused connection at the first request is reported at once, naming the URL
/// and where it came from (here `AIRBYTE_URL`, then the plan's `airbyte.url`).
#[test]
fn an_unreachable_server_is_named_at_once() {
    let world = World::new();
    let url = format!("http://127.0.0.1:{}/v1", closed_port());
    let plan = world.plan("p.yaml", BULK);
    let started = std::time::Instant::now();
    let output = world
        .replicate()
        .env("AIRBYTE_URL", &url)
        .arg("plan")
        .arg(&plan)
        .output()
        .unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&url) && stderr.contains("from AIRBYTE_URL"),
        "{stderr}"
    );

    let plan = world.plan("q.yaml", &format!("{BULK}airbyte:\n  url: {url}\n"));
    let output = world
        .replicate()
        .env_remove("AIRBYTE_URL")
        .arg("plan")
        .arg(&plan)
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&url) && stderr.contains("airbyte.url in"),
        "{stderr}"
    );
}

/// Issue 13.2: a base URL without `/v1` answers 404 to every route: the error says what to add.
#[test]
fn a_base_url_without_its_api_path_gets_a_hint() {
    let world = World::new();
    let origin = world.url.trim_end_matches("/v1").to_string();
    let output = world
        .replicate()
        .args(["plan", "--url", &origin])
        .arg(world.plan("p.yaml", BULK))
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("add /v1") && stderr.contains("/api/public/v1") && stderr.contains("--url"),
        "{stderr}"
    );
}

/// Issue 13.2: a 401 names the credential that was refused; a token set beside client
/// credentials is said to win.
#[test]
fn refused_credentials_are_named() {
    let world = World::new();
    let plan = world.plan("p.yaml", BULK);
    let output = world
        .replicate()
        .env("AIRBYTE_TOKEN", "not-the-token")
        .env("AIRBYTE_CLIENT_ID", "sandbox-client")
        .env("AIRBYTE_CLIENT_SECRET", "sandbox-secret")
        .arg("plan")
        .arg(&plan)
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("refused AIRBYTE_TOKEN"), "{stderr}");
    assert!(
        stderr.contains("AIRBYTE_TOKEN is used; AIRBYTE_CLIENT_ID and AIRBYTE_CLIENT_SECRET"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-token") && !stderr.contains("sandbox-secret"));

    let output = world
        .replicate()
        .env_remove("AIRBYTE_TOKEN")
        .env("AIRBYTE_CLIENT_ID", "sandbox-client")
        .env("AIRBYTE_CLIENT_SECRET", "s3cr3t-xyz")
        .arg("plan")
        .arg(&plan)
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("AIRBYTE_CLIENT_ID=sandbox-client"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cr3t-xyz"), "{stderr}");
}

/// A run of the real binary on a pseudo-terminal (`script` from util-linux) of 100 columns and
/// 40 rows: stdin, stdout and stderr are the terminal; what it shows is collected as it comes.
pub(crate) struct OnTerminal {
    child: std::process::Child,
    input: std::process::ChildStdin,
    shown: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl OnTerminal {
    pub(crate) fn start(world: &World, args: &[&str]) -> OnTerminal {
        let binary = assert_cmd::cargo::cargo_bin("replicate");
        let mut command = vec![
            "stty cols 100 rows 40 &&".into(),
            binary.display().to_string(),
        ];
        command.extend(args.iter().map(|a| (*a).to_string()));
        let mut child = std::process::Command::new("script")
            .args(["-q", "-e", "-c", &command.join(" "), "/dev/null"])
            .env("AIRBYTE_TOKEN", "sandbox-token")
            .env("AIRBYTE_URL", &world.url)
            .env("NO_COLOR", "1")
            .env_remove("AIRBYTE_CLIENT_ID")
            .env_remove("AIRBYTE_CLIENT_SECRET")
            .current_dir(world.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("`script` (util-linux) runs the binary on a pseudo-terminal");
        let input = child.stdin.take().unwrap();
        let mut output = child.stdout.take().unwrap();
        let shown = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&shown);
        std::thread::spawn(move || {
            let mut buffer = [0; 4096];
            while let Ok(n @ 1..) = output.read(&mut buffer) {
                sink.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });
        OnTerminal {
            child,
            input,
            shown,
        }
    }

    pub(crate) fn shown(&self) -> String {
        text(&self.shown.lock().unwrap())
    }

    /// Waits (at most 60 s) until the terminal shows `what`.
    pub(crate) fn wait_for(&self, what: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !self.shown().contains(what) {
            assert!(
                std::time::Instant::now() < deadline,
                "never showed {what:?}: {}",
                self.shown()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub(crate) fn type_keys(&mut self, keys: &[u8]) {
        use std::io::Write;
        self.input.write_all(keys).unwrap();
        self.input.flush().unwrap();
    }

    /// The exit code, waiting at most `limit`; `None` if it is still running then.
    pub(crate) fn exit_within(&mut self, limit: std::time::Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        None
    }
}

/// The four shops of the default seed that copy cleanly.
const SHOPS: &str = r#"
version: 1
template: "shop-template → Warehouse"
defaults:
  prefix: "{source.name|slug}_"
targets:
  - match: "shop-*"
    exclude: ["shop-legacy"]
"#;

/// A plan with two problems: no targets, and a misspelt placeholder.
const TWO_PROBLEMS: &str =
    "version: 1\ntemplate: x\ntargets: []\ndefaults:\n  name: \"{source.nam}\"\n";

const PROMPT: &str = "Only 'yes' or 'y' proceeds: ";

/// Issue 13.3: Ctrl-C at the prompt cancels at once: exit 130, nothing written, and the prompt's
/// line stays on screen (no bar redrawn over it).
#[test]
fn ctrl_c_at_the_prompt_cancels_at_once() {
    let world = World::new();
    let plan = world.plan("p.yaml", SHOPS);
    let mut terminal = OnTerminal::start(&world, &["apply", &plan.display().to_string()]);
    terminal.wait_for(PROMPT);
    terminal.type_keys(b"\x03");
    let code = terminal.exit_within(std::time::Duration::from_secs(10));
    let shown = terminal.shown();
    assert_eq!(code, Some(130), "{shown}");
    let after = &shown[shown.find(PROMPT).unwrap() + PROMPT.len()..];
    assert!(
        !after.contains("\x1b["),
        "the prompt's line was redrawn: {after:?}"
    );
    assert!(
        after.contains("interrupted at the prompt; nothing was written"),
        "{after:?}"
    );
    assert_eq!(world.requests("POST /connections"), 0);
}

/// Issue 13.4: without a terminal and without `--yes`, apply shows the preview and writes
/// nothing, and says why (SPEC §1).
#[test]
fn apply_without_a_terminal_needs_yes() {
    let world = World::new();
    let plan = world.plan("p.yaml", SHOPS);
    let output = world.replicate().arg("apply").arg(&plan).output().unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no terminal to confirm on; pass --yes to apply without asking"),
        "{stderr}"
    );
    assert!(
        text(&output.stdout).contains("+ shop-eu"),
        "the preview is shown"
    );
    assert_eq!(world.requests("POST /connections"), 0);
    let output = world
        .replicate()
        .args(["apply", "--yes"])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(world.requests("POST /connections"), 4);
}

/// Issue 13.5: a template name that is almost right gets the close names: `->` for `→`, case,
/// a source's name for its connection's.
#[test]
fn a_template_not_found_suggests_close_names() {
    let world = World::new();
    for (given, suggested) in [
        ("shop-template -> Warehouse", "shop-template → Warehouse"),
        ("SHOP-TEMPLATE → warehouse", "shop-template → Warehouse"),
        ("shop-template", "shop-template → Warehouse"),
    ] {
        let plan = world.plan(
            "p.yaml",
            &format!("version: 1\ntemplate: \"{given}\"\ntargets:\n  - source: shop-eu\n"),
        );
        let output = world.replicate().arg("plan").arg(&plan).output().unwrap();
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!("(did you mean \"{suggested}\"?)")),
            "{given}: {stderr}"
        );
        assert!(stderr.contains("replicate ls connections"), "{stderr}");
    }
    let plan = world.plan(
        "p.yaml",
        "version: 1\ntemplate: \"shop-template → Warehouse\"\ntargets:\n  - source: SHOP-EU\n",
    );
    let output = world.replicate().arg("plan").arg(&plan).output().unwrap();
    assert!(
        text(&output.stdout).contains("(did you mean \"shop-eu\"?)"),
        "{}",
        text(&output.stdout)
    );
}

/// Issue 13.5: `replicate ls connections|sources` lists names and ids.
#[test]
fn ls_lists_connections_and_sources() {
    let world = World::new();
    let output = world
        .replicate()
        .args(["ls", "connections"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        "c0000000-0000-4000-8000-000000000001  active  shop-template → Warehouse\n"
    );
    let output = world
        .replicate()
        .args(["ls", "sources", "--output", "json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "crm",
            "shop-apac",
            "shop-eu",
            "shop-latam",
            "shop-legacy",
            "shop-template",
            "shop-us"
        ]
    );
    assert_eq!(rows[2]["id"], "50c00000-0000-4000-8000-000000000002");
    // A plan's airbyte.url is used when neither --url nor AIRBYTE_URL is set.
    let plan = world.plan(
        "p.yaml",
        &format!("{SHOPS}airbyte:\n  url: {}\n", world.url),
    );
    let output = world
        .replicate()
        .env_remove("AIRBYTE_URL")
        .args(["ls", "sources"])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(
        text(&output.stdout).contains("shop-legacy"),
        "{}",
        text(&output.stderr)
    );
}

/// Issue 13.7: `-q` shows errors, changes and the summary, and no `=` rows.
#[test]
fn quiet_leaves_out_unchanged_rows() {
    let world = World::new();
    let plan = world.plan(
        "p.yaml",
        "version: 1\ntemplate: \"shop-template → Warehouse\"\ntargets:\n  - source: shop-eu\n\
         defaults:\n  prefix: \"{source.name|slug}_\"\n",
    );
    let output = world
        .replicate()
        .args(["apply", "--yes", "--quiet"])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    // The same owner tag as `p.yaml`'s (a plan's default owner is named after its file).
    let more = world.plan(
        "more.yaml",
        &format!("{SHOPS}  - source: shop-legacy\nowner: replicate:p\n"),
    );
    let output = world
        .replicate()
        .args(["plan", "-q"])
        .arg(&more)
        .output()
        .unwrap();
    let stdout = text(&output.stdout);
    assert!(!stdout.lines().any(|l| l.starts_with("= ")), "{stdout}");
    assert!(
        stdout.contains("! shop-legacy") && stdout.contains("+ shop-us"),
        "{stdout}"
    );
    assert!(stdout.contains("1 unchanged"), "{stdout}");
}

/// Issue 13.13: `--color always` colours a pipe (beside `NO_COLOR`), `CLICOLOR_FORCE` too, and
/// `--color never` wins over it.
#[test]
fn color_flag_and_environment() {
    let world = World::new();
    let plan = world.plan("p.yaml", SHOPS);
    let run = |args: &[&str], force: Option<&str>| {
        let mut command = world.replicate();
        command
            .env_remove("NO_COLOR")
            .arg("plan")
            .args(args)
            .arg(&plan);
        if let Some(force) = force {
            command.env("CLICOLOR_FORCE", force);
        }
        text(&command.output().unwrap().stdout)
    };
    assert!(run(&["--color", "always"], None).contains("\x1b[32m+"));
    assert!(!run(&[], None).contains('\x1b'), "a pipe is not a terminal");
    assert!(run(&[], Some("1")).contains("\x1b[32m+"));
    assert!(!run(&["--color", "never"], Some("1")).contains('\x1b'));
}

/// Issue 13.10: an apply that stops before any target reports `mode: apply`, and its problems
/// as a list (`errors`), hints included.
#[test]
fn an_apply_stopped_early_reports_apply_and_a_list_of_errors() {
    let world = World::new();
    let plan = world.plan(
        "p.yaml",
        "version: 1\ntemplate: \"shop-template -> Warehouse\"\ntargets:\n  - source: shop-eu\n",
    );
    let output = world
        .replicate()
        .args(["apply", "--yes", "--report", "report.json"])
        .arg(&plan)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(world.dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["mode"], "apply", "{report}");
    assert!(report.get("error").is_none(), "{report}");
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{report}");
    assert!(errors[0].as_str().unwrap().contains("no connection named"));

    // A plan with two problems: two entries.
    let bad = world.plan("bad.yaml", TWO_PROBLEMS);
    let output = world
        .replicate()
        .args(["plan", "--output", "json"])
        .arg(&bad)
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(doc["errors"].as_array().unwrap().len() >= 2, "{doc}");
}

/// Issue 13.10: `validate --output json`.
#[test]
fn validate_speaks_json() {
    let world = World::new();
    let good = world.plan("good.yaml", SHOPS);
    let bad = world.plan("bad.yaml", TWO_PROBLEMS);
    let output = world
        .replicate()
        .args(["validate", "--output", "json"])
        .arg(&good)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let plans = doc["plans"].as_array().unwrap();
    assert_eq!(plans[0]["valid"], true);
    assert_eq!(plans[0]["targetEntries"], 1);
    assert_eq!(plans[1]["valid"], false);
    assert!(plans[1]["errors"].as_array().unwrap().len() >= 2, "{doc}");
    assert!(output.stderr.is_empty(), "{}", text(&output.stderr));
}

/// Issue 13.10: `apply --dry-run --detailed-exitcode` is 2 when something would change, 0 when
/// nothing would.
#[test]
fn apply_dry_run_takes_detailed_exitcode() {
    let world = World::new();
    let plan = world.plan("p.yaml", SHOPS);
    let dry = |world: &World| {
        world
            .replicate()
            .args(["apply", "--dry-run", "--detailed-exitcode"])
            .arg(&plan)
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(dry(&world), Some(2));
    assert_eq!(world.requests("POST /connections"), 0);
    let output = world
        .replicate()
        .args(["apply", "--yes"])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(dry(&world), Some(0));
    // Without --dry-run it is a usage error.
    let output = world
        .replicate()
        .args(["apply", "--detailed-exitcode", "--yes"])
        .arg(&plan)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

/// Issue 13.11: `replicate completions SHELL` for four shells (bash's parses as bash), and
/// `replicate man`.
#[test]
fn completions_and_man_page() {
    let world = World::new();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let output = world
            .replicate()
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(output.status.success(), "{shell}: {}", text(&output.stderr));
        let script = text(&output.stdout);
        assert!(
            script.contains("detailed-exitcode") && script.contains("completions"),
            "{shell}: {script}"
        );
        if shell == "bash" {
            let file = world.dir.path().join("replicate.bash");
            std::fs::write(&file, &script).unwrap();
            let check = std::process::Command::new("bash")
                .arg("-n")
                .arg(&file)
                .output()
                .unwrap();
            assert!(check.status.success(), "{}", text(&check.stderr));
        }
    }
    let output = world.replicate().arg("man").output().unwrap();
    assert!(output.status.success());
    let page = text(&output.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH replicate 1"),
        "{page}"
    );
    assert!(
        page.contains(".TH replicate 1") && page.contains("replicate\\-apply"),
        "{page}"
    );
    let output = world
        .replicate()
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

/// The sandbox's output while it starts: its stdout up to the `stats:` line, which ends the
/// announcement, then the process is stopped.
fn sandbox_announcement(world: &World, listen: &str) -> String {
    let mut child = world
        .replicate_process()
        .args(["sandbox", "--listen", listen])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut announced = String::new();
    while !announced.contains("stats:") {
        if stdout.read_line(&mut announced).unwrap() == 0 {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    announced
}

/// Issue 13.9: `--listen` takes a host name (resolved), not only an IP address.
#[test]
fn the_sandbox_listens_on_a_host_name() {
    let world = World::new();
    let announced = sandbox_announcement(&world, "localhost:0");
    let first = announced.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("listening on http://127.0.0.1:")
            || first.starts_with("listening on http://[::1]:"),
        "{announced}"
    );
    let output = world
        .replicate()
        .args(["sandbox", "--listen", "localhost"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("`localhost` is not HOST:PORT"),
        "{}",
        text(&output.stderr)
    );
}

/// Issue 13.9: the sandbox's start-up errors say each cause once: a seed's problem, a port in use.
#[test]
fn sandbox_errors_say_their_cause_once() {
    let world = World::new();
    let seed = world.plan("seed.yaml", "workspaces:\n  - name: W\n    nmae: X\n");
    let output = world
        .replicate()
        .args(["sandbox", "--listen", "127.0.0.1:0", "--seed"])
        .arg(&seed)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        format!(
            "error: invalid seed: {}:3:5: workspaces[0]: unknown key `nmae` (did you mean \
             `name`?)\n",
            seed.display()
        )
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = world
        .replicate()
        .args(["sandbox", "--listen", &addr])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with(&format!("error: cannot listen on {addr}: ")),
        "{stderr}"
    );
    assert_eq!(stderr.matches("in use").count(), 1, "{stderr}");
}
