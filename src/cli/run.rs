//! `plan`, `apply` and `status`: load the plan, run the pipeline ([`crate::apply::run`]) with the
//! terminal as its console (preview, prompt), then print the summary and write the report.

use super::{
    AbortOnDrop, CommonArgs, INTERRUPTED, Output, Settings, Signals, SyncArgs, hints, watch_signals,
};
use crate::apply::{self, Confirmation, Console, RunOptions, Status};
use crate::client::{Client, Credentials, RetryPolicy};
use crate::execute::Interrupt;
use crate::lease::LeaseOptions;
use crate::plan::{self, Plan};
use crate::report::escape::{self, controls};
use crate::report::events::Reporter;
use crate::report::human::{self, Style};
use crate::report::progress::Progress;
use crate::report::stdout;
use crate::report::{Mode, Report, State};
use crate::sandbox::{Sandbox, SandboxConfig};
use crate::secret::Secret;
use crate::sync::SyncOptions;
use anyhow::Context;
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

pub(super) struct ApplyOptions {
    pub(super) yes: bool,
    pub(super) report: Option<PathBuf>,
    pub(super) sync: SyncArgs,
    /// `--lock-timeout`: how long to wait for the plan's lease.
    pub(super) lock_timeout: Duration,
}

/// The exit code of a run (SPEC §1): `status` from the report, `detailed` for
/// `--detailed-exitcode`, `signal` the code the first signal calls for (130 or 143).
pub(super) fn exit_code(status: Status, detailed: bool, signal: u8) -> u8 {
    match status {
        Status::Interrupted => signal,
        Status::Failed => 1,
        Status::Changes if detailed => 2,
        Status::Changes | Status::Clean => 0,
    }
}

/// What stops a run: the interrupt the signals raise, and the exit code of the first signal.
pub(super) struct Stop {
    pub(super) interrupt: Arc<Interrupt>,
    pub(super) code: Arc<AtomicU8>,
    /// The prompt is waiting for an answer.
    pub(super) asking: Arc<AtomicBool>,
}

/// `plan` and `apply`: load → resolve → preview → (confirm → execute) → report.
pub(super) async fn run_plan(
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
pub(super) async fn run_status(file: &Path, common: &CommonArgs) -> anyhow::Result<u8> {
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
    progress.done();
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
pub(super) struct BuiltIn {
    pub(super) sandbox: Sandbox,
    pub(super) credentials: Credentials,
}

impl BuiltIn {
    pub(super) async fn start() -> anyhow::Result<BuiltIn> {
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
pub(super) async fn run_loaded(
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
        lease: LeaseOptions::new(
            common.request_timeout,
            apply.map_or(Duration::ZERO, |a| a.lock_timeout),
        ),
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
    progress.done();
    drop(terminal);
    drop(progress);
    let summary =
        (report.mode == Mode::Apply && report.errors.is_empty()).then(|| settings.style());
    finish(&report, settings.output, report_file, summary)?;
    Ok(apply::status(&report))
}

/// The terminal's side of a run: the preview on stdout, the prompt on stderr.
pub(super) struct Terminal<'a> {
    pub(super) settings: &'a Settings,
    pub(super) progress: Arc<dyn Reporter>,
    pub(super) interrupt: &'a Interrupt,
    /// Set while the prompt waits: a Ctrl-C then cancels at once.
    pub(super) asking: &'a AtomicBool,
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
        // The prompt's line is the user's: no bar may be redrawn over it once answered.
        self.progress.before_prompt();
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

/// Prints the end of a run (the apply summary, or the JSON document, or the fatal error) and
/// writes the report file.
pub(super) fn finish(
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
pub(super) fn write_report(report: &Report, path: &Path) -> anyhow::Result<()> {
    report.write_atomically(path).with_context(|| {
        format!(
            "writing the report to {}",
            escape::controls(&path.display().to_string())
        )
    })
}

/// Whether a person is there to answer a prompt: stdin and stderr are terminals.
pub(super) fn can_ask() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks before writing. `None`: interrupted while asking.
pub(super) async fn confirm(
    report: &Report,
    interrupt: &Interrupt,
) -> anyhow::Result<Option<bool>> {
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
    let question = format!("Apply {}? Only 'yes' or 'y' proceeds: ", parts.join(", "));
    tokio::select! {
        yes = ask(&question) => yes.map(Some),
        () = interrupt.raised() => Ok(None),
    }
}

/// Asks `question` on stderr and reads the answer from stdin: whether it is `yes` or `y`. The
/// line is read on a blocking thread, so that a Ctrl-C still reaches the run while it waits.
pub(super) async fn ask(question: &str) -> anyhow::Result<bool> {
    eprint!("{question}");
    std::io::stderr().flush()?;
    let answer = tokio::task::spawn_blocking(|| {
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map(|_| answer)
    })
    .await
    .context("reading the answer")??;
    Ok(matches!(answer.trim(), "yes" | "y"))
}
