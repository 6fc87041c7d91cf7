//! The human rendering of a [`Report`]: the preview, the summary line, the failures.
//!
//! Pure functions from the report to text, so they are snapshot-tested without a terminal.
//! Colour is a parameter: the caller decides it (terminal, `NO_COLOR`). Every value from the
//! server or the plan goes through [`escape::controls`]: the only escape sequences in the output
//! are the colours written here.

use super::changes;
use super::escape::controls;
use super::events::count;
use super::{Action, Outcome, Report, TargetReport};
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
            Action::Unchanged | Action::Update | Action::Delete => match target.connection_id {
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
    let s = &report.summary;
    // Deletes and drift are named only when there are some, so a plain fleet reads as before.
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
    let _ = writeln!(
        out,
        "Plan: {} to create, {} to update{deletes}, {} unchanged{drifted}, {}.",
        s.create,
        s.update,
        s.unchanged,
        count(s.error, "error")
    );
    out
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
    out.push_str(".\n");
    let failures: Vec<&TargetReport> = report
        .targets
        .iter()
        .filter(|t| t.outcome == Some(Outcome::Failed))
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
    for warning in &report.warnings {
        let _ = writeln!(
            out,
            "{} {}",
            style.paint("33", "warning:"),
            controls(warning)
        );
    }
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
            error: (action == Action::Error).then(|| r#"stream "products" is missing"#.into()),
            warnings: Vec::new(),
            changes: Vec::new(),
            entry: "targets[0]".into(),
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
}
