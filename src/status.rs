//! `replicate status` (SPEC §10): the fleet at a glance, read-only.
//!
//! resolve → build (without catalogs: the diff against the template as it is) → a
//! [`StatusReport`], with one jobs request per copy (its last sync) overlapped with both (see
//! [`status`]). The requests are the list pages plus at most one `GET /jobs` per copy, under the
//! client's concurrency cap; nothing is written.

use crate::build::{self, BuildOptions, Planned};
use crate::client::Client;
use crate::copy::{Blueprint, TemplateConnection};
use crate::diff::TargetPlan;
use crate::duplicates::Duplicate;
use crate::execute::Interrupt;
use crate::orphans::Orphan;
use crate::owner::{self, OwnerTag};
use crate::plan::{ExistingPolicy, Glob, Plan, Reference};
use crate::report::escape::controls;
use crate::report::events::Reporter;
use crate::resolve;
use crate::select;
use crate::wire::{ConnectionResponse, ConnectionStatus, JobResponse};
use futures::StreamExt;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::sync::Arc;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use uuid::Uuid;

/// Where a target's copy stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// The copy matches the plan.
    InLine,
    /// The copy differs from the plan (`changes` say how).
    Drifted,
    /// No copy yet.
    Missing,
    /// The target cannot be planned (its reason in `error`).
    Error,
}

/// One target's row.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusRow {
    pub source_id: Option<Uuid>,
    pub source_name: Option<String>,
    pub name: Option<String>,
    pub connection_id: Option<Uuid>,
    pub state: State,
    /// The top-level fields that differ, for a drifted copy.
    pub drift: Vec<String>,
    /// The copy's status in Airbyte (`active`, `inactive`, `locked`).
    pub status: Option<ConnectionStatus>,
    /// The copy's most recent sync job, if it ever had one.
    pub last_sync: Option<JobResponse>,
    pub error: Option<String>,
    pub warnings: Vec<String>,
}

/// The counts of a status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusSummary {
    pub targets: usize,
    pub in_line: usize,
    pub drifted: usize,
    pub missing: usize,
    pub error: usize,
    pub synced_ok: usize,
    pub sync_failed: usize,
    pub never_synced: usize,
    pub orphaned: usize,
    /// Owned copies of a target beyond its oldest one.
    pub duplicates: usize,
}

/// Everything `status` found: its human and JSON renderings come from this.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    pub plan: String,
    pub template: Option<TemplateConnection>,
    pub targets: Vec<StatusRow>,
    pub orphans: Vec<Orphan>,
    /// The targets' owned duplicates (the oldest owned copy is the target's; these are the
    /// others), of the targets shown.
    pub duplicates: Vec<Duplicate>,
    pub summary: StatusSummary,
    /// A problem that stopped the whole run (template not found, API unreachable).
    pub error: Option<String>,
}

/// Reads the fleet's state. `globs` (`--target`) keep only the matching targets.
///
/// Each copy's last sync is read as soon as the copy is known, overlapped with the reads still
/// going on: a copy the plan owns from the moment its page of connections is read
/// ([`EarlyCopies`]), while the other pages are still being read; any other copy (made by hand,
/// not adopted yet) once every target is decided. Every connection is read once, at most
/// `concurrency` at a time (the client's cap bounds all requests together).
pub async fn status(
    plan: &Plan,
    client: &Client,
    globs: &[Glob],
    concurrency: usize,
    reporter: &Arc<dyn Reporter>,
) -> StatusReport {
    let (found, copies) = tokio::sync::mpsc::unbounded_channel();
    let deciding = async move {
        let report = decide(plan, client, globs, reporter, &found).await;
        for id in report.targets.iter().filter_map(|r| r.connection_id) {
            // The reader lives until every copy is sent (`found` is dropped here).
            let _ = found.send(id);
        }
        report
    };
    let (mut report, mut syncs) = tokio::join!(deciding, last_syncs(copies, client, concurrency));
    for row in &mut report.targets {
        match row.connection_id.and_then(|id| syncs.remove(&id)) {
            Some(Ok(job)) => row.last_sync = job,
            Some(Err(e)) => row
                .warnings
                .push(format!("its last sync could not be read: {e}")),
            None => {}
        }
    }
    report.summary = tally(&report);
    report
}

