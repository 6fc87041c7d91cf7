//! The run of `plan` and `apply` as one library call: the stages in order, and one exit status
//! derived from what they produced.
//!
//! resolve (remote reads) → build (catalogs where needed; the pure `copy` and `diff` stages) →
//! preview → confirm → execute (bounded writes) → the [`Report`], assembled from the planned rows
//! and the write outcomes. What it needs from whoever runs it (showing the preview, asking before
//! writing) comes through a [`Console`]; progress through a [`Reporter`]. Nothing here prints.
//!
//! Ownership (SPEC §9): every desired body carries the plan's owner tag (a placeholder until
//! `apply` makes it, just before the first write that needs it); the owned orphans and
//! duplicates resolve found are listed, or, when pruning, become `delete` rows written like the
//! others (duplicates left in place fail the run: [`Report::duplicates_left`]). `--target` narrows
//! the targets after resolve (the others are never read or written) and never prunes; a prune
//! whose selection cannot be trusted stops the run before anything is written.
//!
//! An `apply` that does not ask overlaps build and execute: a target's write starts the moment
//! its own checks pass, while other catalogs are still being read, and the preview is shown once
//! every target is decided. An `apply` that asks shows the whole preview first, then writes.

use crate::build::{self, BuildOptions, Planned};
use crate::client::Client;
use crate::copy::{Blueprint, TemplateConnection};
use crate::diff::TargetPlan;
use crate::duplicates;
use crate::execute::{self, ExecuteOptions, Interrupt, Write, WriteKind};
use crate::lease::{Lease, LeaseOptions};
use crate::orphans::{self, OwnedCopy, Prune};
use crate::owner::OwnerTag;
use crate::plan::Glob;
use crate::plan::{ExistingPolicy, Plan};
use crate::report::events::{Reporter, WriteResult};
use crate::report::{Action, Mode, Outcome, Report, State, TargetReport};
use crate::resolve::{self, Resolved};
use crate::select::{self, SourceSummary};
use crate::sync::{self, SyncOptions, SyncTarget};
use crate::wire::ConnectionStatus;
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
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
    /// `apply --sync`: start the first sync of each copy the run creates (and with
    /// [`SyncOptions::all`], of the copies that existed before).
    pub sync: Option<SyncOptions>,
    /// `--prune`: delete the owned orphans (as the plan's `prune: true` does).
    pub prune: bool,
    /// `--target`: only the targets whose source name matches one of these; never prunes.
    pub targets: Vec<Glob>,
    /// How `apply` holds the plan's lease (`plan` takes none).
    pub lease: LeaseOptions,
}

/// Why a run stops after resolve, before anything is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    PruneRefused(#[from] orphans::PruneRefused),
    #[error("--target {globs} matches none of the plan's {total} targets; nothing was written")]
    NoTargetMatches { globs: String, total: usize },
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
/// of the whole run (template not found, API unreachable, the lease held) is `report.error`; a
/// failure of one target is its row.
///
/// `apply` holds the plan's lease from before the connections are listed to the end of the run
/// (see [`crate::lease`]), renews it meanwhile, and drops it at the end, interrupted or not; a
/// lease lost on the way stops the writes not yet started.
pub async fn run(
    plan: &Plan,
    client: &Client,
    options: &RunOptions,
    console: &impl Console,
    interrupt: &Interrupt,
    reporter: &Arc<dyn Reporter>,
) -> Report {
    if options.mode != Mode::Apply {
        return run_stages(plan, client, options, console, interrupt, reporter, None).await;
    }
    let lease = Lease::new(&plan.owner, &plan.file.display().to_string(), options.lease);
    let lease = &lease;
    let work = async {
        let report = run_stages(
            plan,
            client,
            options,
            console,
            interrupt,
            reporter,
            Some(lease),
        );
        let report = report.await;
        lease.stop_renewing();
        report
    };
    let renew = lease.keep_fresh(client, |why| reporter.log(0, why));
    let (mut report, ()) = tokio::join!(work, renew);
    // A run cut short during resolve leaves catalogs being read ahead.
    client.forget_reads_ahead();
    if lease.is_lost() {
        report.errors.push(
            "the plan's lease was lost during the run (its tag was deleted: taken over as stale \
             by another run, or `replicate unlock`); the writes not yet started were not sent"
                .into(),
        );
    }
    if !interrupt.is_urgent() {
        // The template's last look and the lease's drop go together: neither needs the other.
        let release = tokio::time::timeout(RELEASE_TIMEOUT, lease.release(client));
        let (gone, released) = tokio::join!(template_gone(&report, client, interrupt), release);
        report.warnings.extend(gone);
        match released {
            Ok(Ok(())) => {}
            Ok(Err(e)) => report.warnings.push(lease.release_failed(&e)),
            Err(_) => report.warnings.push(
                lease.release_failed(&format!("no answer within {} s", RELEASE_TIMEOUT.as_secs())),
            ),
        }
    }
    report
}

