//! The sandbox's in-memory state: workspaces, destinations, sources with their catalogs, tags and
//! connections, with the indices that keep every request cheap.
//!
//! Objects live in vectors in creation order, which is also the order lists are paged in. Each
//! kind has a hash index by id and, per workspace, the positions of its objects, so a GET is
//! one lookup and a page of a one-workspace list is one slice. Connections keep a second
//! per-workspace index of the live (not `deprecated`) ones, since lists leave deleted
//! connections out by default. Sources and destinations are never removed, so a check made
//! under a read lock still holds when a create is inserted under the write lock.
//!
//! Connections are stored as the server keeps them: the cron expression without its time zone,
//! mapper secrets in clear, `selectedFields` absent when the stream has no field selection.
//! [`rendered`] turns one into what a read returns.

use super::catalog::{Catalog, CatalogStream, DestinationSyncMode};
use super::problem::{ApiError, MASK};
use super::seed::{FieldPath, Seed, SeedConnection, SeedError, derived_id};
use super::validate;
use crate::wire::{
    ConnectionCreateRequest, ConnectionPatchRequest, ConnectionResponse,
    ConnectionScheduleResponse, ConnectionStatus, DestinationResponse, NamespaceDefinition,
    NonBreakingSchemaUpdatesBehavior, ScheduleType, ScheduleTypeWithBasic, SelectedFieldInfo,
    SourceResponse, StreamConfiguration, StreamConfigurations, StreamMapperType, Tag,
    WorkspaceResponse,
};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

/// `createdAt` of seed objects that do not set one: 2026-01-01T00:00:00Z, so reads are stable.
pub const SEED_CREATED_AT: i64 = 1_767_225_600;

/// A destination and the destination sync modes it supports.
#[derive(Debug, Clone)]
pub struct Destination {
    pub response: DestinationResponse,
    pub sync_modes: Vec<DestinationSyncMode>,
}

/// A source and what it discovers. Sources made by `--sources N` share their template's catalog.
#[derive(Debug, Clone)]
pub struct Source {
    pub response: SourceResponse,
    pub catalog: Arc<Catalog>,
}

/// Positions of one kind of object, overall and per workspace, in creation order.
#[derive(Debug, Default)]
struct Positions {
    all: Vec<usize>,
    by_workspace: HashMap<Uuid, Vec<usize>>,
}

impl Positions {
    fn push(&mut self, workspace: Uuid, position: usize) {
        self.all.push(position);
        self.by_workspace
            .entry(workspace)
            .or_default()
            .push(position);
    }

    fn remove(&mut self, workspace: Uuid, position: usize) {
        remove_sorted(&mut self.all, position);
        if let Some(list) = self.by_workspace.get_mut(&workspace) {
            remove_sorted(list, position);
        }
    }

    /// The lists to merge for a workspace filter (none: every workspace).
    fn lists(&self, workspaces: &[Uuid]) -> Vec<&[usize]> {
        if workspaces.is_empty() {
            return vec![&self.all];
        }
        let unique: HashSet<&Uuid> = workspaces.iter().collect();
        unique
            .into_iter()
            .filter_map(|w| self.by_workspace.get(w).map(Vec::as_slice))
            .collect()
    }
}

fn remove_sorted(list: &mut Vec<usize>, position: usize) {
    if let Ok(i) = list.binary_search(&position) {
        list.remove(i);
    }
}

/// One page of the union of sorted position lists, optionally filtered. A single unfiltered
/// list is sliced directly; several are merged lazily, so a page costs `offset + limit` steps.
fn page(
    lists: &[&[usize]],
    offset: usize,
    limit: usize,
    keep: impl Fn(usize) -> bool,
    filtered: bool,
) -> Vec<usize> {
    if let ([only], false) = (lists, filtered) {
        let start = offset.min(only.len());
        let end = offset.saturating_add(limit).min(only.len());
        return only[start..end].to_vec();
    }
    let mut heads = vec![0usize; lists.len()];
    let merged = std::iter::from_fn(|| {
        let (list, _) = lists
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.get(heads[i]).map(|p| (i, *p)))
            .min_by_key(|(_, p)| *p)?;
        let position = lists[list][heads[list]];
        heads[list] += 1;
        Some(position)
    });
    merged
        .filter(|p| keep(*p))
        .skip(offset)
        .take(limit)
        .collect()
}

