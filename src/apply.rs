//! The run of `plan` and `apply` as one library call: the stages in order, and one exit status
//! derived from what they produced.
//!
//! resolve (remote reads) → build (catalogs where needed; the pure `copy` and `diff` stages) →
//! preview → confirm → execute (bounded writes) → the [`Report`], assembled from the planned rows
//! and the write outcomes. What it needs from whoever runs it (showing the preview, asking before
//! writing) comes through a [`Console`]; progress through a [`Reporter`]. Nothing here prints.
//!
//! An `apply` that does not ask overlaps build and execute: a target's write starts the moment
//! its own checks pass, while other catalogs are still being read, and the preview is shown once
//! every target is decided. An `apply` that asks shows the whole preview first, then writes.

use crate::build::{self, BuildOptions, Planned};
use crate::client::Client;
use crate::copy::{Blueprint, TemplateConnection};
use crate::diff::TargetPlan;
use crate::execute::{self, ExecuteOptions, Interrupt, Write, WriteKind};
use crate::plan::{ExistingPolicy, Plan};
use crate::report::events::Reporter;
use crate::report::{Action, Mode, Outcome, Report, State, TargetReport};
use crate::resolve::{self, Resolved};
use crate::wire::ConnectionStatus;
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// How a run goes.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `plan` only looks; `apply` writes.
    pub mode: Mode,
    /// `--existing`: wins over the plan's `existing`.
    pub existing: Option<ExistingPolicy>,
    pub execute: ExecuteOptions,
    /// Keep each write's body for the preview (`-v`).
    pub show_bodies: bool,
    /// Ask the [`Console`] before writing (and so show the whole preview first); without
    /// `--yes` an apply always asks, and a console with nobody to ask refuses.
    pub confirm: bool,
}

/// The answer to "apply these changes?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    Proceed,
    Cancel,
    /// Ctrl-C (or SIGTERM) while asking.
    Interrupted,
    /// Nobody to ask (no terminal), and not told `--yes`: nothing is written.
    NoTerminal,
}

/// What a run needs from whoever runs it.
pub trait Console {
    /// Every target is decided: show the preview. `bodies` holds each write's request body by
    /// row, when [`RunOptions::show_bodies`] asked for them.
    fn preview(&self, report: &Report, bodies: &BTreeMap<usize, serde_json::Value>);
    /// Asks before writing; only called when there is something to write.
    fn confirm(&self, report: &Report) -> impl Future<Output = Confirmation>;
}

/// What the exit code is made from (SPEC §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Nothing failed, and nothing is left to change.
    Clean,
    /// A `plan` found changes to make (`--detailed-exitcode` says 2).
    Changes,
    Failed,
    /// Stopped by a signal.
    Interrupted,
}

/// The status of a finished run, from its report alone.
pub fn status(report: &Report) -> Status {
    if report.state == State::Interrupted {
        Status::Interrupted
    } else if report.has_failures() {
        Status::Failed
    } else if report.mode == Mode::Plan && report.has_changes() {
        Status::Changes
    } else {
        Status::Clean
    }
}

