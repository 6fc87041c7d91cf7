//! `cargo bench --bench apply`: how close `replicate` gets to the physical limit.
//!
//! Each scenario starts `replicate sandbox` as its own process (`--sources N`, `--latency L`,
//! maybe `--create-delay D` or `--rate-limit R`), writes a plan that targets every `bulk-*`
//! source with the sandbox's template `shop-template → Warehouse`, makes what the scenario starts
//! from with an unmeasured `replicate apply` (copies; copies and then a template schedule changed
//! through the API, so that every copy drifted), resets the sandbox's accounting
//! (`DELETE /_sandbox/stats`), runs the measured process — `replicate apply --yes --quiet
//! --concurrency C`, `replicate plan`, `replicate status --output json`, or the sequential script
//! ([`script`]: what a user would write, with the same HTTP stack) — then asks the sandbox
//! (`GET /_sandbox/stats`) how many requests it served, how many were 429, how many were ever
//! in flight at once, the service time it actually gave (mean, p50, p99), and when the first
//! write arrived.
//!
//! The table compares the wall time with the *ideal* time: with a fixed latency per request and
//! at most C requests in flight, `requests × latency ÷ C` is the fastest any client could make
//! the same requests. Under a rate limit of R per second (the sandbox's token bucket: a burst of
//! R, then R per second), a perfect client makes no 429s, so its `requests − 429s` requests take
//! at least `(requests − 429s − R) ÷ R`; the ideal is the larger of the two bounds. Without added
//! latency or a limit there is no bound (`-`): that scenario measures replicate's own CPU cost.
//! Efficiency is `ideal ÷ wall` (1.0 = at the limit). A create delay D adds `creates × D ÷ C`.
//! The same bound with the sandbox's observed mean service time in place of the configured
//! latency gives the "observed" efficiency: what is left is the client's own doing.
//!
//! CPU time and peak RSS are those of the `replicate` process alone, measured exactly: the bench
//! re-executes itself as a small wrapper (env `REPLICATE_BENCH_WRAP` = a file to write to) whose
//! only child is `replicate`; once that child is reaped, the wrapper calls
//! `getrusage(RUSAGE_CHILDREN)` (user + system CPU, `ru_maxrss`) and writes one JSON line.
//! The sandbox is a child of the bench, never of the wrapper, so it never pollutes the numbers.
//! Wall time is measured in the wrapper too, from spawning `replicate` to reaping it.
//!
//! Run:
//!
//! ```sh
//! cargo bench --bench apply                                # every scenario
//! cargo bench --bench apply -- apply-1000-c32 plan-20000   # only these
//! cargo bench --bench apply -- --quick                     # 10× smaller, to check the harness
//! cargo bench --bench apply -- --runs 5 apply-1000-c8       # the median of 5 runs
//! ```
//!
//! `REPLICATE_BENCH_QUICK=1` is the same as `--quick`. With `--runs N` each scenario runs N times
//! (a fresh sandbox each time) and the row is the run with the median wall time; every run's
//! wall time is listed under the table. On a shared machine, prefer `--runs 3` or more. The table is Markdown, with the machine
//! (CPUs, CPU model, load average) and the git commit, ready for the README. Nothing here
//! asserts on speed; the bench exits non-zero only when a scenario could not run (the sandbox
//! did not start, replicate failed, the copies made are not the copies asked for, a drifted
//! copy was not patched exactly once, or copies in line with the plan cost a write or a catalog
//! read).

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The `replicate` binary. Cargo sets `CARGO_BIN_EXE_<name>` for integration tests and benches
/// and builds it first, in the same profile: under `cargo bench` that is the `bench` profile,
/// which inherits `release`. So the numbers are those of a release build, built by cargo.
const REPLICATE: &str = env!("CARGO_BIN_EXE_replicate");

/// Set in the wrapper's environment: the file the wrapper writes its measurements to.
const WRAP_ENV: &str = "REPLICATE_BENCH_WRAP";
/// Set in the wrapper's environment: give up on `replicate` after this many seconds.
const WRAP_TIMEOUT_ENV: &str = "REPLICATE_BENCH_TIMEOUT_SECS";
/// Set in the measured process's environment: run as the sequential script, with this template.
const SCRIPT_ENV: &str = "REPLICATE_BENCH_SCRIPT";
/// `1` = `--quick`.
const QUICK_ENV: &str = "REPLICATE_BENCH_QUICK";

/// How long one `replicate` run may take before the bench kills it.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the sandbox may take to build its store and print its address.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The sandbox's static token (default seed).
const TOKEN: &str = "sandbox-token";

fn main() -> ExitCode {
    if let Some(out) = std::env::var_os(WRAP_ENV) {
        return match wrap(Path::new(&out)) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("bench wrapper: {e:#}");
                ExitCode::from(125)
            }
        };
    }
    // The wrapper's child, which the wrapper runs without `WRAP_ENV`.
    if let Ok(template) = std::env::var(SCRIPT_ENV) {
        return match script(&template) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sequential script: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Apply,
    Plan,
    /// What a user's script does, one request at a time: see [`script`].
    Script,
    /// `replicate status --output json`: the fleet at a glance, one `GET /jobs` per copy.
    Status,
}