/// Seed names resolved to ids while a store is built.
#[derive(Debug, Default)]
struct Names {
    workspaces: HashMap<String, Uuid>,
    first_workspace: Option<Uuid>,
    destinations: HashMap<String, Uuid>,
    sources: HashMap<String, Uuid>,
    tags: HashMap<String, Uuid>,
}

impl Names {
    /// A named workspace, or the first one when no name is given.
    fn workspace(&self, name: Option<&str>, path: &str) -> Result<Uuid, SeedError> {
        match name {
            Some(name) => self.workspaces.get(name).copied().ok_or_else(|| {
                SeedError::invalid(
                    format!("{path}.workspace"),
                    format!("no workspace named `{name}`"),
                )
            }),
            None => self.first_workspace.ok_or_else(|| {
                SeedError::invalid("workspaces", "the seed needs at least one workspace")
            }),
        }
    }
}

/// The whole state. Callers hold it behind a lock.
#[derive(Debug, Default)]
pub struct Store {
    workspaces: Vec<WorkspaceResponse>,
    workspace_ids: HashMap<Uuid, usize>,
    destinations: Vec<Destination>,
    destination_ids: HashMap<Uuid, usize>,
    destination_positions: Positions,
    sources: Vec<Source>,
    source_ids: HashMap<Uuid, usize>,
    source_positions: Positions,
    tags: Vec<Tag>,
    tag_ids: HashMap<Uuid, usize>,
    connections: Vec<ConnectionResponse>,
    connection_ids: HashMap<Uuid, usize>,
    connection_positions: Positions,
    live_positions: Positions,
}

impl Store {
    /// Builds the state a seed describes, plus `extra_sources` copies of its template source
    /// (`bulk-000001`…, in the first workspace). Seeded connections pass the create rules.
    pub fn from_seed(seed: &Seed, extra_sources: usize) -> Result<Store, SeedError> {
        let mut store = Store::default();
        let mut names = Names::default();
        store.seed_workspaces(seed, &mut names)?;
        let mut catalogs = HashMap::new();
        for (name, streams) in &seed.catalogs {
            catalogs.insert(name.as_str(), Arc::new(catalog(name, streams)?));
        }
        store.seed_destinations(seed, &mut names)?;
        store.seed_sources(seed, &catalogs, &mut names)?;
        store.seed_bulk_sources(seed, &names, extra_sources)?;
        store.seed_tags(seed, &mut names)?;
        for (i, c) in seed.connections.iter().enumerate() {
            store.seed_connection(c, &format!("connections[{i}]"), &names)?;
        }
        Ok(store)
    }

    fn seed_workspaces(&mut self, seed: &Seed, names: &mut Names) -> Result<(), SeedError> {
        for (i, w) in seed.workspaces.iter().enumerate() {
            let path = format!("workspaces[{i}]");
            let id = w.id.unwrap_or_else(|| derived_id("workspace", &w.name));
            unique(&mut names.workspaces, &w.name, id, &path, "workspace")?;
            if self.workspace_ids.insert(id, i).is_some() {
                return Err(duplicate_id(&path, id));
            }
            names.first_workspace.get_or_insert(id);
            self.workspaces.push(WorkspaceResponse {
                workspace_id: id,
                name: w.name.clone(),
                data_residency: w.data_residency.clone().unwrap_or_else(|| "auto".into()),
                notifications: Map::new(),
            });
        }
        Ok(())
    }

