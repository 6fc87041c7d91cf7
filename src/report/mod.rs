//! The last stage: what a run found and did, as one value, and its renderings.
//!
//! A [`Report`] is built from the preview and, after `apply`, from the outcomes. The human text
//! (`human`) and the JSON document (`json`, SPEC §5) are pure functions of it; the terminal
//! progress (`progress`) listens to [`events::Reporter`] while the run works; `escape` keeps what
//! the server and the plan say from driving the terminal.

pub mod changes;
pub mod escape;
pub mod events;
pub mod human;
pub mod progress;
pub mod stdout;

use crate::build::Planned;
use crate::copy::TemplateConnection;
use crate::diff::{Change, TargetPlan};
use crate::duplicates::Duplicate;
use crate::execute::TargetOutcome;
use crate::orphans::{Orphan, Prune};
use crate::sync::SyncOutcome;
use crate::wire::JobStatus;
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use uuid::Uuid;

/// `value` as pretty JSON with every control character escaped: serde escapes C0, and DEL and
/// C1 (U+009B is a terminal's CSI) are escaped here too.
pub fn json(value: &impl Serialize) -> String {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(
        &mut out,
        EscapingFormatter(serde_json::ser::PrettyFormatter::new()),
    );
    // Serializing plain owned data into memory cannot fail, and JSON is UTF-8.
    if value.serialize(&mut serializer).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Whether the run only looked, or also wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Plan,
    Apply,
}

/// Whether the run behind a report is still going: a report file says `in_progress` from the
/// start of an `apply` (so an older report never passes for this run's), then how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    InProgress,
    Complete,
    Interrupted,
}

/// What the plan would do for a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Unchanged,
    Delete,
    Error,
}

/// What apply did for a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
    Deleted,
    Failed,
    NotRun,
}

/// One target: one source, the copy it should have, and what happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetReport {
    /// Null when the target entry could not be resolved to a source.
    pub source_id: Option<Uuid>,
    pub source_name: Option<String>,
    /// The copy's rendered name.
    pub name: Option<String>,
    pub action: Action,
    pub outcome: Option<Outcome>,
    /// The copy's id once known (it exists, or was created).
    pub connection_id: Option<Uuid>,
    /// A `delete` row of an owned duplicate: the id of the copy it duplicates, which stays.
    pub duplicate_of: Option<Uuid>,
    pub error: Option<String>,
    pub warnings: Vec<String>,
    /// How the copy differs from the plan: what an update writes, or, with `existing: skip`,
    /// the drift it leaves (SPEC §8).
    pub changes: Vec<Change>,
    /// The first sync `apply --sync` started for the copy (SPEC §10).
    pub sync_job_id: Option<i64>,
    /// How that sync ended, when `--wait` followed it.
    pub sync_status: Option<JobStatus>,
    /// The YAML path of the plan entry that selected this target (`targets[2]`).
    #[serde(skip)]
    pub entry: String,
    /// The sync could not be started, or ended other than `succeeded`: the target failed.
    #[serde(skip)]
    pub sync_failed: bool,
}

impl TargetReport {
    /// The row of a decided target, before anything is written.
    pub fn planned(planned: &Planned) -> TargetReport {
        let mut row = TargetReport {
            source_id: planned.source.as_ref().map(|s| s.id),
            source_name: planned.source.as_ref().map(|s| s.name.clone()),
            name: planned.name.clone(),
            action: Action::Error,
            outcome: None,
            connection_id: None,
            duplicate_of: None,
            error: None,
            warnings: planned.warnings.clone(),
            changes: planned.plan.changes().to_vec(),
            sync_job_id: None,
            sync_status: None,
            entry: planned.entry.clone(),
            sync_failed: false,
        };
        match &planned.plan {
            TargetPlan::Unchanged { connection_id, .. } => {
                row.action = Action::Unchanged;
                row.connection_id = Some(*connection_id);
            }
            TargetPlan::Create { .. } => row.action = Action::Create,
            TargetPlan::Update {
                connection_id,
                drift,
                ..
            } => {
                row.action = Action::Update;
                row.connection_id = Some(*connection_id);
                if drift.resets_state() {
                    row.warnings
                        .extend(drift.changes.iter().filter(|c| c.resets_state).map(|c| {
                            format!(
                                "{}: the change resets the stream's sync state (a full re-sync)",
                                c.field
                            )
                        }));
                }
            }
            TargetPlan::Delete {
                connection_id,
                duplicate_of,
            } => {
                row.action = Action::Delete;
                row.connection_id = Some(*connection_id);
                row.duplicate_of = *duplicate_of;
            }
            TargetPlan::Invalid(error) => row.error = Some(error.to_string()),
        }
        row
    }

