//! The command line: flags parsed by clap (the "low" view), turned into checked [`Settings`]
//! (the "high" view), then the commands that run the pipeline and own the terminal.
//!
//! Exit codes (SPEC §1): 0 success; 1 any failure; 2 usage error; `plan --detailed-exitcode`:
//! 0 no changes, 2 changes pending, 1 error; 130 after Ctrl-C, 143 after SIGTERM.
//!
//! Everything printed here that quotes the plan or the server goes through
//! [`escape::controls`], like the human renderings: no escape sequence reaches the terminal.

use crate::apply::{self, Confirmation, Console, RunOptions, Status};
use crate::client::{Client, ClientConfig, Credentials, RetryPolicy};
use crate::duration;
use crate::execute::{ExecuteOptions, Interrupt};
use crate::listing;
use crate::plan::{self, ExistingPolicy, Plan};
use crate::report::escape::{self, controls};
use crate::report::events::Reporter;
use crate::report::human::{self, Style};
use crate::report::progress::Progress;
use crate::report::stdout;
use crate::report::{Mode, Report, State};
use crate::sandbox::{self, Sandbox, SandboxArgs, SandboxConfig};
use crate::secret::Secret;
use crate::sync::SyncOptions;
use anyhow::{Context, bail};
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// The default API base: Airbyte Cloud.
pub const DEFAULT_URL: &str = "https://api.airbyte.com/v1";

/// How long creates in flight may take to finish after Ctrl-C.
const GRACE: Duration = Duration::from_secs(30);

/// The exit code of an interrupted run (128 + SIGINT).
const INTERRUPTED: u8 = 130;

/// The exit code of a terminated run (128 + SIGTERM).
const TERMINATED: u8 = 143;

/// Clone one Airbyte connection onto many sources, declaratively.
#[derive(Debug, Parser)]
#[command(name = "replicate", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse and check plan files, offline.
    Validate {
        #[arg(required = true, value_name = "PLAN")]
        plans: Vec<PathBuf>,
        /// `json`: one JSON document on stdout, each plan with its problems.
        #[arg(long, value_enum, default_value = "human")]
        output: Output,
    },
    /// Preview what apply would do; writes nothing.
    Plan {
        #[arg(value_name = "PLAN")]
        plan: PathBuf,
        #[command(flatten)]
        common: CommonArgs,
        /// Exit 0 when nothing would change, 2 when changes are pending, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Create the copies the plan asks for.
    Apply {
        #[arg(value_name = "PLAN")]
        plan: PathBuf,
        #[command(flatten)]
        common: CommonArgs,
        /// Only preview, like `plan`.
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run: exit 0 when nothing would change, 2 when changes are pending, 1 on
        /// error.
        #[arg(long, requires = "dry_run")]
        detailed_exitcode: bool,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Also write the JSON report to FILE (atomically).
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        #[command(flatten)]
        sync: SyncArgs,
    },
    /// Show each copy: in line with the plan or drifted, its status and its last sync; writes
    /// nothing.
    Status {
        #[arg(value_name = "PLAN")]
        plan: PathBuf,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Serve a local emulation of the Airbyte public API.
    Sandbox(SandboxArgs),
    /// List the connections or sources the credentials can see, by name and id.
    Ls(LsArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell) on stdout.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the manual page (roff) on stdout.
    Man,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

#[derive(Debug, Args)]
struct LsArgs {
    /// What to list.
    #[arg(value_enum)]
    what: Listed,
    /// A plan, whose `airbyte.url` is used when neither --url nor `AIRBYTE_URL` is set.
    #[arg(value_name = "PLAN")]
    plan: Option<PathBuf>,
    /// API base URL [default: the plan's airbyte.url, else `https://api.airbyte.com/v1`]
    #[arg(long, env = "AIRBYTE_URL", value_name = "URL")]
    url: Option<String>,
    /// `json`: one JSON array on stdout.
    #[arg(long, value_enum, default_value = "human")]
    output: Output,
    /// Start the built-in sandbox in-process and list what it holds.
    #[arg(long)]
    sandbox: bool,
    /// Allow plain http:// to hosts other than loopback.
    #[arg(long)]
    allow_insecure_http: bool,
    /// Also trust the CA certificates in FILE (PEM).
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    #[arg(skip)]
    url_source: Option<ValueSource>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Listed {
    Connections,
    Sources,
}

/// First syncs (SPEC §10).
#[derive(Debug, Args)]
struct SyncArgs {
    /// Start the first sync of each copy this run creates.
    #[arg(long)]
    sync: bool,
    /// With --sync: also sync the copies that existed before.
    #[arg(long, requires = "sync")]
    sync_all: bool,
    /// With --sync: at most N syncs started at once.
    #[arg(long, value_name = "N", default_value = "2", requires = "sync",
          value_parser = clap::value_parser!(u16).range(1..=64))]
    sync_concurrency: u16,
    /// With --sync: follow the syncs to their end; a failed sync fails its target.
    #[arg(long, requires = "sync")]
    wait: bool,
    /// With --wait: read each running job this often.
    #[arg(long, value_name = "DURATION", default_value = "5s", requires = "wait",
          value_parser = duration::parse)]
    poll_interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Existing {
    Update,
    Skip,
    Fail,
}