    fn seed_destinations(&mut self, seed: &Seed, names: &mut Names) -> Result<(), SeedError> {
        for (i, d) in seed.destinations.iter().enumerate() {
            let path = format!("destinations[{i}]");
            let id = d.id.unwrap_or_else(|| derived_id("destination", &d.name));
            unique(&mut names.destinations, &d.name, id, &path, "destination")?;
            let workspace_id = names.workspace(d.workspace.as_deref(), &path)?;
            let position = self.destinations.len();
            if self.destination_ids.insert(id, position).is_some() {
                return Err(duplicate_id(&path, id));
            }
            self.destination_positions.push(workspace_id, position);
            self.destinations.push(Destination {
                response: DestinationResponse {
                    destination_id: id,
                    name: d.name.clone(),
                    destination_type: d.destination_type.clone(),
                    definition_id: d.definition_id.unwrap_or_else(|| {
                        derived_id("destination-definition", &d.destination_type)
                    }),
                    workspace_id,
                    configuration: d.configuration.clone(),
                    created_at: d.created_at.unwrap_or(SEED_CREATED_AT),
                    resource_allocation: None,
                },
                sync_modes: d.sync_modes.clone(),
            });
        }
        Ok(())
    }

    fn seed_sources(
        &mut self,
        seed: &Seed,
        catalogs: &HashMap<&str, Arc<Catalog>>,
        names: &mut Names,
    ) -> Result<(), SeedError> {
        for (i, s) in seed.sources.iter().enumerate() {
            let path = format!("sources[{i}]");
            let id = s.id.unwrap_or_else(|| derived_id("source", &s.name));
            unique(&mut names.sources, &s.name, id, &path, "source")?;
            let catalog = catalogs.get(s.catalog.as_str()).cloned().ok_or_else(|| {
                SeedError::invalid(
                    format!("{path}.catalog"),
                    format!("no catalog named `{}`", s.catalog),
                )
            })?;
            let response = SourceResponse {
                source_id: id,
                name: s.name.clone(),
                source_type: s.source_type.clone(),
                definition_id: s
                    .definition_id
                    .unwrap_or_else(|| derived_id("source-definition", &s.source_type)),
                workspace_id: names.workspace(s.workspace.as_deref(), &path)?,
                configuration: s.configuration.clone(),
                created_at: s.created_at.unwrap_or(SEED_CREATED_AT),
                resource_allocation: None,
            };
            self.add_source(response, catalog, &path)?;
        }
        Ok(())
    }

    fn seed_bulk_sources(
        &mut self,
        seed: &Seed,
        names: &Names,
        count: usize,
    ) -> Result<(), SeedError> {
        if count == 0 {
            return Ok(());
        }
        let template = seed
            .template_source()
            .and_then(|t| names.sources.get(t.name.as_str()))
            .and_then(|id| self.source(*id))
            .cloned()
            .ok_or_else(|| {
                SeedError::invalid(
                    "sources",
                    "--sources needs a source to copy, and the seed has none",
                )
            })?;
        let workspace_id = names.workspace(None, "sources")?;
        self.sources.reserve(count);
        for n in 1..=count {
            let name = format!("bulk-{n:06}");
            let response = SourceResponse {
                source_id: derived_id("source", &name),
                name,
                workspace_id,
                ..template.response.clone()
            };
            self.add_source(response, template.catalog.clone(), "sources")?;
        }
        Ok(())
    }

    fn seed_tags(&mut self, seed: &Seed, names: &mut Names) -> Result<(), SeedError> {
        for (i, t) in seed.tags.iter().enumerate() {
            let path = format!("tags[{i}]");
            let id = t.id.unwrap_or_else(|| derived_id("tag", &t.name));
            unique(&mut names.tags, &t.name, id, &path, "tag")?;
            if self.tag_ids.insert(id, self.tags.len()).is_some() {
                return Err(duplicate_id(&path, id));
            }
            self.tags.push(Tag {
                tag_id: id,
                workspace_id: names.workspace(t.workspace.as_deref(), &path)?,
                name: t.name.clone(),
                color: t.color.clone(),
            });
        }
        Ok(())
    }

