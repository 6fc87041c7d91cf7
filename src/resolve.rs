//! Resolve: the remote reads that turn a plan into concrete things on the server.
//!
//! The template (by id, or by exact name), its destination, the sources and the connections of
//! its workspace (every page), then the targets: explicit sources, `match` globs with `type` and
//! `exclude`, the template's own source left out. Independent reads run together; every call goes
//! through the client's concurrency cap. Catalogs are read later, by `preview`, only for the
//! targets that need a create.

use crate::client::{ApiError, Client};
use crate::plan::{Overrides, Plan, Reference, Selector};
use crate::report::events::{Reporter, Step, count};
use crate::wire::{ConnectionResponse, ConnectionStatus, DestinationResponse, SourceResponse};
use futures::TryFutureExt;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// A failure that stops the whole run before any target is considered.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("template connection {reference}: {source}")]
    TemplateRequest {
        reference: Reference,
        source: ApiError,
    },
    #[error("no connection named \"{0}\" (names are matched exactly; an id works too)")]
    TemplateNotFound(String),
    #[error("{count} connections are named \"{name}\"; name the template by id instead: {ids}")]
    TemplateAmbiguous {
        name: String,
        count: usize,
        ids: String,
    },
    #[error("the template's {what}: {source}")]
    Request {
        what: &'static str,
        source: ApiError,
    },
}

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

/// One row of the plan: a source selected by a plan entry, or why the entry selected nothing.
#[derive(Debug, Clone)]
pub struct ResolvedTarget {
    /// The YAML path of the entry (`targets[2]`).
    pub entry: String,
    pub source: Result<SourceSummary, String>,
    /// `defaults` overlaid with the entry's own keys.
    pub overrides: Overrides,
}

/// What the server holds that the plan refers to.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub template: ConnectionResponse,
    pub destination: DestinationResponse,
    /// The workspace's non-deleted connections, for finding existing copies.
    pub connections: Vec<ConnectionResponse>,
    pub targets: Vec<ResolvedTarget>,
}

/// Reads the template, its destination, its workspace's sources and connections, and selects
/// the targets.
pub async fn resolve(
    plan: &Plan,
    client: &Client,
    reporter: &Arc<dyn Reporter>,
) -> Result<Resolved, ResolveError> {
    reporter.step_started(Step::Template);
    let (template, workspace_connections) = template(plan, client, reporter).await?;
    reporter.step_advanced(Step::Template, 1);
    reporter.step_finished(Step::Template, &template.name);

    let workspace = template.workspace_id;
    let destination = client
        .destination(template.destination_id)
        .map_err(|source| ResolveError::Request {
            what: "destination",
            source,
        });
    let sources = async {
        reporter.step_started(Step::Sources);
        let sources = client
            .sources(workspace, |n| {
                reporter.step_advanced(Step::Sources, n as u64);
            })
            .await
            .map_err(|source| ResolveError::Request {
                what: "sources",
                source,
            })?;
        reporter.step_finished(Step::Sources, &count(sources.len(), "source"));
        Ok(sources)
    };
    let connections = async {
        reporter.step_started(Step::Connections);
        let connections = match workspace_connections {
            Some(all) => {
                reporter.step_advanced(Step::Connections, all.len() as u64);
                all
            }
            None => client
                .connections(Some(workspace), |n| {
                    reporter.step_advanced(Step::Connections, n as u64);
                })
                .await
                .map_err(|source| ResolveError::Request {
                    what: "connections",
                    source,
                })?,
        };
        let live: Vec<ConnectionResponse> = connections
            .into_iter()
            .filter(|c| c.workspace_id == workspace && c.status != ConnectionStatus::Deprecated)
            .collect();
        reporter.step_finished(Step::Connections, &count(live.len(), "connection"));
        Ok(live)
    };
    let (destination, sources, connections) =
        futures::try_join!(destination, sources, connections)?;

    let targets = select_targets(plan, &template, &sources, client).await;
    Ok(Resolved {
        template,
        destination,
        connections,
        targets,
    })
}

/// The template connection. When it is named rather than given by id, every connection the token
/// can see is listed to find it; that listing is returned so the workspace is not listed twice.
async fn template(
    plan: &Plan,
    client: &Client,
    reporter: &Arc<dyn Reporter>,
) -> Result<(ConnectionResponse, Option<Vec<ConnectionResponse>>), ResolveError> {
    let request_error = |source| ResolveError::TemplateRequest {
        reference: plan.template.clone(),
        source,
    };
    match &plan.template {
        Reference::Id(id) => Ok((client.connection(*id).await.map_err(request_error)?, None)),
        Reference::Name(name) => {
            let all = client
                .connections(None, |n| {
                    reporter.step_advanced(Step::Connections, n as u64);
                })
                .await
                .map_err(request_error)?;
            let mut found = all
                .iter()
                .filter(|c| &c.name == name && c.status != ConnectionStatus::Deprecated);
            match (found.next(), found.next()) {
                (None, _) => Err(ResolveError::TemplateNotFound(name.clone())),
                (Some(one), None) => {
                    let one = one.clone();
                    Ok((one, Some(all)))
                }
                (Some(a), Some(b)) => {
                    let mut ids = vec![a.connection_id.to_string(), b.connection_id.to_string()];
                    ids.extend(found.map(|c| c.connection_id.to_string()));
                    Err(ResolveError::TemplateAmbiguous {
                        name: name.clone(),
                        count: ids.len(),
                        ids: ids.join(", "),
                    })
                }
            }
        }
    }
}

