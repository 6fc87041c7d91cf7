//! The command line as clap parses it (the "low" view): commands, flags, their checks.

use crate::duration;
use crate::plan::{self, ExistingPolicy};
use crate::sandbox::SandboxArgs;
use clap::parser::ValueSource;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// The default API base: Airbyte Cloud.
pub const DEFAULT_URL: &str = "https://api.airbyte.com/v1";

/// How long creates in flight may take to finish after Ctrl-C.
pub(super) const GRACE: Duration = Duration::from_secs(30);

/// The exit code of an interrupted run (128 + SIGINT).
pub(super) const INTERRUPTED: u8 = 130;

/// The exit code of a terminated run (128 + SIGTERM).
pub(super) const TERMINATED: u8 = 143;

/// Clone one Airbyte connection onto many sources, declaratively.
#[derive(Debug, Parser)]
#[command(name = "replicate", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
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
        /// Wait up to this long for the plan's lease when another apply of it holds it
        /// (0: stop at once, exit 1).
        #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = duration::parse)]
        lock_timeout: Duration,
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
    /// Drop the plan's lease by hand, when a run died holding it.
    Unlock(UnlockArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell) on stdout.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the manual page (roff) on stdout.
    Man,
    /// Print the JSON Schema of plan files on stdout, for editors.
    Schema,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

#[derive(Debug, Args)]
pub(super) struct LsArgs {
    /// What to list.
    #[arg(value_enum)]
    pub(super) what: Listed,
    /// A plan, whose `airbyte.url` is used when neither --url nor `AIRBYTE_URL` is set.
    #[arg(value_name = "PLAN")]
    pub(super) plan: Option<PathBuf>,
    /// API base URL [default: the plan's airbyte.url, else `https://api.airbyte.com/v1`]
    #[arg(long, env = "AIRBYTE_URL", value_name = "URL")]
    pub(super) url: Option<String>,
    /// `json`: one JSON array on stdout.
    #[arg(long, value_enum, default_value = "human")]
    pub(super) output: Output,
    /// Start the built-in sandbox in-process and list what it holds.
    #[arg(long)]
    pub(super) sandbox: bool,
    /// Allow plain http:// to hosts other than loopback.
    #[arg(long)]
    pub(super) allow_insecure_http: bool,
    /// Also trust the CA certificates in FILE (PEM).
    #[arg(long, value_name = "FILE")]
    pub(super) ca_cert: Option<PathBuf>,
    #[arg(skip)]
    pub(super) url_source: Option<ValueSource>,
}