impl From<Existing> for ExistingPolicy {
    fn from(e: Existing) -> Self {
        match e {
            Existing::Update => ExistingPolicy::Update,
            Existing::Skip => ExistingPolicy::Skip,
            Existing::Fail => ExistingPolicy::Fail,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Whether to colour: `--color always|never` wins; with `auto`, a set `NO_COLOR` turns colour
/// off, then a set `CLICOLOR_FORCE` (other than `0`) turns it on, else stdout must be a terminal.
fn use_color(
    choice: ColorChoice,
    no_color: Option<&str>,
    clicolor_force: Option<&str>,
    terminal: bool,
) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            if no_color.is_some_and(|v| !v.is_empty()) {
                false
            } else if clicolor_force.is_some_and(|v| !v.is_empty() && v != "0") {
                true
            } else {
                terminal
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Human,
    Json,
}

#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // each is a flag of its own
struct CommonArgs {
    /// API base URL [default: the plan's airbyte.url, else `https://api.airbyte.com/v1`]
    #[arg(long, env = "AIRBYTE_URL", value_name = "URL")]
    url: Option<String>,
    /// At most N API requests in flight at once [default: the plan's concurrency, else 8]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: Option<u16>,
    /// `json`: one JSON document on stdout, nothing else.
    #[arg(long, value_enum, default_value = "human")]
    output: Output,
    /// No progress bars, and no rows for unchanged targets: only errors, changes and the
    /// summary.
    #[arg(long, short)]
    quiet: bool,
    /// More logging on stderr (-v requests and create bodies, -vv token and retry details).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Start the built-in sandbox in-process and point at it.
    #[arg(long)]
    sandbox: bool,
    /// Allow plain http:// to hosts other than loopback.
    #[arg(long)]
    allow_insecure_http: bool,
    /// Give up on one API request after this long (a create runs a schema discover).
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = duration::parse)]
    request_timeout: Duration,
    /// Give up on one read (every GET but a catalog's `GET /streams`, which runs a schema
    /// discover; and the token exchange) after this long, or after --request-timeout if shorter.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration::parse)]
    read_timeout: Duration,
    /// Also trust the CA certificates in FILE (PEM), e.g. for a self-hosted Airbyte behind an
    /// internal CA. The platform's roots stay trusted.
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// What to do with a copy that already exists [default: the plan's `existing`, else
    /// update]: bring it in line with the plan, leave it (drift is still shown), or fail.
    #[arg(long, value_enum, value_name = "POLICY")]
    existing: Option<Existing>,
    /// Give up on one target (its create, retries and lookups) after this long; no single
    /// request, a read's retries and the server's Retry-After included, lasts longer.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration::parse)]
    target_timeout: Duration,
    /// Delete the copies this plan owns whose source is no longer a target (as the plan's
    /// `prune: true`); `plan --prune` previews it.
    #[arg(long)]
    prune: bool,
    /// Only the targets whose source name matches GLOB (repeatable): the others are not read,
    /// written or pruned. A targeted run never prunes.
    #[arg(long = "target", value_name = "GLOB", value_parser = target_glob)]
    targets: Vec<plan::Glob>,
    /// Colours in the human output: on a terminal (auto; not with `NO_COLOR`, forced by
    /// `CLICOLOR_FORCE`), always, or never.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    color: ColorChoice,
    /// Where `url` came from: `--url` or `AIRBYTE_URL` (set after parsing).
    #[arg(skip)]
    url_source: Option<ValueSource>,
}

/// A `--target` glob, checked as plan globs are.
fn target_glob(text: &str) -> Result<plan::Glob, String> {
    plan::compile_glob(text)
}

/// The checked settings of a `plan` or `apply` run.
struct Settings {
    client: ClientConfig,
    execute: ExecuteOptions,
    existing: Option<ExistingPolicy>,
    output: Output,
    verbosity: u8,
    quiet: bool,
    color: bool,
    /// Where the base URL came from, for messages: `--url`, `AIRBYTE_URL`, the plan, the default.
    url_origin: String,
    /// Said on stderr before the run: which URL and credentials are in use, when not obvious.
    notes: Vec<String>,
}

impl Settings {
    fn new(common: &CommonArgs, plan: &Plan, sandbox: Option<&BuiltIn>) -> anyhow::Result<Self> {
        let concurrency = common
            .concurrency
            .map(usize::from)
            .or(plan.concurrency)
            .unwrap_or(8);
        let mut notes = Vec::new();
        let (base_url, url_origin, credentials) = if let Some(built_in) = sandbox {
            (
                built_in.sandbox.url(),
                "--sandbox".to_string(),
                built_in.credentials.clone(),
            )
        } else {
            let (url, origin) = choose_url(
                common.url.as_deref(),
                common.url_source,
                plan.url.as_deref().map(|url| (url, plan.file.as_path())),
                &mut notes,
            );
            let (credentials, note) = credentials_from_env()?;
            notes.extend(note);
            (url, origin, credentials)
        };
        Ok(Settings {
            client: ClientConfig {
                base_url,
                credentials,
                concurrency,
                timeout: common.request_timeout,
                read_timeout: common.read_timeout,
                give_up_after: common.target_timeout,
                allow_insecure_http: common.allow_insecure_http,
                retry: RetryPolicy::default(),
                ca_certificates: match &common.ca_cert {
                    Some(path) => Some(
                        std::fs::read(path)
                            .with_context(|| format!("--ca-cert {}", path.display()))?,
                    ),
                    None => None,
                },
            },
            execute: ExecuteOptions {
                concurrency,
                target_timeout: common.target_timeout,
                grace: GRACE,
                retry: RetryPolicy::default(),
                // A create that timed out may still land for about as long again.
                settle: common.request_timeout,
            },
            existing: common.existing.map(ExistingPolicy::from),
            output: common.output,
            verbosity: common.verbose,
            quiet: common.quiet,
            color: use_color(
                common.color,
                std::env::var("NO_COLOR").ok().as_deref(),
                std::env::var("CLICOLOR_FORCE").ok().as_deref(),
                std::io::stdout().is_terminal(),
            ),
            url_origin,
            notes,
        })
    }

