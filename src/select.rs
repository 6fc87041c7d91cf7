//! Target selection (SPEC §2): pure, from the plan's entries and the workspace's sources to one
//! row per target.
//!
//! Part of resolve: `resolve` fetches the sources, this decides which of them the plan means.
//! Explicit `source:` entries win over `match` entries (so "all shops, but shop-eu with its own
//! name" works); a source that two explicit entries, or two `match` entries, select is an error
//! naming both; the template's own source is an error when named and left out when matched. A
//! `match` that selects nothing is an error for its entry, naming the closest source names,
//! unless the entry says `allow_empty: true` (a typo in a glob must not pass for "no targets").
//! [`narrow`] is `--target`: only the targets whose source name matches stay in the run.

use crate::plan::{Glob, Overrides, Plan, Reference, Selector};
use crate::wire::SourceResponse;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// The source a target resolved to: only what the later stages need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSummary {
    pub id: Uuid,
    pub name: String,
    pub source_type: String,
}

impl From<&SourceResponse> for SourceSummary {
    fn from(s: &SourceResponse) -> Self {
        SourceSummary {
            id: s.source_id,
            name: s.name.clone(),
            source_type: s.source_type.clone(),
        }
    }
}

/// Why a plan entry selected no source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// Not among the workspace's sources; `resolve` asks the server whether it exists elsewhere.
    #[error("no source with id {0} in the template's workspace")]
    UnknownId(Uuid),
    #[error(
        "source {id} (\"{name}\") is in workspace {workspace}, not in the template's workspace {expected}"
    )]
    OtherWorkspace {
        id: Uuid,
        name: String,
        workspace: Uuid,
        expected: Uuid,
    },
    #[error("no source with id {0}")]
    NoSuchId(Uuid),
    #[error("source {id}: {message}")]
    Lookup { id: Uuid, message: String },
    #[error("no source named \"{name}\" in the template's workspace{}", hint.as_ref().map(|h| format!(" (did you mean \"{h}\"?)")).unwrap_or_default())]
    UnknownName { name: String, hint: Option<String> },
    #[error("{} sources are named \"{name}\"; name it by id instead: {}", ids.len(), join(ids))]
    AmbiguousName { name: String, ids: Vec<Uuid> },
    #[error("source \"{0}\" is the template's own source; it cannot be a target")]
    TemplateSource(String),
    #[error(
        "source \"{}\" is selected by both {first} and {second}; a source may have one copy only",
        selected.name
    )]
    SelectedTwice {
        /// The source, so that its row is labelled by its name rather than by an entry.
        selected: Box<SourceSummary>,
        first: String,
        second: String,
    },
    #[error(
        "match \"{pattern}\" selects no source: {reason}; fix the glob, or set `allow_empty: true` \
         on the entry"
    )]
    EmptyMatch {
        pattern: String,
        reason: EmptyReason,
    },
}

impl SelectError {
    /// The source name the failed entry was about, when it names one (for `--target`).
    pub fn source_name(&self) -> Option<&str> {
        match self {
            SelectError::OtherWorkspace { name, .. }
            | SelectError::UnknownName { name, .. }
            | SelectError::AmbiguousName { name, .. }
            | SelectError::TemplateSource(name) => Some(name),
            SelectError::SelectedTwice { selected, .. } => Some(&selected.name),
            SelectError::UnknownId(_)
            | SelectError::NoSuchId(_)
            | SelectError::Lookup { .. }
            | SelectError::EmptyMatch { .. } => None,
        }
    }

    /// The source the failed entry selected, when it selected one (a source selected twice).
    pub fn source(&self) -> Option<&SourceSummary> {
        match self {
            SelectError::SelectedTwice { selected, .. } => Some(selected),
            _ => None,
        }
    }
}

/// Why a `match` entry selected no source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmptyReason {
    /// No source name matches the glob; the nearest names, if any are near.
    NoName { nearest: Vec<String> },
    /// Only the template's own source matches, and it is never a target.
    OnlyTemplate,
    /// Names match, but none is of the entry's `type`; the types they have.
    Type {
        matched: usize,
        wanted: String,
        found: Vec<String>,
    },
    /// Names match, and `exclude` leaves none.
    Excluded { matched: usize },
}