    fn seed_connection(
        &mut self,
        c: &SeedConnection,
        path: &str,
        names: &Names,
    ) -> Result<(), SeedError> {
        let lookup = |names: &HashMap<String, Uuid>, name: &str, field: &str, kind: &str| {
            names.get(name).copied().ok_or_else(|| {
                SeedError::invalid(
                    format!("{path}.{field}"),
                    format!("no {kind} named `{name}`"),
                )
            })
        };
        let source_id = lookup(&names.sources, &c.source, "source", "source")?;
        let destination_id = lookup(
            &names.destinations,
            &c.destination,
            "destination",
            "destination",
        )?;
        let mut tags = Vec::new();
        for (j, name) in c.tags.iter().enumerate() {
            let id = lookup(&names.tags, name, &format!("tags[{j}]"), "tag")?;
            tags.extend(self.tag(id).cloned());
        }
        let request = seed_request(c, source_id, destination_id, tags);
        let name = c
            .name
            .clone()
            .unwrap_or_else(|| format!("{} → {}", c.source, c.destination));
        let id = c.id.unwrap_or_else(|| derived_id("connection", &name));
        let mut mapper = 0u32;
        let mut new_id = || {
            mapper += 1;
            derived_id("mapper", &format!("{id}/{mapper}"))
        };
        let created_at = c.created_at.unwrap_or(SEED_CREATED_AT);
        let connection = self
            .prepare_create(request, id, created_at, &mut new_id)
            .map_err(|e| SeedError::invalid(path, e.0.message()))?;
        if self.connection_ids.contains_key(&id) {
            return Err(duplicate_id(path, id));
        }
        self.insert_connection(connection);
        Ok(())
    }

    fn add_source(
        &mut self,
        response: SourceResponse,
        catalog: Arc<Catalog>,
        path: &str,
    ) -> Result<(), SeedError> {
        let position = self.sources.len();
        if self
            .source_ids
            .insert(response.source_id, position)
            .is_some()
        {
            return Err(duplicate_id(path, response.source_id));
        }
        self.source_positions.push(response.workspace_id, position);
        self.sources.push(Source { response, catalog });
        Ok(())
    }

    pub fn workspace(&self, id: Uuid) -> Option<&WorkspaceResponse> {
        self.workspace_ids.get(&id).map(|&i| &self.workspaces[i])
    }

    pub fn source(&self, id: Uuid) -> Option<&Source> {
        self.source_ids.get(&id).map(|&i| &self.sources[i])
    }

    pub fn destination(&self, id: Uuid) -> Option<&Destination> {
        self.destination_ids
            .get(&id)
            .map(|&i| &self.destinations[i])
    }

    pub fn tag(&self, id: Uuid) -> Option<&Tag> {
        self.tag_ids.get(&id).map(|&i| &self.tags[i])
    }

    /// A connection as stored (see [`rendered`] for what a read returns).
    pub fn connection(&self, id: Uuid) -> Option<&ConnectionResponse> {
        self.connection_ids.get(&id).map(|&i| &self.connections[i])
    }

    /// How many connections are not deleted.
    pub fn live_connections(&self) -> usize {
        self.live_positions.all.len()
    }

    /// The first workspace id in `ids` that does not exist.
    pub fn unknown_workspace(&self, ids: &[Uuid]) -> Option<Uuid> {
        ids.iter()
            .copied()
            .find(|id| !self.workspace_ids.contains_key(id))
    }

    pub fn list_workspaces(
        &self,
        ids: &[Uuid],
        offset: usize,
        limit: usize,
    ) -> Vec<WorkspaceResponse> {
        let wanted: HashSet<&Uuid> = ids.iter().collect();
        self.workspaces
            .iter()
            .filter(|w| wanted.is_empty() || wanted.contains(&w.workspace_id))
            .skip(offset)
            .take(limit)
            .cloned()
            .collect()
    }

    pub fn list_sources(
        &self,
        workspaces: &[Uuid],
        offset: usize,
        limit: usize,
    ) -> Vec<SourceResponse> {
        let lists = self.source_positions.lists(workspaces);
        page(&lists, offset, limit, |_| true, false)
            .into_iter()
            .map(|i| self.sources[i].response.clone())
            .collect()
    }