    /// Progress bars: on a terminal, unless quiet or JSON.
    fn shows_progress(common: &CommonArgs) -> bool {
        std::io::stderr().is_terminal() && !common.quiet && common.output == Output::Human
    }

    fn style(&self) -> Style {
        Style {
            color: self.color,
            show_bodies: self.verbosity > 0,
            quiet: self.quiet,
        }
    }
}

/// The base URL and where it came from: `--url`, else `AIRBYTE_URL`, else the plan's
/// `airbyte.url`, else Airbyte Cloud (with a note saying so).
fn choose_url(
    url: Option<&str>,
    source: Option<ValueSource>,
    plan: Option<(&str, &Path)>,
    notes: &mut Vec<String>,
) -> (String, String) {
    match (url.filter(|u| !u.is_empty()), plan) {
        (Some(url), _) if source == Some(ValueSource::EnvVariable) => {
            (url.to_string(), "AIRBYTE_URL".to_string())
        }
        (Some(url), _) => (url.to_string(), "--url".to_string()),
        (None, Some((url, file))) => (
            url.to_string(),
            format!("airbyte.url in {}", controls(&file.display().to_string())),
        ),
        (None, None) => {
            notes.push(format!(
                "note: no --url, AIRBYTE_URL or airbyte.url in the plan: using Airbyte Cloud, \
                 {DEFAULT_URL}"
            ));
            (DEFAULT_URL.to_string(), "the default".to_string())
        }
    }
}

/// `AIRBYTE_TOKEN`, else `AIRBYTE_CLIENT_ID` with `AIRBYTE_CLIENT_SECRET`, else no credentials;
/// with a note when the token wins over client credentials that are set too.
fn credentials_from_env() -> anyhow::Result<(Credentials, Option<String>)> {
    let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(token) = var("AIRBYTE_TOKEN") {
        let note = (var("AIRBYTE_CLIENT_ID").is_some() || var("AIRBYTE_CLIENT_SECRET").is_some())
            .then(|| {
                "note: AIRBYTE_TOKEN is used; AIRBYTE_CLIENT_ID and AIRBYTE_CLIENT_SECRET are set \
                 too and ignored (unset AIRBYTE_TOKEN to use them)"
                    .to_string()
            });
        return Ok((Credentials::Token(Secret::new(token)), note));
    }
    let credentials = match (var("AIRBYTE_CLIENT_ID"), var("AIRBYTE_CLIENT_SECRET")) {
        (Some(client_id), Some(secret)) => Credentials::Application {
            client_id,
            client_secret: Secret::new(secret),
        },
        (Some(_), None) => bail!("AIRBYTE_CLIENT_ID is set but AIRBYTE_CLIENT_SECRET is not"),
        (None, Some(_)) => bail!("AIRBYTE_CLIENT_SECRET is set but AIRBYTE_CLIENT_ID is not"),
        (None, None) => Credentials::None,
    };
    Ok((credentials, None))
}

/// What to add to the error of a run that failed as a whole, from how the server answered: an
/// unreachable URL (and where it came from), a base URL without its API path, refused
/// credentials (which ones, and how to fix them).
fn hints(url_origin: &str, credentials: &Credentials, client: &Client) -> Vec<String> {
    let contact = client.contact();
    let base = client.base_url();
    let mut hints = Vec::new();
    if contact.answers == 0 {
        hints.push(format!(
            "no answer from the Airbyte API at {base} (the URL from {url_origin}); check it, or \
             set --url or AIRBYTE_URL"
        ));
        return hints;
    }
    if contact.not_found == contact.answers && !base.ends_with("/v1") {
        hints.push(format!(
            "every answer from {base} was 404 Not Found (the URL from {url_origin}): the base \
             URL probably lacks the API's path; add /v1 (Airbyte Cloud: {DEFAULT_URL}) or \
             /api/public/v1 (self-hosted: http://host:8000/api/public/v1)"
        ));
    }
    if contact.refused > 0 {
        hints.push(match credentials {
            Credentials::Token(_) => "the server refused AIRBYTE_TOKEN (401): it may have \
                 expired or belong to another Airbyte; set a fresh AIRBYTE_TOKEN, or unset it \
                 and set AIRBYTE_CLIENT_ID and AIRBYTE_CLIENT_SECRET"
                .to_string(),
            Credentials::Application { client_id, .. } => format!(
                "the server refused the application credentials (AIRBYTE_CLIENT_ID={}): check \
                 AIRBYTE_CLIENT_ID and AIRBYTE_CLIENT_SECRET (Airbyte: Settings → \
                 Applications), or set AIRBYTE_TOKEN instead",
                controls(client_id)
            ),
            Credentials::None => "the server wants credentials (401) and none were sent: set \
                 AIRBYTE_TOKEN, or AIRBYTE_CLIENT_ID and AIRBYTE_CLIENT_SECRET"
                .to_string(),
        });
    }
    hints
}

/// Parses the command line and runs it; returns the process exit code.
pub fn run() -> u8 {
    let matches = Cli::command().get_matches();
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let Some((_, sub)) = matches.subcommand() {
        match &mut cli.command {
            Command::Plan { common, .. }
            | Command::Apply { common, .. }
            | Command::Status { common, .. } => {
                common.url_source = sub.value_source("url");
            }
            Command::Ls(args) => args.url_source = sub.value_source("url"),
            Command::Validate { .. }
            | Command::Sandbox(_)
            | Command::Completions { .. }
            | Command::Man => {}
        }
    }
    // The client waits on the network and does little between answers: one thread, no
    // cross-thread wake-ups. The sandbox serves many clients at once: every core.
    let mut builder = if matches!(cli.command, Command::Sandbox(_)) {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Validate { plans, output } => Ok(validate(&plans, output)),
            Command::Plan {
                plan,
                common,
                detailed_exitcode,
            } => run_plan(&plan, &common, Mode::Plan, None)
                .await
                .map(|(status, signal)| exit_code(status, detailed_exitcode, signal)),
            Command::Apply {
                plan,
                common,
                dry_run,
                detailed_exitcode,
                yes,
                report,
                sync,
            } => {
                let mode = if dry_run { Mode::Plan } else { Mode::Apply };
                let apply = ApplyOptions { yes, report, sync };
                run_plan(&plan, &common, mode, Some(&apply))
                    .await
                    .map(|(status, signal)| exit_code(status, detailed_exitcode, signal))
            }
            Command::Status { plan, common } => run_status(&plan, &common).await,
            Command::Sandbox(args) => sandbox::run(args).await.map(|()| 0),
            Command::Ls(args) => list(&args).await,
            Command::Completions { shell } => Ok(completions(shell)),
            Command::Man => man(),
        }
    });
    // A prompt's read of stdin may still block a thread: do not wait for it.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", controls(&format!("{e:#}")));
            1
        }
    }
}

