//! Resolve: the remote reads that turn a plan into concrete things on the server.
//!
//! The template (by id, or by exact name), its destination, the sources and the connections of
//! its workspace (every page), then the targets: explicit sources, `match` globs with `type` and
//! `exclude`, the template's own source left out; the workspace's tags, to find the plan's owner
//! tag, and with it the owned orphans (`orphans`). Independent reads run together (see
//! [`resolve`]); every call goes through the client's concurrency cap. Catalogs are read later,
//! by `build`, only for the targets that need one.

use crate::client::{ApiError, Client, FirstPage};
use crate::lease::{self, Lease, LeaseError};
use crate::orphans::{self, Orphan};
use crate::owner;
use crate::plan::{Glob, Plan, Reference};
use crate::report::events::{Reporter, Step, count};
pub use crate::select::{ResolvedTarget, SourceSummary};
use crate::select::{SelectError, select_targets};
use crate::suggest;
use crate::wire::{ConnectionResponse, ConnectionStatus, DestinationResponse, SourceResponse, Tag};
use futures::TryFutureExt;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

/// A failure that stops the whole run before any target is considered.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("template connection {reference}: {source}")]
    TemplateRequest {
        reference: Reference,
        source: ApiError,
    },
    #[error(
        "no connection named \"{name}\"{} (names are matched exactly; an id works too; \
         `replicate ls connections` lists them)",
        suggest::did_you_mean(&suggestions.iter().map(String::as_str).collect::<Vec<_>>())
    )]
    TemplateNotFound {
        name: String,
        /// Names of connections close to it.
        suggestions: Vec<String>,
    },
    #[error("{count} connections are named \"{name}\"; name the template by id instead: {ids}")]
    TemplateAmbiguous {
        name: String,
        count: usize,
        ids: String,
    },
    #[error(transparent)]
    Lease(#[from] LeaseError),
    #[error("the template's {what}: {source}")]
    Request {
        what: &'static str,
        source: ApiError,
    },
}

/// What the server holds that the plan refers to.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub template: ConnectionResponse,
    pub destination: DestinationResponse,
    /// The workspace's non-deleted connections but the owned duplicates: the candidates for
    /// each target's existing copy.
    pub connections: Vec<ConnectionResponse>,
    pub targets: Vec<ResolvedTarget>,
    /// The plan's owner tag, if the workspace has it already.
    pub owner_tag: Option<Tag>,
    /// The plan's owned orphans (against every target, before `--target`).
    pub orphans: Vec<Orphan>,
    /// Said about the plan's lease: a stale one this run took over, or (`plan`) one held by a
    /// running apply.
    pub lease_notes: Vec<String>,
    /// The owned copies of targets that are not their oldest one (every target's).
    pub duplicates: Vec<crate::duplicates::Duplicate>,
}