    pub fn list_destinations(
        &self,
        workspaces: &[Uuid],
        offset: usize,
        limit: usize,
    ) -> Vec<DestinationResponse> {
        let lists = self.destination_positions.lists(workspaces);
        page(&lists, offset, limit, |_| true, false)
            .into_iter()
            .map(|i| self.destinations[i].response.clone())
            .collect()
    }

    /// A page of connections as reads return them. A tag filter keeps connections carrying any
    /// of the tags.
    pub fn list_connections(
        &self,
        workspaces: &[Uuid],
        tags: &[Uuid],
        include_deleted: bool,
        offset: usize,
        limit: usize,
    ) -> Vec<ConnectionResponse> {
        let positions = if include_deleted {
            &self.connection_positions
        } else {
            &self.live_positions
        };
        let lists = positions.lists(workspaces);
        let wanted: HashSet<&Uuid> = tags.iter().collect();
        let keep = |i: usize| {
            wanted.is_empty()
                || self.connections[i]
                    .tags
                    .iter()
                    .any(|t| wanted.contains(&t.tag_id))
        };
        page(&lists, offset, limit, keep, !wanted.is_empty())
            .into_iter()
            .map(|i| rendered(&self.connections[i]))
            .collect()
    }

    pub fn list_tags(&self, workspaces: &[Uuid]) -> Vec<Tag> {
        let wanted: HashSet<&Uuid> = workspaces.iter().collect();
        self.tags
            .iter()
            .filter(|t| wanted.is_empty() || wanted.contains(&t.workspace_id))
            .cloned()
            .collect()
    }

    /// Runs the create rules and returns the connection to insert, in the order the real
    /// server checks: schedule, destination, source, workspace, streams, tags.
    pub fn prepare_create(
        &self,
        request: ConnectionCreateRequest,
        id: Uuid,
        created_at: i64,
        new_id: &mut dyn FnMut() -> Uuid,
    ) -> Result<ConnectionResponse, ApiError> {
        let schedule = request
            .schedule
            .as_ref()
            .map(validate::check_schedule)
            .transpose()?;
        let destination = self.destination(request.destination_id).ok_or_else(|| {
            ApiError::not_found("destination", request.destination_id.to_string())
        })?;
        let source = self
            .source(request.source_id)
            .ok_or_else(|| ApiError::not_found("source", request.source_id.to_string()))?;
        let workspace_id = destination.response.workspace_id;
        if source.response.workspace_id != workspace_id {
            return Err(ApiError::bad_request(format!(
                "Source {} is in workspace {} but destination {} is in workspace {}: a connection \
                 needs both in the same workspace.",
                source.response.source_id,
                source.response.workspace_id,
                destination.response.destination_id,
                workspace_id
            )));
        }
        let streams = match request.configurations {
            Some(c) if !c.streams.is_empty() => validate::configure_streams(
                &source.catalog,
                &destination.sync_modes,
                &c.streams,
                &[],
                new_id,
            )?,
            _ => validate::default_streams(&source.catalog),
        };
        let tags = self.resolve_tags(request.tags.as_deref().unwrap_or_default(), workspace_id)?;
        Ok(ConnectionResponse {
            connection_id: id,
            name: request.name.unwrap_or_else(|| {
                format!("{} → {}", source.response.name, destination.response.name)
            }),
            source_id: request.source_id,
            destination_id: request.destination_id,
            workspace_id,
            status: request.status.unwrap_or(ConnectionStatus::Active),
            schedule: stored_schedule(schedule.as_ref()),
            non_breaking_schema_updates_behavior: Some(
                request
                    .non_breaking_schema_updates_behavior
                    .unwrap_or(NonBreakingSchemaUpdatesBehavior::Ignore),
            ),
            namespace_definition: Some(
                request
                    .namespace_definition
                    .unwrap_or(NamespaceDefinition::Destination),
            ),
            namespace_format: request.namespace_format,
            prefix: Some(request.prefix.unwrap_or_default()),
            configurations: StreamConfigurations { streams },
            created_at,
            tags,
            status_reason: None,
        })
    }