/// `replicate validate`: every file checked, every problem printed (or, with `--output json`,
/// one document: each plan, whether it is valid, its problems).
fn validate(files: &[PathBuf], output: Output) -> u8 {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Checked {
        plan: String,
        valid: bool,
        target_entries: usize,
        errors: Vec<String>,
    }
    let mut failed = false;
    let mut checked = Vec::new();
    for file in files {
        let plan = file.display().to_string();
        match plan::load(file) {
            Ok(loaded) => {
                let n = loaded.targets.len();
                if output == Output::Human {
                    stdout::println(&format!(
                        "{}: ok ({n} target {})",
                        controls(&plan),
                        if n == 1 { "entry" } else { "entries" }
                    ));
                }
                checked.push(Checked {
                    plan,
                    valid: true,
                    target_entries: n,
                    errors: Vec::new(),
                });
            }
            Err(errors) => {
                failed = true;
                if output == Output::Human {
                    eprintln!("{}", controls(&errors.to_string()));
                }
                checked.push(Checked {
                    plan,
                    valid: false,
                    target_entries: 0,
                    errors: errors.0.iter().map(ToString::to_string).collect(),
                });
            }
        }
    }
    if output == Output::Json {
        #[derive(serde::Serialize)]
        struct Validated {
            plans: Vec<Checked>,
        }
        stdout::println(&crate::report::json(&Validated { plans: checked }));
    }
    u8::from(failed)
}