/// Resolve and build (without catalogs): the rows, without their last syncs. Sends on `found`
/// the copies the plan owns as resolve lists them, unless `--target` narrows the targets (most
/// of them would be read for nothing).
async fn decide(
    plan: &Plan,
    client: &Client,
    globs: &[Glob],
    reporter: &Arc<dyn Reporter>,
    found: &UnboundedSender<Uuid>,
) -> StatusReport {
    let mut report = StatusReport {
        plan: plan.file.display().to_string(),
        template: None,
        targets: Vec::new(),
        orphans: Vec::new(),
        duplicates: Vec::new(),
        summary: StatusSummary::default(),
        error: None,
    };
    let early = EarlyCopies {
        template: &plan.template,
        owner: &plan.owner,
        found,
        seen: std::sync::Mutex::new(Seen::default()),
    };
    let on_page = |page: &[ConnectionResponse]| {
        if globs.is_empty() {
            early.page(page);
        }
    };
    let mut resolved = match resolve::resolve(plan, client, reporter, None, &on_page).await {
        Ok(resolved) => resolved,
        Err(e) => {
            report.error = Some(e.to_string());
            return report;
        }
    };
    report.template = Some(TemplateConnection::from(&resolved.template));
    report.orphans.clone_from(&resolved.orphans);
    let owner = OwnerTag::new(
        &plan.owner,
        resolved.template.workspace_id,
        resolved.owner_tag.clone(),
    );
    let blueprint = match Blueprint::new(&resolved.template) {
        Ok(blueprint) => blueprint.with_owner(owner.desired()),
        Err(problems) => {
            report.error = Some(problems.join("; "));
            return report;
        }
    };
    let (kept, _) = select::narrow(std::mem::take(&mut resolved.targets), globs);
    resolved.targets = kept;
    let shown: std::collections::BTreeSet<Uuid> = resolved
        .targets
        .iter()
        .filter_map(|t| t.source.as_ref().ok().map(|s| s.id))
        .collect();
    report.duplicates = std::mem::take(&mut resolved.duplicates)
        .into_iter()
        .filter(|d| shown.contains(&d.copy.source_id))
        .collect();

    let mut planned: Vec<Option<Planned>> = vec![None; resolved.targets.len()];
    let options = BuildOptions {
        existing: ExistingPolicy::Update,
        missing_streams: plan.missing_streams,
        read_catalogs: false,
    };
    let never = Interrupt::default();
    build::build(
        &resolved,
        &blueprint,
        options,
        client,
        &never,
        reporter,
        |i, p| planned[i] = Some(p),
    )
    .await;
    let copies: HashMap<Uuid, ConnectionStatus> = resolved
        .connections
        .iter()
        .map(|c| (c.connection_id, c.status))
        .collect();
    report.targets = planned
        .into_iter()
        .flatten()
        .map(|p| row(p, &copies))
        .collect();
    report
}

/// The copies the plan owns, picked from the pages of connections as resolve reads them: the
/// connections with the plan's owner tag, the template's workspace and destination. The
/// template is the first live connection the plan names on those pages (resolve alone decides
/// whether the name is ambiguous: this only reads last syncs early); owned connections met
/// before it wait for it. An owned copy whose source is no longer a target (an orphan) is read
/// too, before anyone can know it is one.
struct EarlyCopies<'a> {
    /// The plan's `template` and `owner`.
    template: &'a Reference,
    owner: &'a str,
    found: &'a UnboundedSender<Uuid>,
    seen: std::sync::Mutex<Seen>,
}

/// What [`EarlyCopies`] has seen so far.
#[derive(Default)]
struct Seen {
    /// The template's id, workspace and destination, once met.
    template: Option<(Uuid, Uuid, Uuid)>,
    /// Owned connections met before the template: id, workspace, destination.
    waiting: Vec<(Uuid, Uuid, Uuid)>,
}

impl EarlyCopies<'_> {
    fn page(&self, page: &[ConnectionResponse]) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        let live = page
            .iter()
            .filter(|c| c.status != ConnectionStatus::Deprecated);
        if seen.template.is_none() {
            let named = |c: &&ConnectionResponse| match self.template {
                Reference::Id(id) => c.connection_id == *id,
                Reference::Name(name) => c.name == *name,
            };
            if let Some(t) = live.clone().find(named) {
                seen.template = Some((t.connection_id, t.workspace_id, t.destination_id));
                for owned in std::mem::take(&mut seen.waiting) {
                    self.send(&seen, owned);
                }
            }
        }
        for c in live.filter(|c| owner::find(&c.tags, c.workspace_id, self.owner).is_some()) {
            let owned = (c.connection_id, c.workspace_id, c.destination_id);
            if seen.template.is_some() {
                self.send(&seen, owned);
            } else {
                seen.waiting.push(owned);
            }
        }
    }

    /// Sends an owned connection on, if it is a copy of the template.
    fn send(&self, seen: &Seen, (id, workspace, destination): (Uuid, Uuid, Uuid)) {
        if let Some((template, in_workspace, to)) = seen.template {
            if id != template && workspace == in_workspace && destination == to {
                // The reader lives until every copy is sent.
                let _ = self.found.send(id);
            }
        }
    }
}

