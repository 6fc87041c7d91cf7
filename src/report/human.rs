//! The human rendering of a [`Report`]: the preview, the summary line, the failures.
//!
//! Pure functions from the report to text, so they are snapshot-tested without a terminal.
//! Colour is a parameter: the caller decides it (terminal, `NO_COLOR`). Every value from the
//! server or the plan goes through [`escape::controls`]: the only escape sequences in the output
//! are the colours written here.

use super::changes;
use super::escape::controls;
use super::events::count;
use super::{Action, Mode, Outcome, Report, TargetReport};
use crate::duplicates;
use crate::orphans::{OwnedCopy, Prune};
use std::collections::BTreeMap;
use std::fmt::Write;

/// How to render.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub color: bool,
    /// `-v`: show the request bodies under each `+` and `~` line.
    pub show_bodies: bool,
    /// `-q`: leave out the `=` rows (unchanged targets); errors, changes and the summary stay.
    pub quiet: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// One line per target, with its symbol (and under a `~` one line per change), then the `Plan:`
/// summary line. `bodies` are the request bodies by row, shown with `-v`.
pub fn preview(
    report: &Report,
    bodies: &BTreeMap<usize, serde_json::Value>,
    style: Style,
) -> String {
    let mut out = String::new();
    if let Some(t) = &report.template {
        let _ = writeln!(out, "Template: {} ({})", controls(&t.name), t.connection_id);
    }
    let width = report
        .targets
        .iter()
        .map(|t| controls(label(t)).chars().count())
        .max()
        .unwrap_or(0);
    for (row, target) in report.targets.iter().enumerate() {
        if style.quiet && target.action == Action::Unchanged {
            continue;
        }
        let (symbol, code) = match target.action {
            Action::Create => ("+", "32"),
            Action::Update => ("~", "33"),
            Action::Unchanged => ("=", "2"),
            Action::Delete => ("-", "31"),
            Action::Error => ("!", "31"),
        };
        let label = controls(label(target));
        let pad = " ".repeat(width.saturating_sub(label.chars().count()));
        let detail = match target.action {
            Action::Error => target.error.clone().unwrap_or_default(),
            Action::Unchanged if target.drifted() => {
                let fields: Vec<&str> = target
                    .changes
                    .iter()
                    .map(|c| c.field.split('.').next().unwrap_or(&c.field))
                    .fold(Vec::new(), |mut seen, f| {
                        if !seen.contains(&f) {
                            seen.push(f);
                        }
                        seen
                    });
                format!("{} (drifted: {})", name(target), fields.join(", "))
            }
            Action::Delete => format!(
                "{} ({}; owned, {})",
                name(target),
                target
                    .connection_id
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
                match target.duplicate_of {
                    Some(kept) => format!("a duplicate of {kept}"),
                    None => "no longer a target".into(),
                }
            ),
            Action::Unchanged | Action::Update => match target.connection_id {
                Some(id) if target.action != Action::Update => {
                    format!("{} (exists: {id})", name(target))
                }
                _ => name(target).to_string(),
            },
            Action::Create => name(target).to_string(),
        };
        let _ = writeln!(
            out,
            "{} {label}{pad}  {}",
            style.paint(code, symbol),
            controls(&detail)
        );
        if target.action == Action::Update {
            for change in &target.changes {
                let _ = writeln!(out, "    {}", controls(&changes::line(change)));
            }
        }
        for warning in &target.warnings {
            let _ = writeln!(
                out,
                "    {} {}",
                style.paint("33", "warning:"),
                controls(warning)
            );
        }
        if style.show_bodies {
            if let Some(body) = bodies.get(&row) {
                let json = serde_json::to_string_pretty(body).unwrap_or_default();
                for line in json.lines() {
                    let _ = writeln!(out, "    {}", controls(line));
                }
            }
        }
    }
    left_in_place(&mut out, report);
    out.push_str(&plan_line(report));
    // An apply says them under its own summary.
    if report.mode == Mode::Plan {
        warnings(&mut out, report, style);
    }
    out
}

/// The run's warnings (a stale lease taken over, a lease held by another run, …).
fn warnings(out: &mut String, report: &Report, style: Style) {
    for warning in &report.warnings {
        let _ = writeln!(
            out,
            "{} {}",
            style.paint("33", "warning:"),
            controls(warning)
        );
    }
}