impl std::fmt::Display for EmptyReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sources = |n: usize| crate::report::events::count(n, "source");
        match self {
            EmptyReason::NoName { nearest } if nearest.is_empty() => {
                write!(f, "no source name matches it")
            }
            EmptyReason::NoName { nearest } => {
                let quoted: Vec<String> = nearest.iter().map(|n| format!("\"{n}\"")).collect();
                write!(
                    f,
                    "no source name matches it (the closest: {})",
                    quoted.join(", ")
                )
            }
            EmptyReason::OnlyTemplate => write!(
                f,
                "it matches only the template's own source, which is never a target"
            ),
            EmptyReason::Type {
                matched,
                wanted,
                found,
            } => write!(
                f,
                "it matches {}, but none of type \"{wanted}\" (they are {})",
                sources(*matched),
                found.join(", ")
            ),
            EmptyReason::Excluded { matched } => write!(
                f,
                "it matches {}, and `exclude` leaves out every one",
                sources(*matched)
            ),
        }
    }
}

fn join(ids: &[Uuid]) -> String {
    ids.iter()
        .map(Uuid::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One row of the plan: a source selected by a plan entry, or why the entry selected nothing.
#[derive(Debug, Clone)]
pub struct ResolvedTarget {
    /// The YAML path of the entry (`targets[2]`).
    pub entry: String,
    pub source: Result<SourceSummary, SelectError>,
    /// `defaults` overlaid with the entry's own keys; one per entry, shared by its rows (a
    /// `match` over 20,000 sources is 20,000 rows with the same keys).
    pub overrides: Arc<Overrides>,
}

/// Who selected a source: the entry's index, and whether it named the source explicitly.
#[derive(Clone, Copy)]
struct Selection {
    entry: usize,
    explicit: bool,
}

/// Applies the plan's entries to the workspace's `sources`, in entry order (a `match` entry's
/// sources by name). `template_source` is the template's own source.
pub fn select_targets(
    plan: &Plan,
    template_source: Uuid,
    sources: &[SourceResponse],
) -> Vec<ResolvedTarget> {
    // Only explicit entries look sources up; a plan of `match` entries builds no index.
    let explicit_entries = plan
        .targets
        .iter()
        .any(|entry| matches!(entry.selector, Selector::Source(_)));
    let index = if explicit_entries {
        Index::of(sources)
    } else {
        Index::default()
    };

    let mut rows = Vec::new();
    // Source id → (row index, who selected it).
    let mut chosen: HashMap<Uuid, (usize, Selection)> = HashMap::new();
    for (entry_index, entry) in plan.targets.iter().enumerate() {
        let overrides = Arc::new(plan.defaults.overlaid_with(&entry.overrides));
        let row = |source| ResolvedTarget {
            entry: entry.path.clone(),
            source,
            overrides: Arc::clone(&overrides),
        };
        let picked: Vec<&SourceResponse> = match &entry.selector {
            Selector::Source(reference) => {
                match explicit_source(reference, &index, template_source) {
                    Ok(source) => vec![source],
                    Err(error) => {
                        rows.push(row(Err(error)));
                        continue;
                    }
                }
            }
            Selector::Match {
                pattern,
                source_type,
                exclude,
                allow_empty,
            } => match matched(
                sources,
                template_source,
                pattern,
                source_type.as_deref(),
                exclude,
            ) {
                Ok(picked) => picked,
                Err(_) if *allow_empty => Vec::new(),
                Err(reason) => {
                    rows.push(row(Err(SelectError::EmptyMatch {
                        pattern: pattern.text.clone(),
                        reason,
                    })));
                    continue;
                }
            },
        };
        let explicit = matches!(entry.selector, Selector::Source(_));
        rows.reserve(picked.len());
        chosen.reserve(picked.len());
        for source in picked {
            let this = Selection {
                entry: entry_index,
                explicit,
            };
            match chosen.get(&source.source_id).copied() {
                None => {
                    chosen.insert(source.source_id, (rows.len(), this));
                    rows.push(row(Ok(SourceSummary::from(source))));
                }
                Some((at, earlier)) if earlier.explicit == explicit => {
                    rows[at].source = Err(SelectError::SelectedTwice {
                        selected: Box::new(SourceSummary::from(source)),
                        first: plan.targets[earlier.entry].path.clone(),
                        second: entry.path.clone(),
                    });
                }
                // An explicit entry wins over a match, whichever comes first.
                Some((at, _)) if explicit => {
                    rows[at] = row(Ok(SourceSummary::from(source)));
                    chosen.insert(source.source_id, (at, this));
                }
                Some(_) => {}
            }
        }
    }
    rows
}

/// The workspace's sources by id and by name, for the entries that name one.
#[derive(Default)]
struct Index<'a> {
    by_id: HashMap<Uuid, &'a SourceResponse>,
    by_name: HashMap<&'a str, Vec<&'a SourceResponse>>,
}

impl<'a> Index<'a> {
    fn of(sources: &'a [SourceResponse]) -> Self {
        let by_id = sources.iter().map(|s| (s.source_id, s)).collect();
        let mut by_name: HashMap<&str, Vec<&SourceResponse>> = HashMap::new();
        for s in sources {
            by_name.entry(s.name.as_str()).or_default().push(s);
        }
        Index { by_id, by_name }
    }
}

/// The sources a `match` entry selects, sorted by name, or why there are none.
fn matched<'a>(
    sources: &'a [SourceResponse],
    template_source: Uuid,
    pattern: &Glob,
    source_type: Option<&str>,
    exclude: &[Glob],
) -> Result<Vec<&'a SourceResponse>, EmptyReason> {
    let named: Vec<&SourceResponse> = sources
        .iter()
        .filter(|s| pattern.is_match(&s.name))
        .collect();
    let candidates: Vec<&SourceResponse> = named
        .iter()
        .copied()
        .filter(|s| s.source_id != template_source)
        .collect();
    let typed: Vec<&SourceResponse> = candidates
        .iter()
        .copied()
        .filter(|s| source_type.is_none_or(|t| s.source_type == t))
        .collect();
    let mut picked: Vec<&SourceResponse> = typed
        .iter()
        .copied()
        .filter(|s| !exclude.iter().any(|g| g.is_match(&s.name)))
        .collect();
    if picked.is_empty() {
        return Err(if named.is_empty() {
            EmptyReason::NoName {
                nearest: crate::suggest::nearest_to_glob(
                    &pattern.text,
                    sources
                        .iter()
                        .filter(|s| s.source_id != template_source)
                        .map(|s| s.name.as_str()),
                    3,
                )
                .into_iter()
                .map(str::to_string)
                .collect(),
            }
        } else if candidates.is_empty() {
            EmptyReason::OnlyTemplate
        } else if typed.is_empty() {
            let mut found: Vec<String> = candidates.iter().map(|s| s.source_type.clone()).collect();
            found.sort();
            found.dedup();
            EmptyReason::Type {
                matched: candidates.len(),
                wanted: source_type.unwrap_or_default().to_string(),
                found,
            }
        } else {
            EmptyReason::Excluded {
                matched: typed.len(),
            }
        });
    }
    picked.sort_by(|a, b| a.name.cmp(&b.name).then(a.source_id.cmp(&b.source_id)));
    Ok(picked)
}