/// `replicate completions SHELL`: the completion script, generated from the same definition
/// that parses the arguments.
fn completions(shell: Shell) -> u8 {
    use clap_complete::Shell as S;
    let shell = match shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Powershell => S::PowerShell,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "replicate", &mut script);
    stdout::print(&String::from_utf8_lossy(&script));
    0
}

/// `replicate man`: the manual page (roff), generated from the argument definitions.
fn man() -> anyhow::Result<u8> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    stdout::print(&String::from_utf8_lossy(&page));
    Ok(0)
}

/// `replicate ls`: the connections or sources the credentials can see.
async fn list(args: &LsArgs) -> anyhow::Result<u8> {
    let plan_url = match &args.plan {
        Some(file) => plan::load(file)
            .map_err(|errors| anyhow::anyhow!("{errors}"))?
            .url
            .map(|url| (url, file.clone())),
        None => None,
    };
    let built_in = if args.sandbox {
        Some(BuiltIn::start().await?)
    } else {
        None
    };
    let mut notes = Vec::new();
    let (base_url, origin, credentials) = if let Some(built_in) = &built_in {
        (
            built_in.sandbox.url(),
            "--sandbox".to_string(),
            built_in.credentials.clone(),
        )
    } else {
        let (url, origin) = choose_url(
            args.url.as_deref(),
            args.url_source,
            plan_url
                .as_ref()
                .map(|(url, file)| (url.as_str(), file.as_path())),
            &mut notes,
        );
        let (credentials, note) = credentials_from_env()?;
        notes.extend(note);
        (url, origin, credentials)
    };
    for note in &notes {
        eprintln!("{note}");
    }
    let config = ClientConfig {
        base_url,
        credentials,
        concurrency: 8,
        timeout: crate::client::DEFAULT_TIMEOUT,
        read_timeout: Duration::from_secs(30),
        give_up_after: Duration::from_secs(600),
        allow_insecure_http: args.allow_insecure_http,
        retry: RetryPolicy::default(),
        ca_certificates: match &args.ca_cert {
            Some(path) => {
                Some(std::fs::read(path).with_context(|| format!("--ca-cert {}", path.display()))?)
            }
            None => None,
        },
    };
    let client = Client::new(&config, Arc::new(crate::report::events::Silent))?;
    let what = match args.what {
        Listed::Connections => listing::Listing::Connections,
        Listed::Sources => listing::Listing::Sources,
    };
    let rows = listing::rows(&client, what).await;
    if let Some(built_in) = built_in {
        built_in.sandbox.shutdown().await;
    }
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => {
            let mut message = e.to_string();
            for hint in hints(&origin, &config.credentials, &client) {
                message.push('\n');
                message.push_str(&hint);
            }
            bail!(message);
        }
    };
    match args.output {
        Output::Human => stdout::print(&listing::human(&rows)),
        Output::Json => stdout::println(&crate::report::json(&rows)),
    }
    Ok(0)
}

struct ApplyOptions {
    yes: bool,
    report: Option<PathBuf>,
    sync: SyncArgs,
}

/// The exit code of a run (SPEC §1): `status` from the report, `detailed` for
/// `--detailed-exitcode`, `signal` the code the first signal calls for (130 or 143).
fn exit_code(status: Status, detailed: bool, signal: u8) -> u8 {
    match status {
        Status::Interrupted => signal,
        Status::Failed => 1,
        Status::Changes if detailed => 2,
        Status::Changes | Status::Clean => 0,
    }
}