/// Runs the plan: resolve, build, preview, (confirm, execute), and returns the report. A failure
/// of the whole run (template not found, API unreachable) is `report.error`; a failure of one
/// target is its row.
pub async fn run(
    plan: &Plan,
    client: &Client,
    options: &RunOptions,
    console: &impl Console,
    interrupt: &Interrupt,
    reporter: &Arc<dyn Reporter>,
) -> Report {
    let mut report = Report::new(&plan.file, options.mode);
    let resolved = tokio::select! {
        resolved = resolve::resolve(plan, client, reporter) => resolved,
        () = interrupt.raised() => {
            report.errors.push("interrupted before anything was written".into());
            report.state = State::Interrupted;
            return report;
        }
    };
    let resolved = match resolved {
        Ok(resolved) => resolved,
        Err(e) => {
            report.errors.push(e.to_string());
            return finished(report, interrupt);
        }
    };
    report.template = Some(TemplateConnection::from(&resolved.template));
    let blueprint = match Blueprint::new(&resolved.template) {
        Ok(blueprint) => blueprint,
        Err(problems) => {
            report.errors.push(problems.join("; "));
            return finished(report, interrupt);
        }
    };
    let rows = Rows {
        decided: vec![None; resolved.targets.len()],
        bodies: BTreeMap::new(),
        show_bodies: options.show_bodies,
        workspace: resolved.template.workspace_id,
    };
    let run = Stages {
        resolved: &resolved,
        blueprint: &blueprint,
        build: BuildOptions {
            existing: options.existing.unwrap_or(plan.existing),
            missing_streams: plan.missing_streams,
        },
        client,
        options,
        console,
        interrupt,
        reporter,
    };
    let report = if options.mode == Mode::Apply && !options.confirm {
        run.write_while_building(report, rows).await
    } else {
        run.build_then_write(report, rows).await
    };
    finished(report, interrupt)
}

/// What the stages after resolve share.
struct Stages<'a, C> {
    resolved: &'a Resolved,
    blueprint: &'a Blueprint,
    build: BuildOptions,
    client: &'a Client,
    options: &'a RunOptions,
    console: &'a C,
    interrupt: &'a Interrupt,
    reporter: &'a Arc<dyn Reporter>,
}

impl<C: Console> Stages<'_, C> {
    /// An apply that does not ask: each write starts as soon as its target is decided.
    async fn write_while_building(&self, mut report: Report, mut rows: Rows) -> Report {
        let (ready, queued) = tokio::sync::mpsc::unbounded_channel();
        let building = async {
            build::build(
                self.resolved,
                self.blueprint,
                self.build,
                self.client,
                self.interrupt,
                self.reporter,
                |i, planned| {
                    if let Some(write) = rows.keep(i, planned) {
                        // The receiver lives until the writes are done.
                        let _ = ready.send(write);
                    }
                },
            )
            .await;
            drop(ready);
            report.targets = rows.finish(&self.resolved.targets);
            report.tally();
            self.console.preview(&report, &rows.bodies);
        };
        let queued = futures::stream::unfold(queued, |mut queued| async move {
            queued.recv().await.map(|write| (write, queued))
        });
        let writing = execute::write(
            queued,
            self.client,
            &self.options.execute,
            self.interrupt,
            self.reporter,
        );
        let ((), outcomes) = tokio::join!(building, writing);
        report.record(&outcomes);
        check_template(&mut report, self.client, self.interrupt).await;
        report
    }

    /// A plan, or an apply that asks: every target decided and shown, then (confirmed) written.
    async fn build_then_write(&self, mut report: Report, mut rows: Rows) -> Report {
        let mut writes = Vec::new();
        build::build(
            self.resolved,
            self.blueprint,
            self.build,
            self.client,
            self.interrupt,
            self.reporter,
            |i, planned| writes.extend(rows.keep(i, planned)),
        )
        .await;
        report.targets = rows.finish(&self.resolved.targets);
        report.tally();
        let apply = self.options.mode == Mode::Apply;
        if self.interrupt.is_raised() {
            if apply {
                report.record(&[]);
            }
            return report;
        }
        self.console.preview(&report, &rows.bodies);
        if !apply {
            return report;
        }
        if writes.is_empty() {
            report.record(&[]);
            return report;
        }
        match self.console.confirm(&report).await {
            Confirmation::Proceed => {}
            Confirmation::Cancel => {
                report.record(&[]);
                report
                    .errors
                    .push("apply cancelled at the prompt; nothing was written".into());
                return report;
            }
            Confirmation::Interrupted => {
                report.record(&[]);
                report
                    .errors
                    .push("interrupted at the prompt; nothing was written".into());
                return report;
            }
            Confirmation::NoTerminal => {
                report.record(&[]);
                report
                    .errors
                    .push("no terminal to confirm on; pass --yes to apply without asking".into());
                return report;
            }
        }
        let outcomes = execute::write(
            futures::stream::iter(writes),
            self.client,
            &self.options.execute,
            self.interrupt,
            self.reporter,
        )
        .await;
        report.record(&outcomes);
        check_template(&mut report, self.client, self.interrupt).await;
        report
    }
}