/// What the sandbox holds before the measured run, made by an unmeasured `replicate apply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    /// Only the sources: every target is a create.
    Nothing,
    /// A copy of the template on every target, in line with the plan.
    Copies,
    /// Those copies, then the template's schedule changed through the API: every copy drifted.
    DriftedCopies,
}

#[derive(Debug, Clone)]
struct Scenario {
    name: &'static str,
    verb: Verb,
    setup: Setup,
    targets: usize,
    concurrency: u16,
    latency: Duration,
    /// `--create-delay` of the sandbox: every create takes this much longer.
    create_delay: Duration,
    /// `--rate-limit` of the sandbox, requests per second.
    rate_limit: Option<u32>,
}

fn scenarios(quick: bool) -> Vec<Scenario> {
    // --quick: ten times fewer targets, same shape; only for checking the harness.
    let n = |full: usize| if quick { full / 10 } else { full };
    let ms20 = Duration::from_millis(20);
    let apply = |name, targets, concurrency, latency| Scenario {
        name,
        verb: Verb::Apply,
        setup: Setup::Nothing,
        targets: n(targets),
        concurrency,
        latency,
        create_delay: Duration::ZERO,
        rate_limit: None,
    };
    let slow_creates = |name, concurrency| Scenario {
        create_delay: Duration::from_secs(2),
        ..apply(name, 200, concurrency, Duration::from_millis(200))
    };
    vec![
        apply("apply-1000-c1", 1000, 1, ms20),
        apply("apply-1000-c8", 1000, 8, ms20),
        apply("apply-1000-c32", 1000, 32, ms20),
        apply("apply-1000-c128", 1000, 128, ms20),
        Scenario {
            verb: Verb::Script,
            ..apply("sequential-script", 1000, 1, ms20)
        },
        apply("overlap-400-c8", 400, 8, Duration::from_millis(50)),
        slow_creates("create-2s-200-c8", 8),
        slow_creates("create-2s-200-c32", 32),
        Scenario {
            verb: Verb::Plan,
            setup: Setup::Copies,
            ..apply("drift-1000", 1000, 32, ms20)
        },
        Scenario {
            setup: Setup::DriftedCopies,
            ..apply("update-1000-c32", 1000, 32, ms20)
        },
        Scenario {
            verb: Verb::Plan,
            ..apply("plan-20000", 20_000, 32, Duration::ZERO)
        },
        Scenario {
            rate_limit: Some(50),
            ..apply("apply-300-ratelimit-50", 300, 8, ms20)
        },
        Scenario {
            verb: Verb::Status,
            setup: Setup::Copies,
            ..apply("status-1000-c32", 1000, 32, ms20)
        },
    ]
}

/// What the command line asks for.
struct Selection {
    quick: bool,
    /// Runs per scenario; the row shows the median.
    runs: usize,
    names: Vec<String>,
}

fn parse_args() -> Result<Selection> {
    let mut quick = std::env::var(QUICK_ENV).is_ok_and(|v| v == "1" || v == "true");
    let mut runs = 1;
    let mut names = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => {
                let n = args.next().context("--runs needs a number")?;
                runs = n
                    .parse()
                    .ok()
                    .filter(|&n| n >= 1)
                    .with_context(|| format!("--runs {n}: not a number of runs (1 or more)"))?;
            }
            // `cargo bench` passes `--bench` to every bench binary.
            "--bench" => {}
            "--quick" => quick = true,
            "-h" | "--help" => {
                let all: Vec<_> = scenarios(false).iter().map(|s| s.name).collect();
                println!(
                    "usage: cargo bench --bench apply -- [--quick] [--runs N] [SCENARIO...]\n\
                     scenarios: {}\n\
                     --quick (or {QUICK_ENV}=1): ten times fewer targets, to check the harness\n\
                     --runs N: run each scenario N times, show the median (default 1)",
                    all.join(" ")
                );
                std::process::exit(0);
            }
            flag if flag.starts_with('-') => bail!("unknown flag {flag} (try --help)"),
            name => names.push(name.to_string()),
        }
    }
    Ok(Selection { quick, runs, names })
}

// ---------------------------------------------------------------------------------------------
// The bench

/// One scenario's numbers.
#[derive(Debug)]
struct Measured {
    requests: u64,
    too_many: u64,
    /// `POST /connections` answered, to add the create delay to the ideal.
    creates: u64,
    max_in_flight: u64,
    usage: Usage,
    /// From starting the measured process to the first write (create or patch) reaching the
    /// sandbox; `None` when nothing was written.
    first_write: Option<Duration>,
    /// The service time the sandbox gave (see `service_time_ms` in its stats), in ms.
    observed: Observed,
    /// Requests by route template, as the sandbox counted them, most first.
    routes: Vec<(String, u64)>,
    /// Responses by status code.
    responses: Vec<(String, u64)>,
    /// The wall time of every run of the scenario, fastest first (this one is the median).
    walls: Vec<Duration>,
}