#[derive(Debug, Args)]
pub(super) struct UnlockArgs {
    #[arg(value_name = "PLAN")]
    pub(super) plan: PathBuf,
    /// API base URL [default: the plan's airbyte.url, else `https://api.airbyte.com/v1`]
    #[arg(long, env = "AIRBYTE_URL", value_name = "URL")]
    pub(super) url: Option<String>,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub(super) yes: bool,
    /// Allow plain http:// to hosts other than loopback.
    #[arg(long)]
    pub(super) allow_insecure_http: bool,
    /// Also trust the CA certificates in FILE (PEM).
    #[arg(long, value_name = "FILE")]
    pub(super) ca_cert: Option<PathBuf>,
    #[arg(skip)]
    pub(super) url_source: Option<ValueSource>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Listed {
    Connections,
    Sources,
}

/// First syncs (SPEC §10).
#[derive(Debug, Args)]
pub(super) struct SyncArgs {
    /// Start the first sync of each copy this run creates.
    #[arg(long)]
    pub(super) sync: bool,
    /// With --sync: also sync the copies that existed before.
    #[arg(long, requires = "sync")]
    pub(super) sync_all: bool,
    /// With --sync: at most N syncs started at once.
    #[arg(long, value_name = "N", default_value = "2", requires = "sync",
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(super) sync_concurrency: u16,
    /// With --sync: follow the syncs to their end; a failed sync fails its target.
    #[arg(long, requires = "sync")]
    pub(super) wait: bool,
    /// With --wait: read each running job this often.
    #[arg(long, value_name = "DURATION", default_value = "5s", requires = "wait",
          value_parser = duration::parse)]
    pub(super) poll_interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Existing {
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
pub(super) enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Whether to colour: `--color always|never` wins; with `auto`, a set `NO_COLOR` turns colour
/// off, then a set `CLICOLOR_FORCE` (other than `0`) turns it on, else stdout must be a terminal.
pub(super) fn use_color(
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
pub(super) enum Output {
    Human,
    Json,
}

#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // each is a flag of its own
pub(super) struct CommonArgs {
    /// API base URL [default: the plan's airbyte.url, else `https://api.airbyte.com/v1`]
    #[arg(long, env = "AIRBYTE_URL", value_name = "URL")]
    pub(super) url: Option<String>,
    /// At most N API requests in flight at once [default: the plan's concurrency, else 8]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(super) concurrency: Option<u16>,
    /// `json`: one JSON document on stdout, nothing else.
    #[arg(long, value_enum, default_value = "human")]
    pub(super) output: Output,
    /// No progress bars, and no rows for unchanged targets: only errors, changes and the
    /// summary.
    #[arg(long, short)]
    pub(super) quiet: bool,
    /// More logging on stderr (-v requests and create bodies, -vv token and retry details).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub(super) verbose: u8,
    /// Start the built-in sandbox in-process and point at it.
    #[arg(long)]
    pub(super) sandbox: bool,
    /// Allow plain http:// to hosts other than loopback.
    #[arg(long)]
    pub(super) allow_insecure_http: bool,
    /// Give up on one API request after this long (a create runs a schema discover).
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = duration::parse)]
    pub(super) request_timeout: Duration,
    /// Give up on one read (every GET but a catalog's `GET /streams`, which runs a schema
    /// discover; and the token exchange) after this long, or after --request-timeout if shorter.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration::parse)]
    pub(super) read_timeout: Duration,
    /// Also trust the CA certificates in FILE (PEM), e.g. for a self-hosted Airbyte behind an
    /// internal CA. The platform's roots stay trusted.
    #[arg(long, value_name = "FILE")]
    pub(super) ca_cert: Option<PathBuf>,
    /// What to do with a copy that already exists [default: the plan's `existing`, else
    /// update]: bring it in line with the plan, leave it (drift is still shown), or fail.
    #[arg(long, value_enum, value_name = "POLICY")]
    pub(super) existing: Option<Existing>,
    /// Give up on one target (its create, retries and lookups) after this long; no single
    /// request, a read's retries and the server's Retry-After included, lasts longer.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration::parse)]
    pub(super) target_timeout: Duration,
    /// Delete the copies this plan owns whose source is no longer a target (as the plan's
    /// `prune: true`); `plan --prune` previews it.
    #[arg(long)]
    pub(super) prune: bool,
    /// Only the targets whose source name matches GLOB (repeatable): the others are not read,
    /// written or pruned. A targeted run never prunes.
    #[arg(long = "target", value_name = "GLOB", value_parser = target_glob)]
    pub(super) targets: Vec<plan::Glob>,
    /// Colours in the human output: on a terminal (auto; not with `NO_COLOR`, forced by
    /// `CLICOLOR_FORCE`), always, or never.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    pub(super) color: ColorChoice,
    /// Where `url` came from: `--url` or `AIRBYTE_URL` (set after parsing).
    #[arg(skip)]
    pub(super) url_source: Option<ValueSource>,
}

/// A `--target` glob, checked as plan globs are.
pub(super) fn target_glob(text: &str) -> Result<plan::Glob, String> {
    plan::compile_glob(text)
}

#[cfg(test)]
mod tests {
    use super::{ColorChoice, use_color};

    #[test]
    pub(super) fn color_follows_the_flag_then_the_environment_then_the_terminal() {
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