/// Who selected a source: the entry's index, and whether it named the source explicitly.
#[derive(Clone, Copy)]
struct Selection {
    entry: usize,
    explicit: bool,
}

/// Applies the plan's entries to the workspace's sources. Explicit entries win over `match`
/// entries (so "all shops, but shop-eu with its own name" works); a source that two explicit
/// entries, or two `match` entries, select is an error naming both.
async fn select_targets(
    plan: &Plan,
    template: &ConnectionResponse,
    sources: &[SourceResponse],
    client: &Client,
) -> Vec<ResolvedTarget> {
    let by_id: HashMap<Uuid, &SourceResponse> = sources.iter().map(|s| (s.source_id, s)).collect();
    let mut by_name: HashMap<&str, Vec<&SourceResponse>> = HashMap::new();
    for s in sources {
        by_name.entry(s.name.as_str()).or_default().push(s);
    }

    let mut rows = Vec::new();
    // Source id → (row index, who selected it).
    let mut chosen: HashMap<Uuid, (usize, Selection)> = HashMap::new();
    for (index, entry) in plan.targets.iter().enumerate() {
        let overrides = plan.defaults.overlaid_with(&entry.overrides);
        let row = |source| ResolvedTarget {
            entry: entry.path.clone(),
            source,
            overrides: overrides.clone(),
        };
        let picked: Vec<&SourceResponse> = match &entry.selector {
            Selector::Source(reference) => {
                match explicit_source(reference, &by_id, &by_name, template, client).await {
                    Ok(source) => vec![source],
                    Err(message) => {
                        rows.push(row(Err(message)));
                        continue;
                    }
                }
            }
            Selector::Match {
                pattern,
                source_type,
                exclude,
            } => {
                let mut picked: Vec<&SourceResponse> = sources
                    .iter()
                    .filter(|s| s.source_id != template.source_id)
                    .filter(|s| pattern.is_match(&s.name))
                    .filter(|s| source_type.as_ref().is_none_or(|t| &s.source_type == t))
                    .filter(|s| !exclude.iter().any(|g| g.is_match(&s.name)))
                    .collect();
                picked.sort_by(|a, b| a.name.cmp(&b.name).then(a.source_id.cmp(&b.source_id)));
                picked
            }
        };
        let explicit = matches!(entry.selector, Selector::Source(_));
        for source in picked {
            let this = Selection {
                entry: index,
                explicit,
            };
            match chosen.get(&source.source_id).copied() {
                None => {
                    chosen.insert(source.source_id, (rows.len(), this));
                    rows.push(row(Ok(SourceSummary::from(source))));
                }
                Some((at, earlier)) if earlier.explicit == explicit => {
                    rows[at].source = Err(format!(
                        "source \"{}\" is selected by both {} and {}; a source may have one copy only",
                        source.name, plan.targets[earlier.entry].path, entry.path
                    ));
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

/// The source an explicit entry names, or why it names none.
async fn explicit_source<'a>(
    reference: &Reference,
    by_id: &HashMap<Uuid, &'a SourceResponse>,
    by_name: &HashMap<&str, Vec<&'a SourceResponse>>,
    template: &ConnectionResponse,
    client: &Client,
) -> Result<&'a SourceResponse, String> {
    let source = match reference {
        Reference::Id(id) => match by_id.get(id) {
            Some(s) => *s,
            None => {
                // Not in the workspace: say whether it exists at all.
                return Err(match client.source(*id).await {
                    Ok(s) => format!(
                        "source {id} (\"{}\") is in workspace {}, not in the template's workspace {}",
                        s.name, s.workspace_id, template.workspace_id
                    ),
                    Err(e) if e.status() == Some(404) => format!("no source with id {id}"),
                    Err(e) => format!("source {id}: {e}"),
                });
            }
        },
        Reference::Name(name) => match by_name.get(name.as_str()).map(Vec::as_slice) {
            None | Some([]) => {
                let known = by_name.keys().copied();
                let hint = crate::suggest::closest(name, known)
                    .map(|c| format!(" (did you mean \"{c}\"?)"))
                    .unwrap_or_default();
                return Err(format!(
                    "no source named \"{name}\" in the template's workspace{hint}"
                ));
            }
            Some([one]) => *one,
            Some(many) => {
                let ids: Vec<String> = many.iter().map(|s| s.source_id.to_string()).collect();
                return Err(format!(
                    "{} sources are named \"{name}\"; name it by id instead: {}",
                    many.len(),
                    ids.join(", ")
                ));
            }
        },
    };
    if source.source_id == template.source_id {
        return Err(format!(
            "source \"{}\" is the template's own source; it cannot be a target",
            source.name
        ));
    }
    Ok(source)
}