/// What stops a run: the interrupt the signals raise, and the exit code of the first signal.
struct Stop {
    interrupt: Arc<Interrupt>,
    code: Arc<AtomicU8>,
    /// The prompt is waiting for an answer.
    asking: Arc<AtomicBool>,
}

/// `plan` and `apply`: load → resolve → preview → (confirm → execute) → report.
async fn run_plan(
    file: &Path,
    common: &CommonArgs,
    mode: Mode,
    apply: Option<&ApplyOptions>,
) -> anyhow::Result<(Status, u8)> {
    let report_file = apply.and_then(|a| a.report.as_deref());
    // Before anything else: an older report must not pass for this run's, and a path that
    // cannot be written stops the run before it writes anything.
    if let Some(path) = report_file {
        write_report(&Report::new(file, mode), path)?;
    }
    let progress: Arc<dyn Reporter> = Arc::new(Progress::new(
        Settings::shows_progress(common),
        common.verbose,
    ));
    let stop = Stop {
        interrupt: Arc::new(Interrupt::default()),
        code: Arc::new(AtomicU8::new(INTERRUPTED)),
        asking: Arc::new(AtomicBool::new(false)),
    };
    let signals = tokio::spawn(watch_signals(
        Signals::listen()?,
        Arc::clone(&stop.interrupt),
        Arc::clone(&stop.code),
        Arc::clone(&stop.asking),
        Arc::downgrade(&progress),
    ));
    let _stop_watching = AbortOnDrop(signals);
    let plan = match plan::load(file) {
        Ok(plan) => plan,
        Err(errors) => {
            let mut report = Report::new(file, mode);
            report.errors = errors.0.iter().map(ToString::to_string).collect();
            report.state = State::Complete;
            finish(&report, common.output, report_file, None)?;
            return Ok((Status::Failed, stop.code.load(Ordering::SeqCst)));
        }
    };
    let built_in = if common.sandbox {
        Some(BuiltIn::start().await?)
    } else {
        None
    };
    let result = run_loaded(
        &plan,
        common,
        mode,
        apply,
        built_in.as_ref(),
        progress,
        &stop,
    )
    .await;
    if let Some(built_in) = built_in {
        built_in.sandbox.shutdown().await;
    }
    result.map(|status| (status, stop.code.load(Ordering::SeqCst)))
}

/// `replicate status`: the fleet's state, read-only (SPEC §10). Exit 1 when the run or a target
/// fails, 2 for flags that would change something (status never does).
async fn run_status(file: &Path, common: &CommonArgs) -> anyhow::Result<u8> {
    if common.prune || common.existing.is_some() {
        eprintln!("error: status writes nothing: --prune and --existing apply to plan and apply");
        return Ok(2);
    }
    let plan = match plan::load(file) {
        Ok(plan) => plan,
        Err(errors) => {
            eprintln!("{}", controls(&errors.to_string()));
            return Ok(1);
        }
    };
    let built_in = if common.sandbox {
        Some(BuiltIn::start().await?)
    } else {
        None
    };
    let settings = Settings::new(common, &plan, built_in.as_ref())?;
    let progress: Arc<dyn Reporter> = Arc::new(Progress::new(
        Settings::shows_progress(common),
        common.verbose,
    ));
    let client = Client::new(&settings.client, Arc::clone(&progress))?;
    let report = crate::status::status(
        &plan,
        &client,
        &common.targets,
        settings.client.concurrency,
        &progress,
    )
    .await;
    drop(progress);
    if let Some(built_in) = built_in {
        built_in.sandbox.shutdown().await;
    }
    match settings.output {
        Output::Json => println!("{}", report.to_json()),
        Output::Human => match &report.error {
            Some(error) => eprintln!("error: {}", controls(error)),
            None => print!("{}", report.human()),
        },
    }
    Ok(u8::from(report.has_failures()))
}

/// `--sandbox`: the built-in sandbox with its default seed, and the seed's demo credentials.
struct BuiltIn {
    sandbox: Sandbox,
    credentials: Credentials,
}

impl BuiltIn {
    async fn start() -> anyhow::Result<BuiltIn> {
        let config = SandboxConfig::default_on_free_port();
        let credentials = match config.seed.applications.first() {
            Some(app) => Credentials::Application {
                client_id: app.client_id.clone(),
                client_secret: Secret::new(app.client_secret.clone()),
            },
            None => Credentials::None,
        };
        let sandbox = Sandbox::start(config)
            .await
            .context("starting the built-in sandbox")?;
        Ok(BuiltIn {
            sandbox,
            credentials,
        })
    }
}

