//! The command line: flags parsed by clap (the "low" view), turned into checked `Settings`
//! (the "high" view), then the commands that run the pipeline and own the terminal.
//!
//! Exit codes (SPEC §1): 0 success; 1 any failure; 2 usage error; `plan --detailed-exitcode`:
//! 0 no changes, 2 changes pending, 1 error; 130 after Ctrl-C, 143 after SIGTERM.
//!
//! Everything printed here that quotes the plan or the server goes through
//! [`escape::controls`], like the human renderings: no escape sequence reaches the terminal.

use crate::report::Mode;
use crate::report::escape::controls;
use crate::sandbox;
use clap::{CommandFactory, FromArgMatches};

mod args;
mod commands;
mod run;
mod settings;
mod signals;
mod unlock;

pub use args::Cli;
use args::{
    Command, CommonArgs, DEFAULT_URL, GRACE, INTERRUPTED, Listed, LsArgs, Output, Shell, SyncArgs,
    TERMINATED, use_color,
};
use commands::{completions, list, man, schema, validate};
use run::{ApplyOptions, BuiltIn, exit_code, run_plan, run_status};
use settings::{Settings, choose_url, credentials_from_env, hints};
use signals::{AbortOnDrop, Signals, watch_signals};

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
            Command::Unlock(args) => args.url_source = sub.value_source("url"),
            Command::Validate { .. }
            | Command::Sandbox(_)
            | Command::Completions { .. }
            | Command::Man
            | Command::Schema => {}
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
                lock_timeout,
            } => {
                let mode = if dry_run { Mode::Plan } else { Mode::Apply };
                let apply = ApplyOptions {
                    yes,
                    report,
                    sync,
                    lock_timeout,
                };
                run_plan(&plan, &common, mode, Some(&apply))
                    .await
                    .map(|(status, signal)| exit_code(status, detailed_exitcode, signal))
            }
            Command::Status { plan, common } => run_status(&plan, &common).await,
            Command::Sandbox(args) => sandbox::run(args).await.map(|()| 0),
            Command::Ls(args) => list(&args).await,
            Command::Unlock(args) => unlock::unlock(&args).await,
            Command::Completions { shell } => Ok(completions(shell)),
            Command::Man => man(),
            Command::Schema => Ok(schema()),
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