/// Reads the template, its destination, its workspace's sources and connections, and selects
/// the targets.
///
/// The workspace is the template's, so the lists cannot be filtered by it before the template
/// is read; their first pages are read unfiltered *together with* the template instead (see
/// [`Client::rest_of`]), and, with the workspace known, their remaining pages together with the
/// destination. A template given by id thus costs no round trip of its own. A template given
/// by name is found by listing every connection the token sees, all pages (a second connection
/// of that name may be on the last one), so the sources' first page is all that can go with it.
///
/// `writing` is `apply`'s (`plan` and `status` write nothing).
///
/// With a lease (`apply`), the connections are listed only once no other run can write (see
/// [`crate::lease`]), while the lease's last step (the gate's rename) goes: by id, the template
/// is read with the sources' first page, then the lease is taken and the connections listed;
/// by name, the connections the template was found among are listed again for its workspace
/// then. The workspace's tags come from taking the lease.
///
/// `on_connections` sees each page of connections as it is read, before the template is sure
/// (`status` starts reading the copies' last syncs from them).
pub async fn resolve(
    plan: &Plan,
    client: &Client,
    reporter: &Arc<dyn Reporter>,
    writing: Option<Writing<'_>>,
    on_connections: &OnConnections<'_>,
) -> Result<Resolved, ResolveError> {
    let lease = writing.as_ref().map(|w| w.lease);
    reporter.step_started(Step::Template);
    reporter.step_started(Step::Sources);
    // Under a lease, the connections are listed once it is free: their step starts then.
    if lease.is_none() {
        reporter.step_started(Step::Connections);
    }
    let first_sources = client.first_page::<SourceResponse>("/sources");
    let (template, first_sources) = futures::join!(
        template(plan, client, reporter, lease.is_none(), on_connections),
        first_sources
    );
    let (template, listed) = template?;
    let first_sources = first_sources.map_err(|source| ResolveError::Request {
        what: "sources",
        source,
    })?;
    reporter.step_advanced(Step::Template, 1);
    reporter.step_finished(Step::Template, &template.name);

    let workspace = template.workspace_id;
    let destination = client
        .destination(template.destination_id)
        .map_err(|source| ResolveError::Request {
            what: "destination",
            source,
        });
    let ahead = writing.and_then(|w| ReadAhead::new(w, &listed, &template, client));
    let sources = async {
        let sources = client
            .rest_of(first_sources, workspace, |page| {
                reporter.step_advanced(Step::Sources, page.len() as u64);
                if let Some(ahead) = &ahead {
                    ahead.early(plan, page);
                }
            })
            .await
            .map_err(|source| ResolveError::Request {
                what: "sources",
                source,
            })?;
        reporter.step_finished(Step::Sources, &count(sources.len(), "source"));
        let targets = select(plan, &template, &sources, client).await;
        if let Some(ahead) = &ahead {
            ahead.rest(&targets).await;
        }
        Ok((sources, targets))
    };
    let connections = workspace_connections(
        plan,
        client,
        reporter,
        workspace,
        lease,
        listed,
        on_connections,
    );
    let (destination, (sources, targets), (connections, tags, lease_notes)) =
        futures::try_join!(destination, sources, connections)?;

    let owner_tag = owner::find(&tags, workspace, &plan.owner).cloned();
    let targeted: BTreeSet<uuid::Uuid> = targets
        .iter()
        .filter_map(|t| t.source.as_ref().ok().map(|s| s.id))
        .collect();
    let source_names: BTreeMap<uuid::Uuid, String> =
        sources.into_iter().map(|s| (s.source_id, s.name)).collect();
    let owner = owner_tag.as_ref().map(|t| t.tag_id);
    let orphans = orphans::find(&connections, owner, &template, &targeted, &source_names);
    let duplicates =
        crate::duplicates::find(&connections, owner, &template, &targeted, &source_names);
    Ok(Resolved {
        template,
        destination,
        connections: crate::duplicates::without(connections, &duplicates),
        targets,
        owner_tag,
        orphans,
        lease_notes,
        duplicates,
    })
}

/// The workspace's live connections and its tags, and what is to be said about the lease. With
/// a `lease`, it is taken first and the connections are listed after; without, the connections
/// (whatever of them `listed` holds, and the rest) are read with the tags, and a lease held by
/// a running apply is noted.
async fn workspace_connections(
    plan: &Plan,
    client: &Client,
    reporter: &Arc<dyn Reporter>,
    workspace: uuid::Uuid,
    lease: Option<&Lease>,
    listed: Listed,
    on_connections: &OnConnections<'_>,
) -> Result<(Vec<ConnectionResponse>, Vec<Tag>, Vec<String>), ResolveError> {
    let connections_error = |source| ResolveError::Request {
        what: "connections",
        source,
    };
    let on_page = |page: &[ConnectionResponse]| {
        reporter.step_advanced(Step::Connections, page.len() as u64);
        on_connections(page);
    };
    let mut lease_notes = Vec::new();
    let (connections, tags) = match (lease, listed) {
        (Some(lease), _) => {
            reporter.step_started(Step::Lease);
            let started = std::time::Instant::now();
            let waited = std::cell::Cell::new(false);
            let take = lease
                .take(client, workspace, |waiting| {
                    reporter.log(0, waiting);
                    reporter.step_note(Step::Lease, "waiting for it");
                    waited.set(true);
                })
                .map_err(ResolveError::from);
            // Listed as soon as no other run can write (the gate is this run's and no lease
            // was found), alongside the rest of the take: the gate's rename.
            let listing = async {
                lease.clear().await;
                reporter.step_started(Step::Connections);
                client
                    .connections(Some(workspace), on_page)
                    .await
                    .map_err(connections_error)
            };
            let (taken, connections) = futures::try_join!(take, listing)?;
            // A takeover is said in full among the notes.
            let summary = match (&taken.took_over, waited.get()) {
                (Some(_), _) => "taken over (a stale one)".to_string(),
                (None, true) => format!("taken after {} s", started.elapsed().as_secs()),
                (None, false) => "taken".to_string(),
            };
            reporter.step_finished(Step::Lease, &summary);
            lease_notes.extend(
                taken
                    .took_over
                    .map(|holder| format!("took over the plan's stale lease from {holder}")),
            );
            (connections, taken.tags)
        }
        (None, listed) => {
            let connections = async {
                match listed {
                    Listed::All(all) => Ok(all),
                    Listed::First(first) => client
                        .rest_of(first, workspace, on_page)
                        .await
                        .map_err(connections_error),
                    Listed::Nothing => client
                        .connections(Some(workspace), on_page)
                        .await
                        .map_err(connections_error),
                }
            };
            let tags = client
                .tags(workspace)
                .map_err(|source| ResolveError::Request {
                    what: "workspace's tags",
                    source,
                });
            let (connections, tags) = futures::try_join!(connections, tags)?;
            let now = client.server_now();
            lease_notes.extend(lease::holders(&tags, workspace, &plan.owner).iter().map(
                |holder| {
                    format!(
                        "the plan's lease is held by {}: an apply of this plan is running, \
                         and what it writes is not in this preview",
                        holder.describe(now)
                    )
                },
            ));
            (connections, tags)
        }
    };
    let live: Vec<ConnectionResponse> = connections
        .into_iter()
        .filter(|c| c.workspace_id == workspace && c.status != ConnectionStatus::Deprecated)
        .collect();
    reporter.step_finished(Step::Connections, &count(live.len(), "connection"));
    Ok((live, tags, lease_notes))
}