    /// Puts a first sync's outcome into the row.
    pub fn record_sync(&mut self, outcome: &SyncOutcome) {
        self.sync_job_id = outcome.job_id();
        match outcome {
            SyncOutcome::Started(_) => {}
            SyncOutcome::StillRunning(id) => self.warnings.push(format!(
                "its first sync (job {id}) was still running when the run stopped waiting; it \
                 goes on in Airbyte"
            )),
            SyncOutcome::Ended(job) => {
                self.sync_status = Some(job.status);
                if job.status != JobStatus::Succeeded {
                    self.sync_failed = true;
                    self.error = Some(format!(
                        "its first sync (job {}) ended {}",
                        job.job_id,
                        job.status.as_str()
                    ));
                }
            }
            SyncOutcome::NotStarted(why) => {
                self.sync_failed = true;
                self.error = Some(why.clone());
            }
        }
    }

    /// Whether the copy differs from the plan and is left so (`existing: skip`).
    pub fn drifted(&self) -> bool {
        self.action == Action::Unchanged && !self.changes.is_empty()
    }

    /// Puts a write's outcome into the row.
    pub fn record(&mut self, outcome: &TargetOutcome) {
        match outcome {
            TargetOutcome::Created(id) => {
                self.outcome = Some(Outcome::Created);
                self.connection_id = Some(*id);
            }
            TargetOutcome::Updated(id) => {
                self.outcome = Some(Outcome::Updated);
                self.connection_id = Some(*id);
            }
            TargetOutcome::Deleted(id) => {
                self.outcome = Some(Outcome::Deleted);
                self.connection_id = Some(*id);
            }
            TargetOutcome::Failed(error) => {
                self.outcome = Some(Outcome::Failed);
                self.error = Some(error.to_string());
            }
        }
    }
}

/// The counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub unchanged: usize,
    pub delete: usize,
    pub error: usize,
    /// Copies that differ from the plan and are left so (`existing: skip`).
    pub drifted: usize,
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
    pub failed: usize,
    /// First syncs started (`apply --sync`), and those that failed to start or ended badly.
    pub synced: usize,
    pub sync_failed: usize,
    /// Copies the plan owns whose source is no longer a target (SPEC §9), deleted or not.
    pub orphaned: usize,
    /// Owned copies of a target besides its oldest one (`duplicates`), deleted or not.
    pub duplicates: usize,
    /// Targets left out by `--target`: not read, not written.
    pub untargeted: usize,
}

/// Everything a run found and did: the source of the human output and the JSON document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub plan: String,
    pub mode: Mode,
    pub state: State,
    pub template: Option<TemplateConnection>,
    pub summary: Summary,
    pub targets: Vec<TargetReport>,
    /// The owner tag of the plan's copies (SPEC §9).
    pub owner: Option<String>,
    /// What the run does with `orphans`: `off` (listed), `on` (`delete` rows), `targeted`
    /// (listed: a `--target` run never prunes).
    pub prune: Prune,
    /// The plan's owned orphans, whatever is done with them.
    pub orphans: Vec<Orphan>,
    /// The owned duplicates of the run's targets, whatever is done with them (`prune` says:
    /// `on` makes them `delete` rows; otherwise they are left, and the run fails).
    pub duplicates: Vec<Duplicate>,
    /// What concerns the whole run but did not stop it (the template deleted meanwhile).
    pub warnings: Vec<String>,
    /// The problems that stopped the whole run before any target (plan invalid, template not
    /// found, API unreachable), one per entry, with their hints; empty when none did.
    pub errors: Vec<String>,
}