/// `--target`: the targets whose source name (or, for an entry that failed, the name it gave)
/// matches one of `globs`, and how many were left out. No globs: every target stays.
pub fn narrow(targets: Vec<ResolvedTarget>, globs: &[Glob]) -> (Vec<ResolvedTarget>, usize) {
    if globs.is_empty() {
        return (targets, 0);
    }
    let total = targets.len();
    let kept: Vec<ResolvedTarget> = targets
        .into_iter()
        .filter(|t| {
            let name = match &t.source {
                Ok(source) => Some(source.name.as_str()),
                Err(error) => error.source_name(),
            };
            name.is_some_and(|name| targeted(name, globs))
        })
        .collect();
    let left_out = total - kept.len();
    (kept, left_out)
}

/// Whether `--target` keeps the source called `name` (no globs: every source).
pub fn targeted(name: &str, globs: &[Glob]) -> bool {
    globs.is_empty() || globs.iter().any(|g| g.is_match(name))
}

/// The source an explicit entry names, or why it names none.
fn explicit_source<'a>(
    reference: &Reference,
    index: &Index<'a>,
    template_source: Uuid,
) -> Result<&'a SourceResponse, SelectError> {
    let Index { by_id, by_name } = index;
    let source = match reference {
        Reference::Id(id) => *by_id.get(id).ok_or(SelectError::UnknownId(*id))?,
        Reference::Name(name) => match by_name.get(name.as_str()).map(Vec::as_slice) {
            None | Some([]) => {
                return Err(SelectError::UnknownName {
                    name: name.clone(),
                    hint: crate::suggest::names(name, by_name.keys().copied())
                        .first()
                        .map(|h| (*h).to_string()),
                });
            }
            Some([one]) => *one,
            Some(many) => {
                return Err(SelectError::AmbiguousName {
                    name: name.clone(),
                    ids: many.iter().map(|s| s.source_id).collect(),
                });
            }
        },
    };
    if source.source_id == template_source {
        return Err(SelectError::TemplateSource(source.name.clone()));
    }
    Ok(source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TEMPLATE_SOURCE: u128 = 1;

    fn source(id: u128, name: &str, source_type: &str) -> SourceResponse {
        serde_json::from_value(json!({
            "sourceId": Uuid::from_u128(id), "name": name, "sourceType": source_type,
            "definitionId": Uuid::from_u128(500), "workspaceId": Uuid::from_u128(900),
            "configuration": {}, "createdAt": 0
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The default seed's sources, plus a second `dup` to make a name ambiguous.
    fn sources() -> Vec<SourceResponse> {
        vec![
            source(TEMPLATE_SOURCE, "shop-template", "postgres"),
            source(2, "shop-eu", "postgres"),
            source(3, "shop-us", "postgres"),
            source(4, "shop-legacy", "postgres"),
            source(5, "crm", "hubspot"),
            source(6, "dup", "postgres"),
            source(7, "dup", "postgres"),
        ]
    }

    fn plan(targets: &str) -> Plan {
        let yaml = format!(
            "version: 1\ntemplate: \"shop-template → Warehouse\"\ntargets:\n{targets}\n\
             defaults:\n  prefix: \"{{source.name|slug}}_\"\n"
        );
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("plan.yaml");
        std::fs::write(&file, yaml).unwrap_or_else(|e| panic!("{e}"));
        crate::plan::load(&file).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Each row as `entry: name` or `entry: error`.
    fn rows(targets: &str) -> Vec<String> {
        select_targets(&plan(targets), Uuid::from_u128(TEMPLATE_SOURCE), &sources())
            .into_iter()
            .map(|row| match row.source {
                Ok(s) => format!("{}: {}", row.entry, s.name),
                Err(e) => format!("{}: ! {e}", row.entry),
            })
            .collect()
    }

    #[test]
    #[allow(clippy::too_many_lines)] // a table of cases
    fn selection_table() {
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "a match leaves out the template's own source, sorted by name",
                "  - match: \"shop-*\"",
                &[
                    "targets[0]: shop-eu",
                    "targets[0]: shop-legacy",
                    "targets[0]: shop-us",
                ],
            ),
            (
                "type and exclude narrow a match",
                "  - match: \"*\"\n    type: postgres\n    exclude: [\"shop-l*\", \"dup\"]",
                &["targets[0]: shop-eu", "targets[0]: shop-us"],
            ),
            (
                "the template's own source, named",
                "  - source: shop-template",
                &[
                    "targets[0]: ! source \"shop-template\" is the template's own source; it cannot be a target",
                ],
            ),
            (
                "an explicit entry beats a match, after it",
                "  - match: \"shop-e*\"\n  - source: shop-eu\n    name: special",
                &["targets[1]: shop-eu"],
            ),
            (
                "an explicit entry beats a match, before it",
                "  - source: shop-eu\n  - match: \"shop-e*\"",
                &["targets[0]: shop-eu"],
            ),
            (
                "two explicit entries, one source (by name and by id)",
                "  - source: shop-eu\n  - source: 00000000-0000-0000-0000-000000000002",
                &[
                    "targets[0]: ! source \"shop-eu\" is selected by both targets[0] and targets[1]; a source may have one copy only",
                ],
            ),
            (
                "two matches, one source",
                "  - match: \"shop-u*\"\n  - match: \"*-us\"",
                &[
                    "targets[0]: ! source \"shop-us\" is selected by both targets[0] and targets[1]; a source may have one copy only",
                ],
            ),
            (
                "a source from another workspace (not in the list)",
                "  - source: 00000000-0000-0000-0000-0000000000ff",
                &[
                    "targets[0]: ! no source with id 00000000-0000-0000-0000-0000000000ff in the template's workspace",
                ],
            ),
            (
                "a typo gets the closest name",
                "  - source: shop-e",
                &[
                    "targets[0]: ! no source named \"shop-e\" in the template's workspace (did you mean \"shop-eu\"?)",
                ],
            ),
            (
                "an ambiguous name asks for the id",
                "  - source: dup",
                &[
                    "targets[0]: ! 2 sources are named \"dup\"; name it by id instead: 00000000-0000-0000-0000-000000000006, 00000000-0000-0000-0000-000000000007",
                ],
            ),
            (
                "a glob with a typo selects nothing: an error naming the closest names",
                "  - match: \"shpo-*\"\n  - source: crm",
                &[
                    "targets[0]: ! match \"shpo-*\" selects no source: no source name matches it (the closest: \"shop-eu\", \"shop-legacy\", \"shop-us\"); fix the glob, or set `allow_empty: true` on the entry",
                    "targets[1]: crm",
                ],
            ),
            (
                "nothing near",
                "  - match: \"warehouse-*\"",
                &[
                    "targets[0]: ! match \"warehouse-*\" selects no source: no source name matches it; fix the glob, or set `allow_empty: true` on the entry",
                ],
            ),
            (
                "only the template's own source",
                "  - match: \"shop-t*\"",
                &[
                    "targets[0]: ! match \"shop-t*\" selects no source: it matches only the template's own source, which is never a target; fix the glob, or set `allow_empty: true` on the entry",
                ],
            ),
            (
                "type leaves none",
                "  - match: \"shop-*\"\n    type: mysql",
                &[
                    "targets[0]: ! match \"shop-*\" selects no source: it matches 3 sources, but none of type \"mysql\" (they are postgres); fix the glob, or set `allow_empty: true` on the entry",
                ],
            ),
            (
                "exclude leaves none",
                "  - match: \"shop-[eu]*\"\n    exclude: [\"shop-eu\", \"*-us\"]",
                &[
                    "targets[0]: ! match \"shop-[eu]*\" selects no source: it matches 2 sources, and `exclude` leaves out every one; fix the glob, or set `allow_empty: true` on the entry",
                ],
            ),
            (
                "allow_empty: an empty match is no row at all",
                "  - match: \"retired-*\"\n    allow_empty: true\n  - source: crm",
                &["targets[1]: crm"],
            ),
            (
                "a match whose source an explicit entry takes is not empty",
                "  - match: \"shop-eu\"\n  - source: shop-eu",
                &["targets[1]: shop-eu"],
            ),
        ];
        let mut failures = Vec::new();
        for (what, targets, want) in cases {
            let got = rows(targets);
            if got != *want {
                failures.push(format!("{what}:\n  got  {got:?}\n  want {want:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn narrowing_table() {
        let targets =
            "  - match: \"shop-*\"\n  - source: crm\n  - source: shop-x\n  - match: \"nope-*\"";
        let all = || select_targets(&plan(targets), Uuid::from_u128(TEMPLATE_SOURCE), &sources());
        let glob = |text: &str| crate::plan::compile_glob(text).unwrap_or_else(|e| panic!("{e}"));
        let cases: &[(&[&str], &[&str], usize)] = &[
            (
                &[],
                &["shop-eu", "shop-legacy", "shop-us", "crm", "!", "!"],
                0,
            ),
            (&["shop-eu"], &["shop-eu"], 5),
            (&["shop-e*", "crm"], &["shop-eu", "crm"], 4),
            // An entry that failed is kept when the name it gives matches.
            (&["shop-x"], &["!"], 5),
            (&["nothing-*"], &[], 6),
        ];
        for (globs, want, left_out) in cases {
            let globs: Vec<Glob> = globs.iter().map(|g| glob(g)).collect();
            let (kept, out) = narrow(all(), &globs);
            let names: Vec<&str> = kept
                .iter()
                .map(|t| t.source.as_ref().map_or("!", |s| s.name.as_str()))
                .collect();
            assert_eq!((names.as_slice(), out), (*want, *left_out), "{globs:?}");
        }
    }
}