/// The template alone (`replicate unlock` needs its workspace).
pub async fn find_template(
    plan: &Plan,
    client: &Client,
) -> Result<ConnectionResponse, ResolveError> {
    let silent: Arc<dyn Reporter> = Arc::new(crate::report::events::Silent);
    let (template, _) = template(plan, client, &silent, false, &|_| {}).await?;
    Ok(template)
}

/// What a run that writes brings to resolve.
#[derive(Debug, Clone, Copy)]
pub struct Writing<'a> {
    /// Taken before the connections are listed.
    pub lease: &'a Lease,
    /// `--target`: the targets kept after resolve (none: all); no other's catalog is read ahead.
    pub only: &'a [Glob],
}

/// Told of each page of connections as it is read.
pub type OnConnections<'a> = dyn Fn(&[ConnectionResponse]) + Sync + 'a;

/// How many waves of catalogs `apply` reads ahead before its lease is known to be free.
const EARLY_WAVES: usize = 2;

/// `apply`'s reads of catalogs ahead (see [`Client::read_ahead_catalogs`]): while the lease is
/// taken and the connections listed again under it, the catalogs of the targets that had no
/// copy when the template was found by name are read already, so that the first creates wait
/// for neither. Which targets need a copy is decided later, from the listing under the lease;
/// a catalog read here for a target that has one by then is read for nothing, never used.
///
/// Before the lease is known to be free, at most two waves ([`EARLY_WAVES`] × the client's
/// concurrency) are read, from the sources' pages as they arrive: taking the lease is two
/// round trips from there, during which the slots would be idle otherwise (one wave leaves
/// them idle for the second); if another run holds the lease (and may be making these very
/// copies), no more than that is wasted. The rest once [`Lease::clear`].
struct ReadAhead<'a> {
    lease: &'a Lease,
    /// `--target`: only these targets' catalogs.
    only: &'a [Glob],
    client: &'a Client,
    /// The sources with a live connection to the template's destination, before the lease.
    paired: HashSet<uuid::Uuid>,
    template_source: uuid::Uuid,
    destination: uuid::Uuid,
    /// Reads the early waves may still start.
    budget: std::cell::Cell<usize>,
}

impl<'a> ReadAhead<'a> {
    /// Only when every connection was listed to find the template by name: a template given by
    /// id lists nothing before the lease, so nothing is known to lack a copy.
    fn new(
        writing: Writing<'a>,
        listed: &Listed,
        template: &ConnectionResponse,
        client: &'a Client,
    ) -> Option<Self> {
        let Listed::All(all) = listed else {
            return None;
        };
        // The destination is in the template's workspace: so are the connections into it.
        let paired = crate::existing::sources_into(all, template.destination_id);
        Some(ReadAhead {
            lease: writing.lease,
            only: writing.only,
            client,
            paired,
            template_source: template.source_id,
            destination: template.destination_id,
            budget: std::cell::Cell::new(EARLY_WAVES * client.concurrency()),
        })
    }