/// The online part of `plan` and `apply`, once the plan is loaded: settings, the client, the run
/// ([`apply::run`]), then the summary and the report file.
async fn run_loaded(
    plan: &Plan,
    common: &CommonArgs,
    mode: Mode,
    apply: Option<&ApplyOptions>,
    built_in: Option<&BuiltIn>,
    progress: Arc<dyn Reporter>,
    stop: &Stop,
) -> anyhow::Result<Status> {
    let report_file = apply.and_then(|a| a.report.as_deref());
    let settings = Settings::new(common, plan, built_in)?;
    if let Some(built_in) = built_in {
        progress.log(
            1,
            &format!("sandbox listening on {}", built_in.sandbox.url()),
        );
    }
    for note in &settings.notes {
        progress.log(0, note);
    }
    if matches!(settings.client.credentials, Credentials::None) {
        progress.log(
            0,
            "note: no AIRBYTE_TOKEN, nor AIRBYTE_CLIENT_ID and AIRBYTE_CLIENT_SECRET: requests go \
             without credentials (fine for a self-hosted Airbyte with auth off)",
        );
    }
    let client = Client::new(&settings.client, Arc::clone(&progress))?;
    let options = RunOptions {
        mode,
        existing: settings.existing,
        execute: settings.execute.clone(),
        show_bodies: settings.verbosity > 0,
        // Without `--yes`, ask; with nobody to ask, write nothing (SPEC §1).
        confirm: !apply.is_some_and(|a| a.yes),
        sync: apply.filter(|a| a.sync.sync).map(|a| SyncOptions {
            concurrency: usize::from(a.sync.sync_concurrency),
            wait: a.sync.wait,
            poll: a.sync.poll_interval,
            retry: RetryPolicy::default(),
            all: a.sync.sync_all,
        }),
        prune: common.prune,
        targets: common.targets.clone(),
    };
    let terminal = Terminal {
        settings: &settings,
        progress: Arc::clone(&progress),
        interrupt: &stop.interrupt,
        asking: &stop.asking,
    };
    let report = apply::run(
        plan,
        &client,
        &options,
        &terminal,
        &stop.interrupt,
        &progress,
    )
    .await;
    let mut report = report;
    if !report.errors.is_empty() {
        report.errors.extend(hints(
            &settings.url_origin,
            &settings.client.credentials,
            &client,
        ));
    }
    // The bars are gone before the summary is printed.
    drop(terminal);
    drop(progress);
    let summary =
        (report.mode == Mode::Apply && report.errors.is_empty()).then(|| settings.style());
    finish(&report, settings.output, report_file, summary)?;
    Ok(apply::status(&report))
}

/// The terminal's side of a run: the preview on stdout, the prompt on stderr.
struct Terminal<'a> {
    settings: &'a Settings,
    progress: Arc<dyn Reporter>,
    interrupt: &'a Interrupt,
    /// Set while the prompt waits: a Ctrl-C then cancels at once.
    asking: &'a AtomicBool,
}

impl Console for Terminal<'_> {
    fn preview(&self, report: &Report, bodies: &BTreeMap<usize, serde_json::Value>) {
        if self.settings.output == Output::Human && report.errors.is_empty() {
            // Through the reporter: the writes' bar may be on screen.
            self.progress
                .print(&human::preview(report, bodies, self.settings.style()));
        }
    }

    async fn confirm(&self, report: &Report) -> Confirmation {
        if !can_ask() {
            return Confirmation::NoTerminal;
        }
        self.asking.store(true, Ordering::SeqCst);
        let answer = confirm(report, self.interrupt).await;
        self.asking.store(false, Ordering::SeqCst);
        match answer {
            Ok(Some(true)) => Confirmation::Proceed,
            Ok(Some(false)) => {
                eprintln!("Apply cancelled; nothing was written.");
                Confirmation::Cancel
            }
            Ok(None) => {
                // The prompt's line stays as it is (`…: ^C`); what follows starts below it.
                eprintln!();
                Confirmation::Interrupted
            }
            Err(e) => {
                eprintln!("error: {}", controls(&format!("{e:#}")));
                Confirmation::Cancel
            }
        }
    }
}