/// The last sync job of every connection `copies` yields, each read once (`GET /jobs`, the
/// newest sync), at most `concurrency` at once, as they come; until the sender is dropped.
async fn last_syncs(
    copies: UnboundedReceiver<Uuid>,
    client: &Client,
    concurrency: usize,
) -> HashMap<Uuid, Result<Option<JobResponse>, String>> {
    let mut seen = HashSet::new();
    futures::stream::unfold(copies, |mut copies| async move {
        copies.recv().await.map(|id| (id, copies))
    })
    .filter(move |id| std::future::ready(seen.insert(*id)))
    .map(|id| async move {
        let last = client
            .sync_jobs(id, None, 1)
            .await
            .map(|jobs| jobs.into_iter().next())
            .map_err(|e| e.to_string());
        (id, last)
    })
    .buffer_unordered(concurrency.max(1))
    .collect()
    .await
}

/// A decided target as a status row.
fn row(planned: Planned, copies: &HashMap<Uuid, ConnectionStatus>) -> StatusRow {
    let mut row = StatusRow {
        source_id: planned.source.as_ref().map(|s| s.id),
        source_name: planned.source.as_ref().map(|s| s.name.clone()),
        name: planned.name.clone(),
        connection_id: None,
        state: State::Error,
        drift: Vec::new(),
        status: None,
        last_sync: None,
        error: None,
        warnings: planned.warnings,
    };
    match planned.plan {
        TargetPlan::Unchanged { connection_id, .. } => {
            row.connection_id = Some(connection_id);
            row.state = State::InLine;
        }
        TargetPlan::Update {
            connection_id,
            drift,
            ..
        } => {
            row.connection_id = Some(connection_id);
            row.state = State::Drifted;
            row.drift = drift.fields().iter().map(ToString::to_string).collect();
        }
        TargetPlan::Create { .. } => row.state = State::Missing,
        TargetPlan::Delete { connection_id, .. } => row.connection_id = Some(connection_id),
        TargetPlan::Invalid(e) => row.error = Some(e.to_string()),
    }
    row.status = row.connection_id.and_then(|id| copies.get(&id).copied());
    row
}

fn tally(report: &StatusReport) -> StatusSummary {
    let mut s = StatusSummary {
        targets: report.targets.len(),
        orphaned: report.orphans.len(),
        duplicates: report.duplicates.len(),
        ..StatusSummary::default()
    };
    for row in &report.targets {
        match row.state {
            State::InLine => s.in_line += 1,
            State::Drifted => s.drifted += 1,
            State::Missing => s.missing += 1,
            State::Error => s.error += 1,
        }
        if row.connection_id.is_some() {
            match &row.last_sync {
                None => s.never_synced += 1,
                Some(job) if job.status == crate::wire::JobStatus::Succeeded => s.synced_ok += 1,
                Some(job) if job.status.is_terminal() => s.sync_failed += 1,
                Some(_) => {}
            }
        }
    }
    s
}

impl StatusReport {
    /// Whether anything is wrong enough to exit 1: the run failed, a target cannot be planned.
    pub fn has_failures(&self) -> bool {
        self.error.is_some() || self.summary.error > 0
    }