/// `Plan: 4 to create, 0 to update, 1 unchanged, 1 error.`
fn plan_line(report: &Report) -> String {
    let s = &report.summary;
    // Deletes, drift and targeting are named only when there are some, so a plain fleet reads
    // as before.
    let deletes = if s.delete > 0 {
        format!(", {} to delete", s.delete)
    } else {
        String::new()
    };
    let drifted = if s.drifted > 0 {
        format!(" ({} drifted)", s.drifted)
    } else {
        String::new()
    };
    let mut tail = if s.untargeted > 0 {
        format!("; {} left out by --target", count(s.untargeted, "target"))
    } else {
        String::new()
    };
    // Why a plan without errors fails: the duplicates listed above it stay.
    if report.duplicates_left() {
        let _ = write!(tail, "; {} left in place", count(s.duplicates, "duplicate"));
    }
    format!(
        "Plan: {} to create, {} to update{deletes}, {} unchanged{drifted}, {}{tail}.\n",
        s.create,
        s.update,
        s.unchanged,
        count(s.error, "error")
    )
}

/// The owned orphans and duplicates a run leaves in place, under the rows (SPEC §9); pruned
/// ones are rows.
fn left_in_place(out: &mut String, report: &Report) {
    let why = match report.prune {
        Prune::On => return,
        Prune::Off => "prune: true deletes them",
        Prune::Targeted => "not pruned: a --target run never prunes",
    };
    let n = report.orphans.len();
    let (copies, are) = if n == 1 {
        ("1 copy".to_string(), "is")
    } else {
        (format!("{n} copies"), "are")
    };
    let orphans = report.orphans.iter().map(|o| (o, String::new()));
    let heading = format!("{copies} owned by this plan {are} no longer in it ({why}):");
    paragraph(out, &heading, orphans);
    let duplicates = report
        .duplicates
        .iter()
        .map(|d| (&d.copy, format!("; a duplicate of {}", d.duplicate_of)));
    let heading = format!(
        "{} owned by this plan ({why}):",
        duplicates::counted(report.duplicates.len())
    );
    paragraph(out, &heading, duplicates);
}

/// A paragraph of owned copies left in place: `heading`, then one line per copy, with what
/// follows its id in the parentheses; nothing when there are none.
fn paragraph<'a>(
    out: &mut String,
    heading: &str,
    copies: impl ExactSizeIterator<Item = (&'a OwnedCopy, String)>,
) {
    if copies.len() == 0 {
        return;
    }
    let _ = writeln!(out, "{heading}");
    let rows: Vec<(String, &OwnedCopy, String)> = copies
        .map(|(copy, after)| {
            let source = copy
                .source_name
                .clone()
                .unwrap_or_else(|| copy.source_id.to_string());
            (controls(&source).into_owned(), copy, after)
        })
        .collect();
    let width = rows.iter().map(|(s, ..)| s.chars().count()).max();
    let width = width.unwrap_or(0);
    for (source, copy, after) in &rows {
        let pad = " ".repeat(width - source.chars().count());
        let _ = writeln!(
            out,
            "    {source}{pad}  {} ({}{after})",
            controls(&copy.name),
            copy.connection_id
        );
    }
}