/// The signals that stop a run: Ctrl-C (SIGINT) and, on Unix, SIGTERM (how CI systems cancel a
/// job). Listening starts when this is made, so no signal after that is lost.
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn listen() -> anyhow::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                interrupt: signal(SignalKind::interrupt()).context("listening for Ctrl-C")?,
                terminate: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// The next signal, as the exit code it calls for; `None` when no more can come.
    async fn next(&mut self) -> Option<u8> {
        #[cfg(unix)]
        {
            tokio::select! {
                got = self.interrupt.recv() => got.map(|()| INTERRUPTED),
                got = self.terminate.recv() => got.map(|()| TERMINATED),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.ok().map(|()| INTERRUPTED)
        }
    }
}

/// The first signal asks the run to wind down (and sets the exit code); the second ends the wait
/// for the creates in flight, and the run writes its report and exits; a third exits at once.
async fn watch_signals(
    mut signals: Signals,
    interrupt: Arc<Interrupt>,
    code: Arc<AtomicU8>,
    asking: Arc<AtomicBool>,
    reporter: Weak<dyn Reporter>,
) {
    let log = |line: &str| {
        if let Some(reporter) = reporter.upgrade() {
            reporter.log(0, line);
        }
    };
    let Some(first) = signals.next().await else {
        return;
    };
    code.store(first, Ordering::SeqCst);
    // At the prompt nothing is in flight: the run ends at once, with nothing written.
    if !asking.load(Ordering::SeqCst) {
        log(&format!(
            "{}: no new creates will start; waiting for those in flight (again to stop waiting)",
            if first == TERMINATED {
                "terminated (SIGTERM)"
            } else {
                "interrupted"
            }
        ));
    }
    interrupt.raise();
    if signals.next().await.is_none() {
        return;
    }
    log("interrupted again: writing the report and exiting (again to exit at once)");
    interrupt.raise();
    if signals.next().await.is_some() {
        std::process::exit(i32::from(first));
    }
}

/// Stops a background task when the run is over.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Prints the end of a run (the apply summary, or the JSON document, or the fatal error) and
/// writes the report file.
fn finish(
    report: &Report,
    output: Output,
    report_file: Option<&Path>,
    apply_style: Option<Style>,
) -> anyhow::Result<()> {
    match output {
        Output::Json => stdout::println(&report.to_json()),
        Output::Human => {
            if let Some((first, hints)) = report.errors.split_first() {
                eprintln!("error: {}", controls(first));
                for hint in hints {
                    eprintln!("{}", controls(hint));
                }
            } else if let Some(style) = apply_style {
                stdout::print(&human::apply_summary(report, style));
            }
        }
    }
    if let Some(path) = report_file {
        write_report(report, path)?;
    }
    Ok(())
}

/// Writes the report file, or says which file could not be written.
fn write_report(report: &Report, path: &Path) -> anyhow::Result<()> {
    report.write_atomically(path).with_context(|| {
        format!(
            "writing the report to {}",
            escape::controls(&path.display().to_string())
        )
    })
}

/// Whether a person is there to answer a prompt: stdin and stderr are terminals.
fn can_ask() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks before writing. `None`: interrupted while asking.
async fn confirm(report: &Report, interrupt: &Interrupt) -> anyhow::Result<Option<bool>> {
    let s = &report.summary;
    let parts: Vec<String> = [
        (s.create, "create"),
        (s.update, "update"),
        (s.delete, "delete"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}{}", if n == 1 { "" } else { "s" }))
    .collect();
    eprint!("Apply {}? Only 'yes' or 'y' proceeds: ", parts.join(", "));
    std::io::stderr().flush()?;
    // Read on a blocking thread, so Ctrl-C still reaches the run while it waits.
    let answer = tokio::task::spawn_blocking(|| {
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map(|_| answer)
    });
    tokio::select! {
        answer = answer => {
            let answer = answer.context("reading the answer")??;
            Ok(Some(matches!(answer.trim(), "yes" | "y")))
        }
        () = interrupt.raised() => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::{ColorChoice, use_color};

    #[test]
    fn color_follows_the_flag_then_the_environment_then_the_terminal() {
        use ColorChoice::{Always, Auto, Never};
        for (choice, no_color, force, terminal, expected) in [
            (Always, Some("1"), None, false, true),
            (Never, None, Some("1"), true, false),
            (Auto, None, None, true, true),
            (Auto, None, None, false, false),
            (Auto, Some("1"), None, true, false),
            (Auto, Some(""), None, true, true),
            (Auto, None, Some("1"), false, true),
            (Auto, None, Some("0"), false, false),
            (Auto, Some("1"), Some("1"), true, false),
        ] {
            assert_eq!(
                use_color(choice, no_color, force, terminal),
                expected,
                "{choice:?} NO_COLOR={no_color:?} CLICOLOR_FORCE={force:?} terminal={terminal}"
            );
        }
    }
}
