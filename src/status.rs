//! `replicate status` (SPEC §10): the fleet at a glance, read-only.
//!
//! resolve → build (without catalogs: the diff against the template as it is) → one jobs request
//! per copy (its last sync) → a [`StatusReport`]. The requests are the list pages plus at most one
//! `GET /jobs` per copy, under the client's concurrency cap; nothing is written.

use crate::build::{self, BuildOptions, Planned};
use crate::client::Client;
use crate::copy::{Blueprint, TemplateConnection};
use crate::diff::TargetPlan;
use crate::execute::Interrupt;
use crate::orphans::Orphan;
use crate::owner::OwnerTag;
use crate::plan::{ExistingPolicy, Glob, Plan};
use crate::report::escape::controls;
use crate::report::events::Reporter;
use crate::resolve;
use crate::select;
use crate::wire::{ConnectionStatus, JobResponse};
use futures::StreamExt;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;
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
}

/// Everything `status` found: its human and JSON renderings come from this.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    pub plan: String,
    pub template: Option<TemplateConnection>,
    pub targets: Vec<StatusRow>,
    pub orphans: Vec<Orphan>,
    pub summary: StatusSummary,
    /// A problem that stopped the whole run (template not found, API unreachable).
    pub error: Option<String>,
}

/// Reads the fleet's state. `globs` (`--target`) keep only the matching targets.
pub async fn status(
    plan: &Plan,
    client: &Client,
    globs: &[Glob],
    concurrency: usize,
    reporter: &Arc<dyn Reporter>,
) -> StatusReport {
    let mut report = StatusReport {
        plan: plan.file.display().to_string(),
        template: None,
        targets: Vec::new(),
        orphans: Vec::new(),
        summary: StatusSummary::default(),
        error: None,
    };
    let mut resolved = match resolve::resolve(plan, client, reporter, None).await {
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

    // One jobs request per copy, at most `concurrency` at once.
    let reads: Vec<(usize, Uuid)> = report
        .targets
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((i, r.connection_id?)))
        .collect();
    let jobs: Vec<(usize, Result<Vec<JobResponse>, String>)> = futures::stream::iter(reads)
        .map(|(i, id)| async move {
            (
                i,
                client
                    .sync_jobs(id, None, 1)
                    .await
                    .map_err(|e| e.to_string()),
            )
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    for (i, jobs) in jobs {
        let row = &mut report.targets[i];
        match jobs {
            Ok(jobs) => row.last_sync = jobs.into_iter().next(),
            Err(e) => row
                .warnings
                .push(format!("its last sync could not be read: {e}")),
        }
    }
    report.summary = tally(&report);
    report
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