/// The `Apply:` summary line, then each failure with its reason.
pub fn apply_summary(report: &Report, style: Style) -> String {
    let s = &report.summary;
    let not_run = report
        .targets
        .iter()
        .filter(|t| t.outcome == Some(Outcome::NotRun))
        .count();
    let deleted = if s.deleted > 0 || s.delete > 0 {
        format!(", {} deleted", s.deleted)
    } else {
        String::new()
    };
    let mut out = format!(
        "Apply: {} created, {} updated{deleted}, {} unchanged, {} failed",
        s.created, s.updated, s.unchanged, s.failed
    );
    if not_run > 0 {
        let _ = write!(out, ", {not_run} not run");
    }
    if s.untargeted > 0 {
        let _ = write!(
            out,
            "; {} left out by --target",
            count(s.untargeted, "target")
        );
    }
    out.push_str(".\n");
    if s.synced > 0 || s.sync_failed > 0 {
        let waited = report.targets.iter().filter(|t| t.sync_status.is_some());
        let succeeded = waited
            .clone()
            .filter(|t| t.sync_status == Some(crate::wire::JobStatus::Succeeded))
            .count();
        let _ = write!(out, "Syncs: {} started", s.synced);
        if waited.count() > 0 {
            let _ = write!(out, ", {succeeded} succeeded");
        }
        let _ = writeln!(out, ", {} failed.", s.sync_failed);
    }
    let failures: Vec<&TargetReport> = report
        .targets
        .iter()
        .filter(|t| t.outcome == Some(Outcome::Failed) || t.sync_failed)
        .collect();
    if !failures.is_empty() {
        out.push_str("Failures:\n");
        for t in failures {
            let _ = writeln!(
                out,
                "{} {}: {}",
                style.paint("31", "!"),
                controls(label(t)),
                controls(t.error.as_deref().unwrap_or("failed"))
            );
        }
    }
    warnings(&mut out, report, style);
    out
}

/// The source's name, else the plan entry that failed to resolve.
fn label(target: &TargetReport) -> &str {
    target.source_name.as_deref().unwrap_or(&target.entry)
}