    /// Stores a connection [`Store::prepare_create`] accepted.
    pub fn insert_connection(&mut self, connection: ConnectionResponse) {
        let position = self.connections.len();
        self.connection_ids
            .insert(connection.connection_id, position);
        self.connection_positions
            .push(connection.workspace_id, position);
        if connection.status != ConnectionStatus::Deprecated {
            self.live_positions.push(connection.workspace_id, position);
        }
        self.connections.push(connection);
    }

    /// Applies a patch: only the fields sent change; streams are replaced only when some are
    /// sent, after the same checks as a create. A `locked` connection refuses any patch.
    pub fn patch(
        &mut self,
        id: Uuid,
        request: ConnectionPatchRequest,
        new_id: &mut dyn FnMut() -> Uuid,
    ) -> Result<ConnectionResponse, ApiError> {
        let schedule = request
            .schedule
            .as_ref()
            .map(validate::check_schedule)
            .transpose()?;
        let position = *self
            .connection_ids
            .get(&id)
            .ok_or_else(|| ApiError::not_found("connection", id.to_string()))?;
        let current = &self.connections[position];
        if current.status == ConnectionStatus::Locked {
            return Err(ApiError::connection_locked(id));
        }
        let streams = match &request.configurations {
            Some(c) if !c.streams.is_empty() => {
                let source = self
                    .source(current.source_id)
                    .ok_or_else(|| ApiError::not_found("source", current.source_id.to_string()))?;
                let destination = self.destination(current.destination_id).ok_or_else(|| {
                    ApiError::not_found("destination", current.destination_id.to_string())
                })?;
                Some(validate::configure_streams(
                    &source.catalog,
                    &destination.sync_modes,
                    &c.streams,
                    &current.configurations.streams,
                    new_id,
                )?)
            }
            _ => None,
        };
        let tags = match &request.tags {
            Some(tags) => Some(self.resolve_tags(tags, current.workspace_id)?),
            None => None,
        };
        let mut updated = current.clone();
        if let Some(name) = request.name {
            updated.name = name;
        }
        if schedule.is_some() {
            updated.schedule = stored_schedule(schedule.as_ref());
        }
        if let Some(v) = request.namespace_definition {
            updated.namespace_definition = Some(v);
        }
        if let Some(v) = request.namespace_format {
            updated.namespace_format = Some(v);
        }
        if let Some(v) = request.prefix {
            updated.prefix = Some(v);
        }
        if let Some(v) = request.non_breaking_schema_updates_behavior {
            updated.non_breaking_schema_updates_behavior = Some(v);
        }
        if let Some(v) = request.status {
            updated.status = v;
        }
        if let Some(streams) = streams {
            updated.configurations.streams = streams;
        }
        if let Some(tags) = tags {
            updated.tags = tags;
        }
        let response = rendered(&updated);
        self.replace(position, updated);
        Ok(response)
    }

    /// Soft delete: the status becomes `deprecated`. Deleting twice is not an error.
    pub fn delete(&mut self, id: Uuid) -> Result<(), ApiError> {
        let position = *self
            .connection_ids
            .get(&id)
            .ok_or_else(|| ApiError::not_found("connection", id.to_string()))?;
        let mut updated = self.connections[position].clone();
        updated.status = ConnectionStatus::Deprecated;
        self.replace(position, updated);
        Ok(())
    }

    fn replace(&mut self, position: usize, updated: ConnectionResponse) {
        let was_live = self.connections[position].status != ConnectionStatus::Deprecated;
        let is_live = updated.status != ConnectionStatus::Deprecated;
        let workspace = updated.workspace_id;
        self.connections[position] = updated;
        match (was_live, is_live) {
            (true, false) => self.live_positions.remove(workspace, position),
            (false, true) => {
                let all = &mut self.live_positions.all;
                let at = all.partition_point(|p| *p < position);
                all.insert(at, position);
                let list = self
                    .live_positions
                    .by_workspace
                    .entry(workspace)
                    .or_default();
                let at = list.partition_point(|p| *p < position);
                list.insert(at, position);
            }
            _ => {}
        }
    }