    /// The JSON document, with stable keys.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// One line per target, the orphans, then the summary line.
    pub fn human(&self) -> String {
        let mut out = String::new();
        if let Some(t) = &self.template {
            let _ = writeln!(out, "Template: {} ({})", controls(&t.name), t.connection_id);
        }
        let label = |r: &StatusRow| controls(r.source_name.as_deref().unwrap_or("?")).into_owned();
        let width = self
            .targets
            .iter()
            .map(|r| label(r).chars().count())
            .max()
            .unwrap_or(0);
        for r in &self.targets {
            let state = match r.state {
                State::InLine => "in line".to_string(),
                State::Drifted => format!("drifted: {}", r.drift.join(", ")),
                State::Missing => "no copy".to_string(),
                State::Error => format!("error: {}", r.error.as_deref().unwrap_or("")),
            };
            let label = label(r);
            let pad = " ".repeat(width.saturating_sub(label.chars().count()));
            let mut line = format!("{label}{pad}  {}", controls(&state));
            if let Some(status) = r.status {
                let _ = write!(line, "  {}", serde_plain(status));
            }
            if r.connection_id.is_some() {
                let _ = write!(line, "  last sync: {}", last_sync(r.last_sync.as_ref()));
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        if !self.orphans.is_empty() {
            let _ = writeln!(
                out,
                "{} owned by this plan {} no longer in it:",
                crate::report::events::count(self.orphans.len(), "copy"),
                if self.orphans.len() == 1 { "is" } else { "are" }
            );
            for o in &self.orphans {
                let _ = writeln!(out, "    {} ({})", controls(&o.name), o.connection_id);
            }
        }
        if !self.duplicates.is_empty() {
            let _ = writeln!(
                out,
                "{} owned by this plan (each source's oldest is its copy; `apply --prune` \
                 deletes the others):",
                crate::duplicates::counted(self.duplicates.len())
            );
            for d in &self.duplicates {
                let _ = writeln!(
                    out,
                    "    {} ({}), a duplicate of {}",
                    controls(&d.copy.name),
                    d.copy.connection_id,
                    d.duplicate_of
                );
            }
        }
        let s = &self.summary;
        let _ = writeln!(
            out,
            "Status: {} targets: {} in line, {} drifted, {} without a copy, {}; last syncs: {} \
             succeeded, {} failed, {} never synced.",
            s.targets,
            s.in_line,
            s.drifted,
            s.missing,
            crate::report::events::count(s.error, "error"),
            s.synced_ok,
            s.sync_failed,
            s.never_synced
        );
        out
    }
}

fn serde_plain(status: ConnectionStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `succeeded 2026-01-01T00:00Z (PT2S, 1200 rows, 3400 bytes)`, `running since …`, `never`.
fn last_sync(job: Option<&JobResponse>) -> String {
    let Some(job) = job else {
        return "never".into();
    };
    let mut text = format!("{} {}", job.status.as_str(), controls(&job.start_time));
    let mut details = Vec::new();
    if let Some(d) = &job.duration {
        details.push(controls(d).into_owned());
    }
    if let Some(rows) = job.rows_synced {
        details.push(format!("{rows} rows"));
    }
    if let Some(bytes) = job.bytes_synced {
        details.push(format!("{bytes} bytes"));
    }
    if !details.is_empty() {
        let _ = write!(text, " ({})", details.join(", "));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const OWNER: &str = "replicate:bulk";

    /// A live connection in workspace 1 to destination `to`, tagged `tags` (by name).
    fn connection(id: u128, name: &str, to: u128, tags: &[&str]) -> ConnectionResponse {
        let tags: Vec<_> = tags
            .iter()
            .map(|t| {
                json!({"tagId": Uuid::from_u128(7), "workspaceId": Uuid::from_u128(1),
                            "name": t, "color": "000000"})
            })
            .collect();
        serde_json::from_value(json!({
            "connectionId": Uuid::from_u128(id), "name": name,
            "sourceId": Uuid::from_u128(100 + id), "destinationId": Uuid::from_u128(to),
            "workspaceId": Uuid::from_u128(1), "status": "active",
            "schedule": {"scheduleType": "manual"}, "configurations": {"streams": []},
            "createdAt": 0, "tags": tags
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The ids `EarlyCopies` sends for these pages, in order.
    fn early(template: &Reference, pages: &[Vec<ConnectionResponse>]) -> Vec<u128> {
        let (found, mut sent) = tokio::sync::mpsc::unbounded_channel();
        let early = EarlyCopies {
            template,
            owner: OWNER,
            found: &found,
            seen: std::sync::Mutex::new(Seen::default()),
        };
        for page in pages {
            early.page(page);
        }
        let mut ids = Vec::new();
        while let Ok(id) = sent.try_recv() {
            ids.push(id.as_u128());
        }
        ids
    }

    #[test]
    fn owned_copies_of_the_template_are_sent_once_it_is_met() {
        let mut deleted = connection(5, "gone", 9, &[OWNER]);
        deleted.status = ConnectionStatus::Deprecated;
        let mut elsewhere = connection(6, "other workspace", 9, &[OWNER]);
        elsewhere.workspace_id = Uuid::from_u128(2);
        let pages = [
            vec![
                connection(2, "copy 2", 9, &[OWNER]),
                connection(3, "by hand", 9, &[]),
                connection(4, "other warehouse", 8, &[OWNER]),
                deleted,
                elsewhere,
            ],
            vec![
                connection(10, "copy 10", 9, &["replicate:other", OWNER]),
                connection(1, "the template", 9, &[OWNER]),
            ],
        ];
        let by_name = Reference::Name("the template".into());
        assert_eq!(early(&by_name, &pages), [2, 10]);
        let by_id = Reference::Id(Uuid::from_u128(1));
        assert_eq!(early(&by_id, &pages), [2, 10]);
        // A template never met: nothing is read early.
        let missing = Reference::Name("nowhere".into());
        assert_eq!(early(&missing, &pages), Vec::<u128>::new());
    }
}