fn name(target: &TargetReport) -> &str {
    target.name.as_deref().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Mode, Report, TargetReport};
    use std::path::Path;
    use uuid::Uuid;

    fn target(source: &str, action: Action, outcome: Option<Outcome>) -> TargetReport {
        TargetReport {
            source_id: Some(Uuid::nil()),
            source_name: Some(source.into()),
            name: Some(format!("{source} → Warehouse")),
            action,
            outcome,
            connection_id: (action == Action::Unchanged).then(Uuid::nil),
            duplicate_of: None,
            error: (action == Action::Error).then(|| r#"stream "products" is missing"#.into()),
            warnings: Vec::new(),
            changes: Vec::new(),
            sync_job_id: None,
            sync_status: None,
            entry: "targets[0]".into(),
            sync_failed: false,
        }
    }

    #[test]
    fn preview_and_summary_lines() {
        let mut report = Report::new(Path::new("plans/x.yaml"), Mode::Apply);
        report.targets = vec![
            target("shop-eu", Action::Create, Some(Outcome::Created)),
            target("shop-us", Action::Unchanged, Some(Outcome::Unchanged)),
            target("shop-legacy", Action::Error, Some(Outcome::Failed)),
        ];
        report.tally();
        let style = Style::default();
        insta::assert_snapshot!(preview(&report, &BTreeMap::new(), style), @r#"
        + shop-eu      shop-eu → Warehouse
        = shop-us      shop-us → Warehouse (exists: 00000000-0000-0000-0000-000000000000)
        ! shop-legacy  stream "products" is missing
        Plan: 1 to create, 0 to update, 1 unchanged, 1 error.
        "#);
        insta::assert_snapshot!(apply_summary(&report, style), @r#"
        Apply: 1 created, 0 updated, 1 unchanged, 1 failed.
        Failures:
        ! shop-legacy: stream "products" is missing
        "#);
    }

    #[test]
    fn orphans_deletes_and_targeting() {
        use crate::orphans::{Orphan, Prune};
        let orphan = |n: u128, source: &str| Orphan {
            connection_id: Uuid::from_u128(n),
            name: format!("{source} → Warehouse"),
            source_id: Uuid::from_u128(100 + n),
            source_name: Some(source.into()),
        };
        let mut report = Report::new(Path::new("plans/x.yaml"), Mode::Plan);
        report.targets = vec![target("shop-eu", Action::Unchanged, None)];
        report.orphans = vec![orphan(1, "shop-apac"), orphan(2, "shop-latam")];
        report.summary.untargeted = 3;
        report.tally();
        let style = Style::default();
        insta::assert_snapshot!(preview(&report, &BTreeMap::new(), style), @r"
        = shop-eu  shop-eu → Warehouse (exists: 00000000-0000-0000-0000-000000000000)
        2 copies owned by this plan are no longer in it (prune: true deletes them):
            shop-apac   shop-apac → Warehouse (00000000-0000-0000-0000-000000000001)
            shop-latam  shop-latam → Warehouse (00000000-0000-0000-0000-000000000002)
        Plan: 0 to create, 0 to update, 1 unchanged, 0 errors; 3 targets left out by --target.
        ");
        report.prune = Prune::Targeted;
        report.orphans.pop();
        let text = preview(&report, &BTreeMap::new(), style);
        assert!(
            text.contains(
                "1 copy owned by this plan is no longer in it (not pruned: a --target run never \
                 prunes):"
            ),
            "{text}"
        );

        report.prune = Prune::On;
        let mut delete = target("shop-apac", Action::Delete, Some(Outcome::Deleted));
        delete.connection_id = Some(Uuid::from_u128(1));
        report.targets.push(delete);
        report.summary.untargeted = 0;
        report.tally();
        insta::assert_snapshot!(preview(&report, &BTreeMap::new(), style), @r"
        = shop-eu    shop-eu → Warehouse (exists: 00000000-0000-0000-0000-000000000000)
        - shop-apac  shop-apac → Warehouse (00000000-0000-0000-0000-000000000001; owned, no longer a target)
        Plan: 0 to create, 0 to update, 1 to delete, 1 unchanged, 0 errors.
        ");
        assert_eq!(
            apply_summary(&report, style),
            "Apply: 0 created, 0 updated, 1 deleted, 1 unchanged, 0 failed.\n"
        );
    }

    #[test]
    fn duplicates_left_in_place_or_deleted() {
        use crate::duplicates::Duplicate;
        use crate::orphans::{OwnedCopy, Prune};
        let duplicate = |n: u128, source: &str| Duplicate {
            copy: OwnedCopy {
                connection_id: Uuid::from_u128(n),
                name: format!("{source} → Warehouse"),
                source_id: Uuid::from_u128(100),
                source_name: Some(source.into()),
            },
            duplicate_of: Uuid::from_u128(9),
        };
        let mut report = Report::new(Path::new("plans/x.yaml"), Mode::Plan);
        report.targets = vec![target("shop-eu", Action::Unchanged, None)];
        report.duplicates = vec![duplicate(1, "shop-eu"), duplicate(2, "shop-eu")];
        report.tally();
        assert_eq!(report.summary.duplicates, 2);
        assert!(report.has_failures(), "left in place: the run fails");
        assert!(!report.has_changes());
        let style = Style::default();
        insta::assert_snapshot!(preview(&report, &BTreeMap::new(), style), @r"
        = shop-eu  shop-eu → Warehouse (exists: 00000000-0000-0000-0000-000000000000)
        2 duplicate copies owned by this plan (prune: true deletes them):
            shop-eu  shop-eu → Warehouse (00000000-0000-0000-0000-000000000001; a duplicate of 00000000-0000-0000-0000-000000000009)
            shop-eu  shop-eu → Warehouse (00000000-0000-0000-0000-000000000002; a duplicate of 00000000-0000-0000-0000-000000000009)
        Plan: 0 to create, 0 to update, 1 unchanged, 0 errors; 2 duplicates left in place.
        ");
        report.duplicates.pop();
        report.prune = Prune::Targeted;
        let text = preview(&report, &BTreeMap::new(), style);
        assert!(
            text.contains(
                "1 duplicate copy owned by this plan (not pruned: a --target run never prunes):"
            ),
            "{text}"
        );

        report.prune = Prune::On;
        let mut delete = target("shop-eu", Action::Delete, Some(Outcome::Deleted));
        delete.connection_id = Some(Uuid::from_u128(1));
        delete.duplicate_of = Some(Uuid::from_u128(9));
        report.targets.push(delete);
        report.tally();
        assert!(!report.has_failures(), "deleted: nothing left");
        insta::assert_snapshot!(preview(&report, &BTreeMap::new(), style), @r"
        = shop-eu  shop-eu → Warehouse (exists: 00000000-0000-0000-0000-000000000000)
        - shop-eu  shop-eu → Warehouse (00000000-0000-0000-0000-000000000001; owned, a duplicate of 00000000-0000-0000-0000-000000000009)
        Plan: 0 to create, 0 to update, 1 to delete, 1 unchanged, 0 errors.
        ");
        assert_eq!(
            (report.summary.delete, report.summary.deleted),
            (1, 1),
            "counted with the orphans' deletes"
        );
    }
}