impl Report {
    pub fn new(plan: &Path, mode: Mode) -> Report {
        Report {
            plan: plan.display().to_string(),
            mode,
            state: State::InProgress,
            template: None,
            summary: Summary::default(),
            targets: Vec::new(),
            owner: None,
            prune: Prune::Off,
            orphans: Vec::new(),
            duplicates: Vec::new(),
            warnings: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// After an apply: every row's outcome from the writes that ended (`outcomes`, by row);
    /// rows that write nothing are `unchanged` or `failed`, and writes never started `not_run`.
    pub fn record(&mut self, outcomes: &[(usize, TargetOutcome)]) {
        self.mode = Mode::Apply;
        for row in &mut self.targets {
            row.outcome = Some(match (row.action, row.outcome) {
                // A write never started, or a target the run stopped before deciding.
                (Action::Create | Action::Update | Action::Delete, _)
                | (_, Some(Outcome::NotRun)) => Outcome::NotRun,
                (Action::Unchanged, _) => Outcome::Unchanged,
                (Action::Error, _) => Outcome::Failed,
            });
        }
        for (i, outcome) in outcomes {
            if let Some(row) = self.targets.get_mut(*i) {
                row.record(outcome);
            }
        }
        self.tally();
    }

    /// Recounts the summary from the targets, the orphans and the duplicates; `untargeted` is
    /// kept as set.
    pub fn tally(&mut self) {
        let mut s = Summary {
            orphaned: self.orphans.len(),
            duplicates: self.duplicates.len(),
            untargeted: self.summary.untargeted,
            ..Summary::default()
        };
        for t in &self.targets {
            match t.action {
                Action::Create => s.create += 1,
                Action::Update => s.update += 1,
                Action::Unchanged => s.unchanged += 1,
                Action::Delete => s.delete += 1,
                Action::Error => s.error += 1,
            }
            if t.drifted() {
                s.drifted += 1;
            }
            if t.sync_job_id.is_some() {
                s.synced += 1;
            }
            if t.sync_failed {
                s.sync_failed += 1;
            }
            match t.outcome {
                Some(Outcome::Created) => s.created += 1,
                Some(Outcome::Updated) => s.updated += 1,
                Some(Outcome::Deleted) => s.deleted += 1,
                Some(Outcome::Failed) => s.failed += 1,
                Some(Outcome::Unchanged | Outcome::NotRun) | None => {}
            }
        }
        self.summary = s;
    }

    /// Whether anything went wrong: the run, a target's preview, or a target's write; or
    /// owned duplicates are left in place (see [`Report::duplicates_left`]).
    pub fn has_failures(&self) -> bool {
        !self.errors.is_empty()
            || self.duplicates_left()
            || self.targets.iter().any(|t| {
                t.sync_failed
                    || t.action == Action::Error
                    || matches!(t.outcome, Some(Outcome::Failed | Outcome::NotRun))
            })
    }

    /// Whether the run leaves owned duplicates in place (prune off, or a `--target` run). It
    /// then fails, `plan` as well as `apply`: a source copied twice syncs twice, and `plan`
    /// says what `apply` would end with (as for a target in error), so a drift check in CI
    /// fails too. Nothing is deleted unless prune says so.
    pub fn duplicates_left(&self) -> bool {
        self.prune != Prune::On && !self.duplicates.is_empty()
    }

    /// Whether applying would change anything.
    pub fn has_changes(&self) -> bool {
        self.targets
            .iter()
            .any(|t| matches!(t.action, Action::Create | Action::Update | Action::Delete))
    }

    /// The JSON document of SPEC §5, pretty-printed, with every control character escaped:
    /// serde escapes C0, and DEL and C1 (U+009B is a terminal's CSI) are escaped here too.
    pub fn to_json(&self) -> String {
        json(self)
    }

    /// Writes the JSON document to `path` atomically: a temporary file beside it, then a rename,
    /// so a reader never sees half a report.
    pub fn write_atomically(&self, path: &Path) -> std::io::Result<()> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let file_name = path
            .file_name()
            .map_or_else(|| "report".into(), |n| n.to_string_lossy().into_owned());
        let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
        let result = (|| {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(self.to_json().as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

/// serde's pretty JSON, with DEL and C1 control characters in strings written as `\u00XX`.
struct EscapingFormatter<'a>(serde_json::ser::PrettyFormatter<'a>);

impl serde_json::ser::Formatter for EscapingFormatter<'_> {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if escape::is_hidden(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                write!(writer, "\\u{:04x}", u32::from(c))?;
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_document_escapes_every_control_character() {
        let mut report = Report::new(Path::new("p.yaml"), Mode::Plan);
        report.errors = vec!["a\u{1b}[2J b\u{7f} c\u{9b}31m d\n é → ok".into()];
        let json = report.to_json();
        assert!(!json.chars().any(escape::is_hidden), "{json:?}");
        assert!(
            json.contains(
                r#""errors": [
    "a\u001b[2J b\u007f c\u009b31m d\n é → ok"
  ]"#
            ),
            "{json}"
        );
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            back["errors"][0].as_str(),
            report.errors.first().map(String::as_str)
        );
        assert_eq!(back["state"], "in_progress");
    }
}