    /// Tags travel as full objects; each must exist and belong to the connection's workspace.
    /// The stored tag wins over whatever name or colour the request carried.
    fn resolve_tags(&self, tags: &[Tag], workspace: Uuid) -> Result<Vec<Tag>, ApiError> {
        tags.iter()
            .map(|t| {
                let tag = self
                    .tag(t.tag_id)
                    .ok_or_else(|| ApiError::not_found("tag", t.tag_id.to_string()))?;
                if tag.workspace_id == workspace {
                    Ok(tag.clone())
                } else {
                    Err(ApiError::bad_request(format!(
                        "Tag {} belongs to workspace {}, not to the connection's workspace {workspace}.",
                        tag.tag_id, tag.workspace_id
                    )))
                }
            })
            .collect()
    }
}

fn stored_schedule(
    schedule: Option<&crate::wire::ConnectionSchedule>,
) -> ConnectionScheduleResponse {
    match schedule {
        Some(s) if s.schedule_type == ScheduleType::Cron => ConnectionScheduleResponse {
            schedule_type: ScheduleTypeWithBasic::Cron,
            cron_expression: s.cron_expression.clone(),
            basic_timing: None,
        },
        _ => ConnectionScheduleResponse {
            schedule_type: ScheduleTypeWithBasic::Manual,
            cron_expression: None,
            basic_timing: None,
        },
    }
}

/// A stored connection as a read returns it: the cron expression with ` UTC` appended,
/// `selectedFields: []` on streams without field selection, and mapper secrets masked.
pub fn rendered(connection: &ConnectionResponse) -> ConnectionResponse {
    let mut out = connection.clone();
    if let Some(expression) = &mut out.schedule.cron_expression {
        expression.push_str(" UTC");
    }
    for stream in &mut out.configurations.streams {
        stream.selected_fields.get_or_insert_with(Vec::new);
        for mapper in stream.mappers.iter_mut().flatten() {
            if mapper.mapper_type == StreamMapperType::Encryption
                && mapper.mapper_configuration.contains_key("key")
            {
                mapper
                    .mapper_configuration
                    .insert("key".to_string(), Value::String(MASK.to_string()));
            }
        }
    }
    out
}

fn seed_request(
    c: &SeedConnection,
    source_id: Uuid,
    destination_id: Uuid,
    tags: Vec<Tag>,
) -> ConnectionCreateRequest {
    let streams = c
        .streams
        .iter()
        .map(|s| StreamConfiguration {
            name: s.name.clone(),
            namespace: s.namespace.clone(),
            sync_mode: s.sync_mode,
            cursor_field: s.cursor_field.clone(),
            primary_key: s.primary_key.clone(),
            include_files: s.include_files,
            destination_object_name: s.destination_object_name.clone(),
            selected_fields: s.selected_fields.as_ref().map(|fields| {
                fields
                    .iter()
                    .map(|f| SelectedFieldInfo {
                        field_path: f.to_path(),
                    })
                    .collect()
            }),
            mappers: s.mappers.clone(),
        })
        .collect();
    ConnectionCreateRequest {
        name: c.name.clone(),
        source_id,
        destination_id,
        configurations: Some(StreamConfigurations { streams }),
        schedule: c.schedule.clone(),
        data_residency: None,
        namespace_definition: c.namespace_definition,
        namespace_format: c.namespace_format.clone(),
        prefix: c.prefix.clone(),
        non_breaking_schema_updates_behavior: c.non_breaking_schema_updates_behavior,
        status: c.status,
        tags: Some(tags),
    }
}

/// Builds a catalog from its seed form, adding the parents of nested fields and checking that
/// cursor and key name fields the stream has.
/// The deepest field path a seed may declare (real schemas rarely nest past a handful).
const MAX_FIELD_DEPTH: usize = 32;