/// Service times, in milliseconds.
#[derive(Debug, Clone, Copy)]
struct Observed {
    mean: f64,
    p50: f64,
    p99: f64,
}

enum Outcome {
    Done(Measured),
    Skipped(String),
    Failed(String),
}

fn run() -> Result<bool> {
    let selection = parse_args()?;
    let all = scenarios(selection.quick);
    for name in &selection.names {
        if !all.iter().any(|s| s.name == name) {
            let known: Vec<_> = all.iter().map(|s| s.name).collect();
            bail!("unknown scenario {name:?}; known: {}", known.join(", "));
        }
    }
    let chosen: Vec<Scenario> = all
        .into_iter()
        .filter(|s| selection.names.is_empty() || selection.names.iter().any(|n| n == s.name))
        .collect();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a tokio runtime")?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build an HTTP client")?;
    let has_rate_limit = sandbox_has_flag("--rate-limit")?;
    let load_before = load_average();

    let mut rows = Vec::new();
    for scenario in &chosen {
        eprintln!(
            "bench: {} ({} targets, concurrency {}, latency {})…",
            scenario.name,
            scenario.targets,
            scenario.concurrency,
            fmt_latency(scenario.latency)
        );
        let outcome = if scenario.rate_limit.is_some() && !has_rate_limit {
            Outcome::Skipped("skipped: sandbox has no --rate-limit".to_string())
        } else {
            match run_repeatedly(scenario, selection.runs, &runtime, &http) {
                Ok(m) => Outcome::Done(m),
                Err(e) => {
                    eprintln!("bench: {} FAILED: {e:#}", scenario.name);
                    Outcome::Failed(format!("failed: {}", first_line(&format!("{e}"))))
                }
            }
        };
        rows.push((scenario.clone(), outcome));
    }

    let failed = rows
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Failed(_)))
        .count();
    print!(
        "{}",
        render(&rows, selection.quick, selection.runs, &load_before)
    );
    if failed > 0 {
        eprintln!("bench: {failed} scenario(s) failed");
    }
    Ok(failed == 0)
}

/// Runs a scenario `runs` times; the run with the median wall time, knowing every wall time.
fn run_repeatedly(
    scenario: &Scenario,
    runs: usize,
    runtime: &tokio::runtime::Runtime,
    http: &reqwest::Client,
) -> Result<Measured> {
    let mut all = Vec::with_capacity(runs);
    for _ in 0..runs {
        all.push(run_scenario(scenario, runtime, http)?);
    }
    all.sort_by_key(|m| m.usage.wall);
    let walls: Vec<Duration> = all.iter().map(|m| m.usage.wall).collect();
    let mut median = all.swap_remove(all.len() / 2);
    median.walls = walls;
    Ok(median)
}

fn run_scenario(
    scenario: &Scenario,
    runtime: &tokio::runtime::Runtime,
    http: &reqwest::Client,
) -> Result<Measured> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let plan = dir.path().join("bench.yaml");
    std::fs::write(&plan, PLAN).with_context(|| format!("cannot write {}", plan.display()))?;

    let sandbox = SandboxProcess::start(scenario)?;
    let stats_url = format!("{}/_sandbox/stats", sandbox.origin());
    let template = runtime.block_on(template_id(http, &sandbox.url))?;
    if scenario.setup != Setup::Nothing {
        let output = replicate(Verb::Apply, 32, &plan, &sandbox.url, dir.path())
            .output()
            .context("cannot run replicate apply (set-up)")?;
        if !output.status.success() {
            bail!(
                "the set-up's replicate apply exited with {}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim_end()
            );
        }
    }
    if scenario.setup == Setup::DriftedCopies {
        runtime.block_on(change_template_schedule(http, &sandbox.url, template))?;
    }
    runtime.block_on(reset_stats(http, &stats_url))?;
    let before = runtime.block_on(stats(http, &stats_url))?;
    let connections_before = before["connections"].as_u64().unwrap_or(0);

    let usage_file = dir.path().join("usage.json");
    let mut measured = measured_command(scenario, &usage_file, template, &sandbox.url, &plan)?;
    let output = measured
        .output()
        .context("cannot run the measured process (through the bench's wrapper)")?;
    let what = match scenario.verb {
        Verb::Apply => "replicate apply",
        Verb::Plan => "replicate plan",
        Verb::Script => "the sequential script",
        Verb::Status => "replicate status",
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        bail!(
            "{what} exited with {}\n--- stderr ---\n{}\n--- stdout (last lines) ---\n{}",
            output.status,
            stderr.trim_end(),
            last_lines(&stdout, 10)
        );
    }
    let usage = Usage::read(&usage_file)?;

    let after = runtime.block_on(stats(http, &stats_url))?;
    sandbox.stop()?;

    let mut routes = counts(&after["requests"]);
    routes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let requests: u64 = routes.iter().map(|(_, n)| n).sum();
    let count = |route: &str| {
        routes
            .iter()
            .find(|(r, _)| r == route)
            .map_or(0, |(_, n)| *n)
    };
    let responses = counts(&after["responses"]);
    let too_many = after["responses"]["429"].as_u64().unwrap_or(0);
    let max_in_flight = after["max_in_flight"].as_u64().unwrap_or(0);
    let connections_after = after["connections"].as_u64().unwrap_or(0);
    let service = &after["service_time_ms"];
    let ms = |key: &str| {
        service[key]
            .as_f64()
            .ok_or_else(|| anyhow!("the sandbox's stats lack service_time_ms.{key}: {service}"))
    };
    let observed = Observed {
        mean: ms("mean")?,
        p50: ms("p50")?,
        p99: ms("p99")?,
    };
    let first_write = WRITES
        .iter()
        .filter_map(|route| after["first_request_unix_us"][route].as_u64())
        .min()
        .map(|at| Duration::from_micros(at.saturating_sub(usage.start_unix_us)));

    let made = connections_after.saturating_sub(connections_before);
    check_effects(scenario, what, made, &routes, &output.stdout)?;
    Ok(Measured {
        requests,
        too_many,
        creates: count("POST /connections"),
        max_in_flight,
        usage,
        first_write,
        observed,
        routes,
        responses,
        walls: Vec::new(),
    })
}

