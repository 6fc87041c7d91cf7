//! Preview: from the resolved plan to one row per target with its action (SPEC §5).
//!
//! resolve → for each target, render its name and look for an existing copy → read the catalogs
//! of the targets that need a create → build each create body → a [`Report`] in `plan` mode.
//! Nothing here writes: `apply` executes the `create` rows of this report afterwards, or takes
//! each body as soon as it is built (`PreviewOptions::ready`) and writes while this reads on.

use crate::client::Client;
use crate::copy::{self, Blueprint, TemplateConnection};
use crate::execute::{Create, Interrupt};
use crate::existing::{Existing, ExistingCopies};
use crate::plan::{ExistingPolicy, Names, Plan};
use crate::report::events::{Reporter, Step, count};
use crate::report::{Action, Mode, Report, TargetReport};
use crate::resolve::{self, Resolved, ResolvedTarget, SourceSummary};
use crate::wire::ConnectionResponse;
use futures::{StreamExt, stream};
use std::sync::Arc;
use tokio::sync::mpsc;
use uuid::Uuid;

/// Catalog reads queued at once; the client's pace decides how many are actually in flight.
const CATALOGS_AT_ONCE: usize = 512;

/// What the preview keeps, and hands on as it goes.
#[derive(Debug, Default)]
pub struct PreviewOptions {
    /// Keep each create body in its row: for `-v`, and for an `apply` that writes after the
    /// preview. Without it, 20,000 bodies are not held just to be counted.
    pub keep_bodies: bool,
    /// Hand each create body (with its row's index) on as soon as it is built, for an `apply`
    /// that writes while the preview still reads catalogs. Dropped when the preview ends.
    pub ready: Option<mpsc::UnboundedSender<Create>>,
    /// Once raised, no more catalogs are read: the rows still without a body stay `create`
    /// (never started, for an apply). Raised while resolving, the report is an error.
    pub interrupt: Option<Arc<Interrupt>>,
}

/// Resolves the plan against the server and decides what each target needs. A failure of the
/// whole run (template not found, API unreachable) is `report.error`; a failure of one target
/// is that target's row.
pub async fn preview(
    plan: &Plan,
    client: &Client,
    options: PreviewOptions,
    reporter: &Arc<dyn Reporter>,
) -> Report {
    let mut report = Report::new(&plan.file, Mode::Plan);
    let resolving = resolve::resolve(plan, client, reporter);
    let resolved = match &options.interrupt {
        Some(interrupt) => tokio::select! {
            resolved = resolving => resolved,
            () = interrupt.raised() => {
                report.error = Some("interrupted before anything was written".into());
                return report;
            }
        },
        None => resolving.await,
    };
    let resolved = match resolved {
        Ok(resolved) => resolved,
        Err(e) => {
            report.error = Some(e.to_string());
            return report;
        }
    };
    report.template = Some(TemplateConnection::from(&resolved.template));
    let blueprint = match Blueprint::new(&resolved.template) {
        Ok(b) => b,
        Err(problems) => {
            report.error = Some(problems.join("; "));
            return report;
        }
    };
    report.targets = decide(plan, &resolved, &blueprint, client, &options, reporter).await;
    report.tally();
    report
}