    /// The targets among one page of sources (as far as one page can tell) without a copy, up
    /// to what is left of the early waves.
    fn early(&self, plan: &Plan, page: &[SourceResponse]) {
        let left = self.budget.get();
        if left == 0 {
            return;
        }
        let targets = select_targets(plan, self.template_source, page);
        let bare: Vec<uuid::Uuid> = self.bare(&targets).take(left).collect();
        self.budget.set(left - bare.len());
        self.client.read_ahead_catalogs(bare, self.destination);
    }

    /// Every target without a copy, once the lease is known to be free.
    async fn rest(&self, targets: &[ResolvedTarget]) {
        self.lease.clear().await;
        self.client
            .read_ahead_catalogs(self.bare(targets), self.destination);
    }

    fn bare<'t>(&'t self, targets: &'t [ResolvedTarget]) -> impl Iterator<Item = uuid::Uuid> + 't {
        targets
            .iter()
            .filter_map(|t| t.source.as_ref().ok())
            .filter(|s| crate::select::targeted(&s.name, self.only))
            .map(|s| s.id)
            .filter(|id| !self.paired.contains(id))
    }
}

/// The connections read while finding the template.
enum Listed {
    /// Every connection the token sees (the template was found by name among them).
    All(Vec<ConnectionResponse>),
    /// The first page of them, read alongside the template (given by id).
    First(FirstPage<ConnectionResponse>),
    /// None yet: they are listed once the lease is held.
    Nothing,
}

/// The template connection, and the connections read with it. When it is named rather than
/// given by id, every connection the token can see is listed to find it, and that listing is
/// kept so the workspace is not listed twice; by id, the first page of connections is read at
/// the same time, unless `read_first_page` is off (the lease must be held first).
async fn template(
    plan: &Plan,
    client: &Client,
    reporter: &Arc<dyn Reporter>,
    read_first_page: bool,
    on_connections: &OnConnections<'_>,
) -> Result<(ConnectionResponse, Listed), ResolveError> {
    let request_error = |source| ResolveError::TemplateRequest {
        reference: plan.template.clone(),
        source,
    };
    match &plan.template {
        Reference::Id(id) if !read_first_page => {
            let template = client.connection(*id).await.map_err(request_error)?;
            Ok((template, Listed::Nothing))
        }
        Reference::Id(id) => {
            let (template, first) = futures::join!(
                client.connection(*id),
                client.first_page::<ConnectionResponse>("/connections")
            );
            let template = template.map_err(request_error)?;
            let first = first.map_err(|source| ResolveError::Request {
                what: "connections",
                source,
            })?;
            Ok((template, Listed::First(first)))
        }
        Reference::Name(name) => {
            // Under a lease the workspace is listed again once it is held: counted then.
            let all = client
                .connections(None, |page| {
                    if read_first_page {
                        reporter.step_advanced(Step::Connections, page.len() as u64);
                        on_connections(page);
                    }
                })
                .await
                .map_err(request_error)?;
            let mut found = all
                .iter()
                .filter(|c| &c.name == name && c.status != ConnectionStatus::Deprecated);
            match (found.next(), found.next()) {
                (None, _) => Err(ResolveError::TemplateNotFound {
                    name: name.clone(),
                    suggestions: suggest::names(
                        name,
                        all.iter()
                            .filter(|c| c.status != ConnectionStatus::Deprecated)
                            .map(|c| c.name.as_str()),
                    )
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
                }),
                (Some(one), None) => {
                    let one = one.clone();
                    Ok((one, Listed::All(all)))
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

/// Selects the targets, then asks the server about ids that are not in the workspace, so the
/// error says whether the source exists elsewhere.
async fn select(
    plan: &Plan,
    template: &ConnectionResponse,
    sources: &[SourceResponse],
    client: &Client,
) -> Vec<ResolvedTarget> {
    let mut targets = select_targets(plan, template.source_id, sources);
    for target in &mut targets {
        let Err(SelectError::UnknownId(id)) = target.source else {
            continue;
        };
        target.source = Err(match client.source(id).await {
            Ok(s) => SelectError::OtherWorkspace {
                id,
                name: s.name,
                workspace: s.workspace_id,
                expected: template.workspace_id,
            },
            Err(e) if e.status() == Some(404) => SelectError::NoSuchId(id),
            Err(e) => SelectError::Lookup {
                id,
                message: e.to_string(),
            },
        });
    }
    targets
}