/// The measured process: the wrapper, running `replicate` or the sequential script.
fn measured_command(
    scenario: &Scenario,
    usage_file: &Path,
    template: uuid::Uuid,
    url: &str,
    plan: &Path,
) -> Result<Command> {
    let dir = plan.parent().context("the plan's directory")?;
    let mut measured = Command::new(std::env::current_exe().context("where is the bench?")?);
    measured
        .env(WRAP_ENV, usage_file)
        .env(WRAP_TIMEOUT_ENV, RUN_TIMEOUT.as_secs().to_string());
    if scenario.verb == Verb::Script {
        // The wrapper runs the bench itself again, as the script.
        measured
            .arg(std::env::current_exe().context("where is the bench?")?)
            .env(SCRIPT_ENV, template.to_string())
            .env("AIRBYTE_URL", url)
            .env("AIRBYTE_TOKEN", TOKEN)
            .stdin(Stdio::null());
    } else {
        let inner = replicate(scenario.verb, scenario.concurrency, plan, url, dir);
        measured
            .arg(inner.get_program())
            .args(inner.get_args())
            .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .env_remove("AIRBYTE_CLIENT_ID")
            .env_remove("AIRBYTE_CLIENT_SECRET")
            .current_dir(dir)
            .stdin(Stdio::null());
    }
    Ok(measured)
}