/// How long dropping the lease may take at the end of a run.
const RELEASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The run, once it is known whether it holds a lease.
async fn run_stages(
    plan: &Plan,
    client: &Client,
    options: &RunOptions,
    console: &impl Console,
    interrupt: &Interrupt,
    reporter: &Arc<dyn Reporter>,
    lease: Option<&Lease>,
) -> Report {
    let mut report = Report::new(&plan.file, options.mode);
    report.owner = Some(plan.owner.clone());
    let writing = lease.map(|lease| resolve::Writing {
        lease,
        only: &options.targets,
    });
    let resolved = tokio::select! {
        resolved = resolve::resolve(plan, client, reporter, writing, &|_| {}) => resolved,
        () = interrupt.raised() => {
            report.errors.push("interrupted before anything was written".into());
            report.state = State::Interrupted;
            return report;
        }
    };
    let mut resolved = match resolved {
        Ok(resolved) => resolved,
        Err(e) => {
            report.errors.push(e.to_string());
            return finished(report, interrupt);
        }
    };
    report.template = Some(TemplateConnection::from(&resolved.template));
    report.warnings.append(&mut resolved.lease_notes);
    let workspace = resolved.template.workspace_id;
    let owner = OwnerTag::new(&plan.owner, workspace, resolved.owner_tag.clone());
    let blueprint = match Blueprint::new(&resolved.template) {
        Ok(blueprint) => blueprint.with_owner(owner.desired()),
        Err(problems) => {
            report.errors.push(problems.join("; "));
            return finished(report, interrupt);
        }
    };
    report.orphans.clone_from(&resolved.orphans);
    let prune = match scope(&mut resolved, plan.prune || options.prune, &options.targets) {
        Ok((prune, untargeted)) => {
            report.prune = prune;
            report.summary.untargeted = untargeted;
            prune
        }
        Err(e) => {
            report.errors.push(e.to_string());
            report.tally();
            return finished(report, interrupt);
        }
    };
    report.duplicates.clone_from(&resolved.duplicates);
    report
        .warnings
        .extend(duplicates::left_in_place(resolved.duplicates.len(), prune));
    let deletes: Vec<Planned> = if prune == Prune::On {
        let orphans = std::mem::take(&mut resolved.orphans).into_iter();
        let duplicates = std::mem::take(&mut resolved.duplicates).into_iter();
        orphans
            .map(|o| delete_row(o, None))
            .chain(duplicates.map(|d| delete_row(d.copy, Some(d.duplicate_of))))
            .collect()
    } else {
        Vec::new()
    };
    let rows = Rows {
        decided: vec![None; resolved.targets.len() + deletes.len()],
        bodies: BTreeMap::new(),
        show_bodies: options.show_bodies,
        workspace,
    };
    let run = Stages {
        lease,
        resolved: &resolved,
        deletes,
        owner: &owner,
        blueprint: &blueprint,
        build: BuildOptions {
            existing: options.existing.unwrap_or(plan.existing),
            missing_streams: plan.missing_streams,
            read_catalogs: true,
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

/// What the run covers, decided once resolve is done: whether it prunes (refused when the plan's
/// selection cannot be trusted), and the targets `--target` keeps (`resolved.targets` narrowed,
/// and with them `resolved.duplicates`: the others' are not the run's to list or fail on);
/// returns the prune decision and how many targets were left out.
///
/// A duplicate's own deletion does not depend on the selection being complete (its source is a
/// target for sure), so only the orphans can make a prune refused; a refused prune still stops
/// the run, duplicates included.
fn scope(
    resolved: &mut Resolved,
    prune_asked: bool,
    globs: &[Glob],
) -> Result<(Prune, usize), RunError> {
    let prune = orphans::decide(
        prune_asked,
        !globs.is_empty(),
        &resolved.targets,
        resolved.orphans.len(),
    )?;
    let total = resolved.targets.len();
    let (kept, untargeted) = select::narrow(std::mem::take(&mut resolved.targets), globs);
    if !globs.is_empty() && kept.is_empty() {
        let globs: Vec<String> = globs.iter().map(|g| format!("\"{}\"", g.text)).collect();
        return Err(RunError::NoTargetMatches {
            globs: globs.join(", --target "),
            total,
        });
    }
    resolved.targets = kept;
    if !globs.is_empty() {
        let sources: BTreeSet<Uuid> = resolved
            .targets
            .iter()
            .filter_map(|t| t.source.as_ref().ok().map(|s| s.id))
            .collect();
        resolved
            .duplicates
            .retain(|d| sources.contains(&d.copy.source_id));
    }
    Ok((prune, untargeted))
}

/// An owned orphan, or an owned duplicate of `duplicate_of`, decided: a `delete` row.
fn delete_row(copy: OwnedCopy, duplicate_of: Option<Uuid>) -> Planned {
    let entry = copy
        .source_name
        .clone()
        .unwrap_or_else(|| copy.source_id.to_string());
    Planned {
        entry,
        source: copy.source_name.map(|name| SourceSummary {
            id: copy.source_id,
            name,
            source_type: String::new(),
        }),
        name: Some(copy.name),
        plan: TargetPlan::Delete {
            connection_id: copy.connection_id,
            duplicate_of,
        },
        warnings: Vec::new(),
    }
}

/// What the stages after resolve share.
struct Stages<'a, C> {
    /// The lease `apply` holds: no write starts once it is lost.
    lease: Option<&'a Lease>,
    resolved: &'a Resolved,
    /// The `delete` rows (pruning): the owned orphans, then the owned duplicates; after the
    /// targets' rows.
    deletes: Vec<Planned>,
    owner: &'a OwnerTag,
    blueprint: &'a Blueprint,
    build: BuildOptions,
    client: &'a Client,
    options: &'a RunOptions,
    console: &'a C,
    interrupt: &'a Interrupt,
    reporter: &'a Arc<dyn Reporter>,
}

impl<C: Console> Stages<'_, C> {
    /// The `delete` rows of the copies being pruned, by row (after the targets' rows).
    fn delete_rows(&self) -> impl Iterator<Item = (usize, Planned)> + '_ {
        let first = self.resolved.targets.len();
        self.deletes
            .iter()
            .cloned()
            .enumerate()
            .map(move |(k, row)| (first + k, row))
    }

    /// An apply that does not ask: each write starts as soon as its target is decided.
    async fn write_while_building(&self, mut report: Report, mut rows: Rows) -> Report {
        let (ready, queued) = tokio::sync::mpsc::unbounded_channel();
        // Every row is known now, though not yet what each needs.
        self.reporter.writes_started(rows.decided.len() as u64);
        let building = async {
            build::build(
                self.resolved,
                self.blueprint,
                self.build,
                self.client,
                self.interrupt,
                self.reporter,
                |i, planned| match rows.keep(i, planned) {
                    // The receiver lives until the writes are done.
                    Some(write) => drop(ready.send(write)),
                    None => rows.settle(i, self.reporter),
                },
            )
            .await;
            // Those read ahead for targets another run gave a copy meanwhile, or interrupted.
            self.client.forget_reads_ahead();
            for (i, planned) in self.delete_rows() {
                if let Some(write) = rows.keep(i, planned) {
                    let _ = ready.send(write);
                }
            }
            drop(ready);
            report.targets = rows.finish(&self.resolved.targets);
            report.tally();
            self.console.preview(&report, &rows.bodies);
        };
        let queued = futures::stream::unfold(queued, |mut queued| async move {
            queued.recv().await.map(|write| (write, queued))
        });
        let writing = execute::write(
            while_leased(queued, self.lease),
            self.client,
            self.owner,
            &self.options.execute,
            self.interrupt,
            self.reporter,
        );
        let ((), outcomes) = tokio::join!(building, writing);
        report.record(&outcomes);
        self.after_writes(&mut report).await;
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
            |i, planned| {
                let write = rows.keep(i, planned);
                // A plan writes nothing: 20,000 create bodies are not held just to be dropped.
                if self.options.mode == Mode::Apply {
                    writes.extend(write);
                }
            },
        )
        .await;
        self.client.forget_reads_ahead();
        for (i, planned) in self.delete_rows() {
            writes.extend(rows.keep(i, planned));
        }
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
        let refused = match self.console.confirm(&report).await {
            Confirmation::Proceed => None,
            Confirmation::Cancel => Some("apply cancelled at the prompt; nothing was written"),
            Confirmation::Interrupted => Some("interrupted at the prompt; nothing was written"),
            Confirmation::NoTerminal => {
                Some("no terminal to confirm on; pass --yes to apply without asking")
            }
        };
        if let Some(why) = refused {
            report.record(&[]);
            report.errors.push(why.into());
            return report;
        }
        self.reporter.writes_started(report.targets.len() as u64);
        for row in &report.targets {
            if let Some(result) = settled(row.action) {
                self.reporter.target_settled(result);
            }
        }
        let outcomes = execute::write(
            while_leased(futures::stream::iter(writes), self.lease),
            self.client,
            self.owner,
            &self.options.execute,
            self.interrupt,
            self.reporter,
        )
        .await;
        report.record(&outcomes);
        self.after_writes(&mut report).await;
        report
    }

    /// What follows the writes: the first syncs (`--sync`), then one more look at the template.
    async fn after_writes(&self, report: &mut Report) {
        if let Some(options) = &self.options.sync {
            let targets: Vec<SyncTarget> = report
                .targets
                .iter()
                .enumerate()
                .filter_map(|(row, t)| {
                    let created_now = t.outcome == Some(Outcome::Created);
                    let existed = options.all
                        && matches!(t.outcome, Some(Outcome::Updated | Outcome::Unchanged));
                    (created_now || existed).then_some(SyncTarget {
                        row,
                        connection: t.connection_id?,
                        created_now,
                    })
                })
                .collect();
            if !self.interrupt.is_raised() {
                let outcomes =
                    sync::sync(targets, self.client, options, self.interrupt, self.reporter).await;
                for (row, outcome) in &outcomes {
                    if let Some(t) = report.targets.get_mut(*row) {
                        t.record_sync(outcome);
                    }
                }
                report.tally();
            }
        }
    }
}