/// The report's state, once the run is over.
fn finished(mut report: Report, interrupt: &Interrupt) -> Report {
    report.state = if interrupt.is_raised() {
        State::Interrupted
    } else {
        State::Complete
    };
    report
}

/// What a planned target writes, if anything.
fn write_kind(plan: TargetPlan) -> Option<WriteKind> {
    match plan {
        TargetPlan::Create { body } => Some(WriteKind::Create(body)),
        TargetPlan::Update {
            connection_id,
            patch,
            ..
        } => Some(WriteKind::Update {
            connection_id,
            patch,
        }),
        TargetPlan::Delete { connection_id } => Some(WriteKind::Delete { connection_id }),
        TargetPlan::Unchanged { .. } | TargetPlan::Invalid(_) => None,
    }
}

/// The report rows as targets are decided, and the writes' bodies for `-v`.
struct Rows {
    decided: Vec<Option<TargetReport>>,
    bodies: BTreeMap<usize, serde_json::Value>,
    show_bodies: bool,
    workspace: Uuid,
}

impl Rows {
    /// Keeps the row of a decided target; returns its write, if it has one.
    fn keep(&mut self, i: usize, planned: Planned) -> Option<Write> {
        self.decided[i] = Some(TargetReport::planned(&planned));
        let kind = write_kind(planned.plan)?;
        if self.show_bodies {
            if let Some(body) = kind.body() {
                self.bodies.insert(i, body);
            }
        }
        Some(Write {
            row: i,
            workspace: self.workspace,
            kind,
        })
    }

    /// The rows in target order; a target the build never decided (interrupted before its
    /// catalog was read) says so, and nothing was written for it.
    fn finish(&mut self, targets: &[resolve::ResolvedTarget]) -> Vec<TargetReport> {
        std::mem::take(&mut self.decided)
            .into_iter()
            .zip(targets)
            .map(|(row, target)| {
                row.unwrap_or_else(|| TargetReport {
                    source_id: target.source.as_ref().ok().map(|s| s.id),
                    source_name: target.source.as_ref().ok().map(|s| s.name.clone()),
                    name: None,
                    action: Action::Error,
                    // Not a failure of the target: the run stopped before it.
                    outcome: Some(Outcome::NotRun),
                    connection_id: None,
                    error: Some(
                        "interrupted before its catalog was read; nothing was written for it"
                            .into(),
                    ),
                    warnings: Vec::new(),
                    changes: Vec::new(),
                    entry: target.entry.clone(),
                })
            })
            .collect()
    }
}

/// After the writes, one more read of the template: a template deleted while the run went on
/// leaves copies of a connection that is gone, which the summary and the report say. Skipped
/// when nothing was written, or after a second interrupt.
async fn check_template(report: &mut Report, client: &Client, interrupt: &Interrupt) {
    let Some(template) = &report.template else {
        return;
    };
    let wrote = report.targets.iter().any(|t| {
        matches!(
            t.outcome,
            Some(Outcome::Created | Outcome::Updated | Outcome::Failed)
        ) && matches!(t.action, Action::Create | Action::Update)
    });
    if !wrote || !report.errors.is_empty() || interrupt.is_urgent() {
        return;
    }
    let deleted = tokio::select! {
        read = client.connection(template.connection_id) => match read {
            Ok(connection) => connection.status == ConnectionStatus::Deprecated,
            Err(e) => e.status() == Some(404),
        },
        () = interrupt.urgent() => false,
    };
    if deleted {
        report.warnings.push(format!(
            "the template \"{}\" ({}) was deleted during the run; the copies were made from it \
             as it was when the run began",
            template.name, template.connection_id
        ));
    }
}