/// `{"key": n, …}` as pairs.
fn counts(object: &Value) -> Vec<(String, u64)> {
    object
        .as_object()
        .map(|counts| {
            counts
                .iter()
                .filter_map(|(key, n)| Some((key.clone(), n.as_u64()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// Not speed assertions: a run that did not do what the scenario is about measured nothing.
fn check_effects(
    scenario: &Scenario,
    what: &str,
    made: u64,
    routes: &[(String, u64)],
    stdout: &[u8],
) -> Result<()> {
    let count = |route: &str| {
        routes
            .iter()
            .find(|(r, _)| r == route)
            .map_or(0, |(_, n)| *n)
    };
    let expected = match (scenario.verb, scenario.setup) {
        (Verb::Apply | Verb::Script, Setup::Nothing) => scenario.targets as u64,
        _ => 0,
    };
    if made != expected {
        bail!(
            "{what} made {made} connections, expected {expected}\n--- stdout (last lines) ---\n{}",
            last_lines(&String::from_utf8_lossy(stdout), 10)
        );
    }
    let jobs = count("GET /jobs");
    if scenario.verb == Verb::Status && jobs != scenario.targets as u64 {
        bail!(
            "{what} read the last syncs {jobs} times, expected once for each of the {} copies",
            scenario.targets
        );
    }
    let patched = count("PATCH /connections/{connectionId}");
    match scenario.setup {
        Setup::DriftedCopies if patched != scenario.targets as u64 => {
            bail!(
                "{what} patched {patched} connections, expected each of the {} drifted copies once",
                scenario.targets
            );
        }
        Setup::Copies if patched + count("GET /streams") + count("POST /connections") > 0 => {
            bail!(
                "{what} over copies in line with the plan made writes or read catalogs: {routes:?}"
            );
        }
        _ => Ok(()),
    }
}

/// The routes that write a copy.
const WRITES: [&str; 2] = ["POST /connections", "PATCH /connections/{connectionId}"];

/// `replicate VERB --quiet --concurrency C PLAN` against the sandbox at `url`.
fn replicate(verb: Verb, concurrency: u16, plan: &Path, url: &str, dir: &Path) -> Command {
    let mut command = Command::new(REPLICATE);
    match verb {
        Verb::Apply => command.args(["apply", "--yes", "--existing", "update"]),
        Verb::Plan | Verb::Script => command.args(["plan", "--existing", "update"]),
        // Writes nothing, so it takes no `--existing`.
        Verb::Status => command.args(["status", "--output", "json"]),
    };
    command
        .args(["--quiet", "--concurrency"])
        .arg(concurrency.to_string())
        .arg(plan)
        .env_remove("AIRBYTE_CLIENT_ID")
        .env_remove("AIRBYTE_CLIENT_SECRET")
        .env("AIRBYTE_URL", url)
        .env("AIRBYTE_TOKEN", TOKEN)
        .env("NO_COLOR", "1")
        .current_dir(dir)
        .stdin(Stdio::null());
    command
}

/// The template's id, from the first page of connections (the default seed's template).
async fn template_id(http: &reqwest::Client, url: &str) -> Result<uuid::Uuid> {
    let page: Value = send(http.get(format!("{url}/connections?limit=100"))).await?;
    page["data"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == TEMPLATE)
        .and_then(|c| c["connectionId"].as_str()?.parse().ok())
        .with_context(|| format!("the sandbox has no connection named {TEMPLATE:?}"))
}

/// Changes the template's schedule the way a user would, through the API: every copy drifts.
async fn change_template_schedule(
    http: &reqwest::Client,
    url: &str,
    template: uuid::Uuid,
) -> Result<()> {
    let body = serde_json::json!({
        "schedule": {"scheduleType": "cron", "cronExpression": "0 0 6 * * ?"}
    });
    send(
        http.patch(format!("{url}/connections/{template}"))
            .json(&body),
    )
    .await?;
    Ok(())
}

async fn reset_stats(http: &reqwest::Client, url: &str) -> Result<()> {
    let response = http
        .delete(url)
        .send()
        .await
        .with_context(|| format!("DELETE {url}"))?;
    if response.status() != reqwest::StatusCode::NO_CONTENT {
        bail!(
            "DELETE {url}: {} (a sandbox without DELETE /_sandbox/stats?)",
            response.status()
        );
    }
    Ok(())
}

/// Sends an authenticated API request; its JSON answer, or an error naming it.
async fn send(request: reqwest::RequestBuilder) -> Result<Value> {
    let request = request.bearer_auth(TOKEN).build()?;
    let what = format!("{} {}", request.method(), request.url().path());
    let response = reqwest::Client::new()
        .execute(request)
        .await
        .with_context(|| what.clone())?;
    let status = response.status();
    let text = response.text().await.with_context(|| what.clone())?;
    if !status.is_success() {
        bail!("{what}: {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("{what}: not JSON"))
}

/// The default seed's template, as the plan names it.
const TEMPLATE: &str = "shop-template → Warehouse";

/// Every `bulk-*` source gets a copy of the template, with its own table prefix.
const PLAN: &str = r#"version: 1
template: "shop-template → Warehouse"
targets:
  - match: "bulk-*"
defaults:
  prefix: "{source.name|slug}_"
existing: skip
missing_streams: fail
"#;

async fn stats(http: &reqwest::Client, url: &str) -> Result<Value> {
    let response = http
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = response.status();
    if !status.is_success() {
        bail!("GET {url}: {status}");
    }
    response
        .json()
        .await
        .with_context(|| format!("GET {url}: not JSON"))
}

/// Whether `replicate sandbox --help` lists `flag`.
fn sandbox_has_flag(flag: &str) -> Result<bool> {
    let output = Command::new(REPLICATE)
        .args(["sandbox", "--help"])
        .output()
        .with_context(|| format!("cannot run {REPLICATE} sandbox --help"))?;
    let help = String::from_utf8_lossy(&output.stdout);
    Ok(help
        .split(|c: char| c.is_whitespace() || c == ',' || c == '=')
        .any(|word| word == flag))
}

// ---------------------------------------------------------------------------------------------
// The sandbox, a child of the bench

struct SandboxProcess {
    child: Child,
    url: String,
    stderr: Option<JoinHandle<String>>,
}

impl SandboxProcess {
    fn start(scenario: &Scenario) -> Result<SandboxProcess> {
        let mut command = Command::new(REPLICATE);
        command
            .args(["sandbox", "--listen", "127.0.0.1:0", "--sources"])
            .arg(scenario.targets.to_string())
            .arg("--latency")
            .arg(fmt_latency(scenario.latency));
        if let Some(limit) = scenario.rate_limit {
            command.arg("--rate-limit").arg(limit.to_string());
        }
        if !scenario.create_delay.is_zero() {
            command
                .arg("--create-delay")
                .arg(fmt_latency(scenario.create_delay));
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start replicate sandbox")?;
        let stdout = child.stdout.take().context("sandbox stdout")?;
        let stderr = child.stderr.take().context("sandbox stderr")?;
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut text);
            text
        });
        // First line: `listening on http://HOST:PORT/v1`; then keep draining, so the
        // sandbox never blocks on a full pipe.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let _ = tx.send(first);
            for _ in lines {}
        });
        let mut sandbox = SandboxProcess {
            child,
            url: String::new(),
            stderr: Some(stderr),
        };
        let first = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(Ok(line))) => line,
            Ok(_) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let stderr = sandbox.kill();
                bail!("the sandbox exited before listening\n--- sandbox stderr ---\n{stderr}");
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let stderr = sandbox.kill();
                bail!(
                    "the sandbox did not listen within {START_TIMEOUT:?}\n--- sandbox stderr ---\n{stderr}"
                );
            }
        };
        let Some(url) = first.strip_prefix("listening on ") else {
            let stderr = sandbox.kill();
            bail!("unexpected first line from the sandbox: {first:?}\n{stderr}");
        };
        sandbox.url = url.trim().to_string();
        Ok(sandbox)
    }

    /// `http://HOST:PORT`, without the API base.
    fn origin(&self) -> &str {
        self.url.trim_end_matches('/').trim_end_matches("/v1")
    }

    /// Kills and reaps the sandbox; returns what it wrote on stderr.
    fn kill(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }

    /// Stops the sandbox; an error if it had died on its own.
    fn stop(mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait().context("sandbox status")? {
            let stderr = self.kill();
            bail!("the sandbox died ({status})\n--- sandbox stderr ---\n{stderr}");
        }
        self.kill();
        Ok(())
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------------------------
// The sequential script

/// What a user's script does without replicate, with the same HTTP stack (reqwest on one tokio
/// thread): read the template, list the workspace's sources page by page, then one
/// `POST /connections` per `bulk-*` source with the template's settings and streams, one at a
/// time, stopping at the first refusal. No catalog is read and nothing is checked first, so it
/// makes fewer requests than replicate (one per target, not two): the comparison is of wall
/// time for the same copies.
fn script(template: &str) -> Result<()> {
    let url = std::env::var("AIRBYTE_URL").context("AIRBYTE_URL")?;
    let token = std::env::var("AIRBYTE_TOKEN").context("AIRBYTE_TOKEN")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a tokio runtime")?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .context("cannot build an HTTP client")?;
    let call = |request: reqwest::RequestBuilder| {
        let request = request.bearer_auth(&token);
        async move {
            let response = request.send().await?;
            let status = response.status();
            let text = response.text().await?;
            if !status.is_success() {
                bail!("{status}: {text}");
            }
            Ok::<Value, anyhow::Error>(serde_json::from_str(&text)?)
        }
    };
    runtime.block_on(async {
        let template = call(http.get(format!("{url}/connections/{template}"))).await?;
        let workspace = template["workspaceId"].as_str().context("workspaceId")?;
        let mut sources = Vec::new();
        loop {
            let page = call(http.get(format!(
                "{url}/sources?workspaceIds={workspace}&limit=100&offset={}",
                sources.len()
            )))
            .await?;
            let data = page["data"].as_array().context("a page without data")?;
            sources.extend(data.iter().cloned());
            if data.len() < 100 {
                break;
            }
        }
        let mut streams = template["configurations"]["streams"].clone();
        for stream in streams.as_array_mut().into_iter().flatten() {
            if let Some(stream) = stream.as_object_mut() {
                // Create refuses an empty selection (the template reads back `[]` for "all").
                if stream.get("selectedFields") == Some(&Value::Array(Vec::new())) {
                    stream.remove("selectedFields");
                }
            }
        }
        for source in sources {
            let name = source["name"].as_str().unwrap_or_default();
            if !name.starts_with("bulk-") {
                continue;
            }
            let body = serde_json::json!({
                "name": format!("{name} → Warehouse"),
                "sourceId": source["sourceId"],
                "destinationId": template["destinationId"],
                "schedule": template["schedule"],
                "status": template["status"],
                "namespaceDefinition": template["namespaceDefinition"],
                "nonBreakingSchemaUpdatesBehavior": template["nonBreakingSchemaUpdatesBehavior"],
                "prefix": format!("{}_", name.replace('-', "_")),
                "configurations": {"streams": streams},
            });
            call(http.post(format!("{url}/connections")).json(&body))
                .await
                .with_context(|| format!("POST /connections for {name}"))?;
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// The wrapper: `replicate` as its only child, then getrusage(RUSAGE_CHILDREN)

/// What the wrapper measured of its one child.
#[derive(Debug, Clone, Copy)]
struct Usage {
    wall: Duration,
    /// When the wrapper started its child, in microseconds since the Unix epoch.
    start_unix_us: u64,
    user: Duration,
    sys: Duration,
    max_rss_kib: u64,
}

impl Usage {
    fn cpu(&self) -> Duration {
        self.user + self.sys
    }
}

impl Usage {
    fn read(path: &Path) -> Result<Usage> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("the wrapper wrote no measurements to {}", path.display()))?;
        let v: Value = serde_json::from_str(&text).context("the wrapper's measurements")?;
        let field = |name: &str| {
            v[name]
                .as_u64()
                .ok_or_else(|| anyhow!("the wrapper's measurements lack {name}: {text}"))
        };
        Ok(Usage {
            wall: Duration::from_micros(field("wall_us")?),
            start_unix_us: field("start_unix_us")?,
            user: Duration::from_micros(field("user_us")?),
            sys: Duration::from_micros(field("sys_us")?),
            max_rss_kib: field("max_rss_kib")?,
        })
    }
}

/// Runs `argv[1..]` with the wrapper's stdio, waits for it, and writes its wall time, CPU time
/// and peak RSS to `out`. Exits with the child's code.
fn wrap(out: &Path) -> Result<ExitCode> {
    use nix::sys::resource::{UsageWho, getrusage};
    use nix::sys::time::TimeValLike;

    let mut args = std::env::args_os().skip(1);
    let program = args.next().context("nothing to run")?;
    let timeout = std::env::var(WRAP_TIMEOUT_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(RUN_TIMEOUT, Duration::from_secs);

    let start_unix_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let start = Instant::now();
    let mut child = Command::new(&program)
        .args(args)
        .env_remove(WRAP_ENV)
        .env_remove(WRAP_TIMEOUT_ENV)
        .spawn()
        .with_context(|| format!("cannot start {}", PathBuf::from(&program).display()))?;
    // A watchdog, so that a hung run cannot hang the bench; the wait itself stays exact.
    let pid = child.id();
    let (done, watch) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = watch.recv_timeout(timeout) {
            eprintln!("bench wrapper: replicate still running after {timeout:?}: killing it");
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    });
    let status = child.wait().context("waiting for replicate")?;
    let wall = start.elapsed();
    let _ = done.send(());
    let _ = watchdog.join();

    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).context("getrusage(RUSAGE_CHILDREN)")?;
    let micros = |t: i64| u64::try_from(t).unwrap_or(0);
    let line = serde_json::json!({
        "wall_us": u64::try_from(wall.as_micros()).unwrap_or(u64::MAX),
        "start_unix_us": start_unix_us,
        "user_us": micros(usage.user_time().num_microseconds()),
        "sys_us": micros(usage.system_time().num_microseconds()),
        // Linux reports ru_maxrss in KiB.
        "max_rss_kib": u64::try_from(usage.max_rss()).unwrap_or(0),
        "status": status.code(),
    });
    std::fs::write(out, format!("{line}\n"))
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::from(128),
    })
}

// ---------------------------------------------------------------------------------------------
// The table

const HEADER: [&str; 18] = [
    "scenario",
    "targets",
    "concurrency",
    "latency",
    "requests",
    "requests/target",
    "wall (s)",
    "first write (s)",
    "ideal (s)",
    "efficiency",
    "observed latency mean / p50 / p99 (ms)",
    "efficiency (observed)",
    "× script",
    "CPU/request (µs)",
    "user + sys (µs)",
    "peak RSS (MB)",
    "429s",
    "max in flight",
];

fn render(rows: &[(Scenario, Outcome)], quick: bool, runs: usize, load_before: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "replicate {} · commit {} · {} CPUs · {} · load average before: {load_before}{}",
        env!("CARGO_PKG_VERSION"),
        git_commit(),
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        cpu_model(),
        if quick {
            " · --quick (10× fewer targets)"
        } else {
            ""
        },
    );
    if runs > 1 {
        let _ = writeln!(out, "\nEach row: the median of {runs} runs by wall time.");
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "| {} |", HEADER.join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        HEADER
            .iter()
            .enumerate()
            .map(|(i, _)| if i == 0 { " --- |" } else { " ---: |" })
            .collect::<String>()
    );
    for (scenario, outcome) in rows {
        let mut cells = vec![
            scenario.name.to_string(),
            scenario.targets.to_string(),
            scenario.concurrency.to_string(),
            if scenario.create_delay.is_zero() {
                fmt_latency(scenario.latency)
            } else {
                format!(
                    "{} + create {}",
                    fmt_latency(scenario.latency),
                    fmt_latency(scenario.create_delay)
                )
            },
        ];
        match outcome {
            Outcome::Done(m) => {
                cells.extend(measured_cells(scenario, m, script_wall(rows, scenario)));
            }
            Outcome::Skipped(why) | Outcome::Failed(why) => {
                cells.push(why.replace('|', "\\|"));
                cells.resize(HEADER.len(), String::new());
            }
        }
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "ideal = ((requests − 429s) × latency + creates × create delay) ÷ concurrency; under a \
         rate limit R (burst R), at least (requests − 429s − R) ÷ R; `-` with neither latency \
         nor limit. efficiency = ideal ÷ wall. observed latency: the service time the sandbox \
         actually gave (request read → answer written); efficiency (observed) = (requests − \
         429s) × observed mean ÷ concurrency ÷ wall. first write: from starting the process \
         to the first create or patch reaching the sandbox. × script: the sequential script's \
         wall ÷ this wall, same targets and latency, same run. CPU and peak RSS: the measured \
         process alone (getrusage of its wrapper's children); user + sys splits the CPU."
    );
    if !rows.iter().any(|(_, o)| matches!(o, Outcome::Done(_))) {
        return out;
    }
    let _ = writeln!(out);
    out.push_str(&by_route(rows));
    out
}

/// Requests by route and responses by status, one line per scenario that ran.
fn by_route(rows: &[(Scenario, Outcome)]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Requests by route and responses by status:");
    let _ = writeln!(out);
    for (scenario, outcome) in rows {
        if let Outcome::Done(m) = outcome {
            let routes: Vec<String> = m
                .routes
                .iter()
                .map(|(route, n)| format!("`{route}` {n}"))
                .collect();
            let codes: Vec<String> = m
                .responses
                .iter()
                .map(|(code, n)| format!("{code}: {n}"))
                .collect();
            let _ = write!(
                out,
                "- {}: {}; responses {}",
                scenario.name,
                routes.join(", "),
                codes.join(", ")
            );
            if m.walls.len() > 1 {
                let walls: Vec<String> = m
                    .walls
                    .iter()
                    .map(|w| format!("{:.2}", w.as_secs_f64()))
                    .collect();
                let _ = write!(out, "; wall times (s) {}", walls.join(", "));
            }
            let _ = writeln!(out);
        }
    }
    out
}

/// The fastest any client could make the requests that were needed (see the module docs);
/// `None` when nothing bounds it.
#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn ideal(scenario: &Scenario, m: &Measured) -> Option<f64> {
    let needed = m.requests.saturating_sub(m.too_many) as f64;
    let busy = needed * scenario.latency.as_secs_f64()
        + m.creates as f64 * scenario.create_delay.as_secs_f64();
    let by_latency = (busy > 0.0).then(|| busy / f64::from(scenario.concurrency));
    let by_rate = scenario.rate_limit.map(|limit| {
        let limit = f64::from(limit);
        (needed - limit).max(0.0) / limit
    });
    match (by_latency, by_rate) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// The wall time of the sequential script in the same run, for the same targets and latency.
fn script_wall(rows: &[(Scenario, Outcome)], like: &Scenario) -> Option<Duration> {
    rows.iter().find_map(|(scenario, outcome)| match outcome {
        Outcome::Done(m)
            if scenario.verb == Verb::Script
                && like.verb == Verb::Apply
                && scenario.targets == like.targets
                && scenario.latency == like.latency
                && like.create_delay.is_zero()
                && like.rate_limit.is_none()
                && like.setup == Setup::Nothing =>
        {
            Some(m.usage.wall)
        }
        _ => None,
    })
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn measured_cells(scenario: &Scenario, m: &Measured, script: Option<Duration>) -> Vec<String> {
    let wall = m.usage.wall.as_secs_f64();
    let ideal = ideal(scenario, m);
    let dash = || "-".to_string();
    let per_target = if scenario.targets == 0 {
        dash()
    } else {
        format!("{:.3}", m.requests as f64 / scenario.targets as f64)
    };
    let per_request = |d: Duration| d.as_secs_f64() * 1e6 / m.requests as f64;
    let (cpu, split) = if m.requests == 0 {
        (dash(), dash())
    } else {
        (
            format!("{:.0}", per_request(m.usage.cpu())),
            format!(
                "{:.0} + {:.0}",
                per_request(m.usage.user),
                per_request(m.usage.sys)
            ),
        )
    };
    // Against the latency the sandbox actually gave; a rate limit still bounds it.
    let observed_ideal = {
        let needed = m.requests.saturating_sub(m.too_many) as f64;
        let busy = needed * m.observed.mean / 1000.0 / f64::from(scenario.concurrency);
        match (ideal, scenario.rate_limit) {
            (Some(ideal), Some(_)) => Some(busy.max(ideal)),
            _ => (busy > 0.0 && !scenario.latency.is_zero()).then_some(busy),
        }
    };
    vec![
        m.requests.to_string(),
        per_target,
        format!("{wall:.2}"),
        m.first_write
            .map_or_else(dash, |d| format!("{:.3}", d.as_secs_f64())),
        ideal.map_or_else(dash, |i| format!("{i:.2}")),
        ideal.map_or_else(dash, |i| format!("{:.2}", i / wall)),
        format!(
            "{:.1} / {:.1} / {:.1}",
            m.observed.mean, m.observed.p50, m.observed.p99
        ),
        observed_ideal.map_or_else(dash, |i| format!("{:.2}", i / wall)),
        script.map_or_else(dash, |s| format!("{:.1}", s.as_secs_f64() / wall)),
        cpu,
        split,
        format!("{:.1}", m.usage.max_rss_kib as f64 / 1024.0),
        m.too_many.to_string(),
        m.max_in_flight.to_string(),
    ]
}

fn fmt_latency(latency: Duration) -> String {
    format!("{}ms", latency.as_millis())
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<_> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".to_string(),
        |l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

fn git_commit() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(commit) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{commit}-dirty")
            } else {
                commit
            }
        }
        None => "unknown".to_string(),
    }
}