/// One row per resolved target: `unchanged` when its copy exists, `create` with the body to
/// post, or `error` with every reason.
async fn decide(
    plan: &Plan,
    resolved: &Resolved,
    blueprint: &Blueprint,
    client: &Client,
    options: &PreviewOptions,
    reporter: &Arc<dyn Reporter>,
) -> Vec<TargetReport> {
    let existing = ExistingCopies::new(&resolved.connections);
    let mut rows: Vec<TargetReport> = resolved
        .targets
        .iter()
        .map(|target| classify(plan, resolved, &existing, target))
        .collect();

    // Only the targets without a copy need their catalog and a create body. Each body is built
    // as soon as its catalog arrives, and the catalog dropped: 20,000 catalogs are never held.
    let to_build: Vec<(usize, Uuid)> = rows
        .iter()
        .enumerate()
        .filter(|(_, row)| row.action == Action::Create)
        .filter_map(|(i, row)| Some((i, row.source_id?)))
        .collect();
    let destination = resolved.template.destination_id;
    reporter.step_started(Step::Catalogs);
    let mut catalogs = stream::iter(to_build)
        .map(|(i, source)| async move { (i, client.streams(source, destination).await) })
        .buffer_unordered(CATALOGS_AT_ONCE);
    let mut read = 0;
    let stopped = async {
        match &options.interrupt {
            Some(interrupt) => interrupt.raised().await,
            None => std::future::pending().await,
        }
    };
    let mut stopped = std::pin::pin!(stopped);
    loop {
        let (i, catalog) = tokio::select! {
            next = catalogs.next() => match next {
                Some(next) => next,
                None => break,
            },
            () = &mut stopped => break,
        };
        read += 1;
        reporter.step_advanced(Step::Catalogs, 1);
        let (row, target) = (&mut rows[i], &resolved.targets[i]);
        let Ok(source) = &target.source else { continue };
        let built = catalog
            .map_err(|e| vec![format!("reading the source's catalog: {e}")])
            .and_then(|catalog| {
                copy::build_copy(
                    blueprint,
                    &names(source, resolved),
                    &target.overrides,
                    &catalog,
                    plan.missing_streams,
                )
            });
        match built {
            Ok(copy) => {
                row.warnings = copy.warnings;
                if options.keep_bodies {
                    row.body = Some(copy.body.clone());
                }
                if let Some(ready) = &options.ready {
                    // The receiver only goes away when the run is over.
                    let _ = ready.send(Create {
                        row: i,
                        workspace: resolved.template.workspace_id,
                        body: copy.body,
                    });
                }
            }
            Err(problems) => {
                row.action = Action::Error;
                row.error = Some(problems.join("; "));
            }
        }
    }
    reporter.step_finished(Step::Catalogs, &count(read, "catalog"));
    rows
}

/// A target's row before catalogs are read: `unchanged` (its copy exists), `error`, or
/// `create` still without its body.
fn classify(
    plan: &Plan,
    resolved: &Resolved,
    existing: &ExistingCopies<'_>,
    target: &ResolvedTarget,
) -> TargetReport {
    let mut row = TargetReport {
        source_id: None,
        source_name: None,
        name: None,
        action: Action::Error,
        outcome: None,
        connection_id: None,
        error: None,
        warnings: Vec::new(),
        entry: target.entry.clone(),
        body: None,
    };
    let source = match &target.source {
        Ok(source) => source,
        Err(message) => {
            row.error = Some(format!("{}: {message}", target.entry));
            return row;
        }
    };
    let destination = &resolved.destination;
    row.source_id = Some(source.id);
    row.source_name = Some(source.name.clone());
    let name = target.overrides.name_for(&names(source, resolved));
    match existing.find(source.id, destination.destination_id, &name) {
        Existing::One(copy) => {
            row.connection_id = Some(copy.connection_id);
            row.name = Some(copy.name.clone());
            match plan.existing {
                ExistingPolicy::Skip | ExistingPolicy::Update => row.action = Action::Unchanged,
                ExistingPolicy::Fail => {
                    row.error = Some(format!(
                        "a copy already exists: \"{}\" ({}), and the plan says existing: fail",
                        copy.name, copy.connection_id
                    ));
                }
            }
        }
        Existing::Ambiguous(candidates) => {
            row.error = Some(ambiguous(&candidates, &destination.name, &name));
            row.name = Some(name);
        }
        Existing::None => {
            row.name = Some(name);
            row.action = Action::Create;
        }
    }
    row
}

/// Why a target with several copies cannot be decided: how many there are, how many carry the
/// plan's name, and their ids.
pub fn ambiguous(candidates: &[&ConnectionResponse], destination: &str, name: &str) -> String {
    let named = candidates.iter().filter(|c| c.name == name).count();
    let which = match (named, candidates.len()) {
        (0, _) => format!("none named \"{name}\""),
        (2, 2) => format!("both named \"{name}\""),
        (n, all) if n == all => format!("all named \"{name}\""),
        (n, _) => format!("{n} of them named \"{name}\""),
    };
    let listed: Vec<String> = candidates
        .iter()
        .map(|c| format!("\"{}\" ({})", c.name, c.connection_id))
        .collect();
    format!(
        "{} connections already copy this source to {destination}, {which}: {}; delete or rename \
         all but one",
        candidates.len(),
        listed.join(", ")
    )
}

/// What a target's placeholders render to.
fn names<'a>(source: &'a SourceSummary, resolved: &'a Resolved) -> Names<'a> {
    Names {
        source_name: &source.name,
        source_id: source.id,
        source_type: &source.source_type,
        destination_name: &resolved.destination.name,
        destination_id: resolved.destination.destination_id,
        template_name: &resolved.template.name,
    }
}