fn catalog(name: &str, streams: &[super::seed::SeedStream]) -> Result<Catalog, SeedError> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(streams.len());
    for (i, s) in streams.iter().enumerate() {
        let path = format!("catalogs.{name}[{i}]");
        if !seen.insert((s.name.as_str(), s.namespace.as_deref())) {
            return Err(SeedError::invalid(
                format!("{path}.name"),
                format!("stream `{}` appears twice in this namespace", s.name),
            ));
        }
        let mut fields: Vec<Vec<String>> = Vec::new();
        let mut known: HashSet<Vec<String>> = HashSet::new();
        for field in &s.fields {
            let full = match field {
                FieldPath::Top(f) => vec![f.clone()],
                FieldPath::Nested(p) => p.clone(),
            };
            if full.is_empty() || full.iter().any(String::is_empty) {
                return Err(SeedError::invalid(
                    format!("{path}.fields"),
                    "a field path must have non-empty parts",
                ));
            }
            if full.len() > MAX_FIELD_DEPTH {
                return Err(SeedError::invalid(
                    format!("{path}.fields"),
                    format!("a field path may have at most {MAX_FIELD_DEPTH} parts"),
                ));
            }
            // Every prefix of a nested path is a field too; a set keeps this linear.
            for depth in 1..=full.len() {
                let prefix = &full[..depth];
                if !known.contains(prefix) {
                    known.insert(prefix.to_vec());
                    fields.push(prefix.to_vec());
                }
            }
        }
        let stream = CatalogStream {
            name: s.name.clone(),
            namespace: s.namespace.clone(),
            fields,
            sync_modes: s.sync_modes.clone(),
            default_cursor_field: s.default_cursor_field.clone(),
            source_defined_cursor: s.source_defined_cursor_field,
            source_defined_primary_key: s.source_defined_primary_key.clone(),
        };
        if !stream.default_cursor_field.is_empty()
            && !stream.has_field(&stream.default_cursor_field)
        {
            return Err(SeedError::invalid(
                format!("{path}.defaultCursorField"),
                format!(
                    "`{}` is not a field of the stream",
                    stream.default_cursor_field.join(".")
                ),
            ));
        }
        if stream.source_defined_cursor && stream.default_cursor_field.is_empty() {
            return Err(SeedError::invalid(
                format!("{path}.sourceDefinedCursorField"),
                "a source-defined cursor needs a defaultCursorField",
            ));
        }
        if let Some(bad) = stream
            .source_defined_primary_key
            .iter()
            .find(|k| !stream.has_field(k))
        {
            return Err(SeedError::invalid(
                format!("{path}.sourceDefinedPrimaryKey"),
                format!("`{}` is not a field of the stream", bad.join(".")),
            ));
        }
        out.push(stream);
    }
    Ok(Catalog::new(out))
}

fn unique(
    names: &mut HashMap<String, Uuid>,
    name: &str,
    id: Uuid,
    path: &str,
    kind: &str,
) -> Result<(), SeedError> {
    if names.insert(name.to_string(), id).is_some() {
        return Err(SeedError::invalid(
            format!("{path}.name"),
            format!(
                "another {kind} is already named `{name}`; names are how the seed refers to objects"
            ),
        ));
    }
    Ok(())
}

fn duplicate_id(path: &str, id: Uuid) -> SeedError {
    SeedError::invalid(format!("{path}.id"), format!("id {id} is used twice"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_merge_lists_in_creation_order() {
        let a = [0, 3, 4, 9];
        let b = [1, 2, 7];
        assert_eq!(page(&[&a, &b], 0, 4, |_| true, false), [0, 1, 2, 3]);
        assert_eq!(page(&[&a, &b], 4, 10, |_| true, false), [4, 7, 9]);
        assert_eq!(page(&[&a], 3, 10, |_| true, false), [9]);
        assert_eq!(page(&[&a], 30, 10, |_| true, false), Vec::<usize>::new());
        assert_eq!(page(&[&a, &b], 0, 10, |p| p % 2 == 1, true), [1, 3, 7, 9]);
    }
}