/// The writes, until the lease is lost: none starts after that.
fn while_leased<'a>(
    writes: impl futures::Stream<Item = Write> + 'a,
    lease: Option<&'a Lease>,
) -> impl futures::Stream<Item = Write> + 'a {
    writes.take_until(async move {
        match lease {
            Some(lease) => lease.lost().await,
            None => futures::future::pending().await,
        }
    })
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
        TargetPlan::Delete { connection_id, .. } => Some(WriteKind::Delete { connection_id }),
        TargetPlan::Unchanged { .. } | TargetPlan::Invalid(_) => None,
    }
}

/// How a row with nothing to write counts on the progress bar; `None` for a write.
fn settled(action: Action) -> Option<WriteResult> {
    match action {
        Action::Unchanged => Some(WriteResult::Unchanged),
        Action::Error => Some(WriteResult::Failed),
        Action::Create | Action::Update | Action::Delete => None,
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

    /// Row `i`, decided with nothing to write, counts as done on the progress bar.
    fn settle(&self, i: usize, reporter: &Arc<dyn Reporter>) {
        let action = self.decided[i].as_ref().map(|row| row.action);
        if let Some(result) = action.and_then(settled) {
            reporter.target_settled(result);
        }
    }

    /// The rows in target order; a target the build never decided (interrupted before its
    /// catalog was read) says so, and nothing was written for it.
    fn finish(&mut self, targets: &[resolve::ResolvedTarget]) -> Vec<TargetReport> {
        std::mem::take(&mut self.decided)
            .into_iter()
            .zip(targets.iter().map(Some).chain(std::iter::repeat(None)))
            .filter_map(|(row, target)| {
                let target = match (row, target) {
                    (Some(row), _) => return Some(row),
                    // Delete rows are decided from the start.
                    (None, None) => return None,
                    (None, Some(target)) => target,
                };
                Some(TargetReport {
                    source_id: target.source.as_ref().ok().map(|s| s.id),
                    source_name: target.source.as_ref().ok().map(|s| s.name.clone()),
                    name: None,
                    action: Action::Error,
                    // Not a failure of the target: the run stopped before it.
                    outcome: Some(Outcome::NotRun),
                    connection_id: None,
                    duplicate_of: None,
                    error: Some(
                        "interrupted before its catalog was read; nothing was written for it"
                            .into(),
                    ),
                    warnings: Vec::new(),
                    changes: Vec::new(),
                    sync_job_id: None,
                    sync_status: None,
                    entry: target.entry.clone(),
                    sync_failed: false,
                })
            })
            .collect()
    }
}

/// After the writes (and syncs), one more read of the template: a template deleted while the
/// run went on leaves copies of a connection that is gone, which the summary and the report
/// say (the warning returned). Skipped when nothing was written, or after a second interrupt.
async fn template_gone(report: &Report, client: &Client, interrupt: &Interrupt) -> Option<String> {
    let template = report.template.as_ref()?;
    let wrote = report.targets.iter().any(|t| {
        matches!(
            t.outcome,
            Some(Outcome::Created | Outcome::Updated | Outcome::Failed)
        ) && matches!(t.action, Action::Create | Action::Update)
    });
    if !wrote || !report.errors.is_empty() || interrupt.is_urgent() {
        return None;
    }
    let deleted = tokio::select! {
        read = client.connection(template.connection_id) => match read {
            Ok(connection) => connection.status == ConnectionStatus::Deprecated,
            Err(e) => e.status() == Some(404),
        },
        () = interrupt.urgent() => false,
    };
    deleted.then(|| {
        format!(
            "the template \"{}\" ({}) was deleted during the run; the copies were made from it \
             as it was when the run began",
            template.name, template.connection_id
        )
    })
}
