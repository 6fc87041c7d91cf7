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
//! The store starts empty; [`super::seeding`] fills it through the `add_*` methods.
//!
//! Connections are stored as the server keeps them: the cron expression without its time zone,
//! mapper secrets in clear, `selectedFields` absent when the stream has no field selection.
//! [`rendered`] turns one into what a read returns.

use super::catalog::{Catalog, DestinationSyncMode};
use super::jobs::{Job, JobFilter, Jobs, Now};
use super::positions::{Positions, page};
use super::problem::{ApiError, MASK};
use super::tags::Tags;
use super::validate;
use crate::wire::{
    ConnectionCreateRequest, ConnectionPatchRequest, ConnectionResponse,
    ConnectionScheduleResponse, ConnectionStatus, DestinationResponse, JobCreateRequest,
    JobResponse, JobType, NamespaceDefinition, NonBreakingSchemaUpdatesBehavior, ScheduleType,
    ScheduleTypeWithBasic, SourceResponse, StreamConfiguration, StreamConfigurations,
    StreamMapperType, Tag, TagCreateRequest, TagPatchRequest, WorkspaceResponse,
};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

/// What, besides a stream's namespace and name, decides which destination table it writes to.
struct DestinationSettings<'a> {
    namespace_definition: NamespaceDefinition,
    namespace_format: Option<&'a str>,
    prefix: Option<&'a str>,
}

impl<'a> DestinationSettings<'a> {
    fn of(connection: &'a ConnectionResponse) -> Self {
        Self {
            namespace_definition: connection
                .namespace_definition
                .unwrap_or(NamespaceDefinition::Destination),
            namespace_format: connection.namespace_format.as_deref(),
            prefix: connection.prefix.as_deref(),
        }
    }
}

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
    tags: Tags,
    connections: Vec<ConnectionResponse>,
    connection_ids: HashMap<Uuid, usize>,
    connection_positions: Positions,
    live_positions: Positions,
    jobs: Jobs,
    /// `--refuse-conflicting-streams`: Airbyte's `ValidateConflictingDestinationStreams` flag.
    refuse_conflicting_streams: bool,
}

impl Store {
    /// Adds a workspace; `false` when its id is taken.
    pub fn add_workspace(&mut self, workspace: WorkspaceResponse) -> bool {
        if self.workspace_ids.contains_key(&workspace.workspace_id) {
            return false;
        }
        self.workspace_ids
            .insert(workspace.workspace_id, self.workspaces.len());
        self.workspaces.push(workspace);
        true
    }

    /// Adds a destination; `false` when its id is taken.
    pub fn add_destination(&mut self, destination: Destination) -> bool {
        let id = destination.response.destination_id;
        if self.destination_ids.contains_key(&id) {
            return false;
        }
        let position = self.destinations.len();
        self.destination_ids.insert(id, position);
        self.destination_positions
            .push(destination.response.workspace_id, position);
        self.destinations.push(destination);
        true
    }

    /// Adds a source; `false` when its id is taken.
    pub fn add_source(&mut self, source: Source) -> bool {
        let id = source.response.source_id;
        if self.source_ids.contains_key(&id) {
            return false;
        }
        let position = self.sources.len();
        self.source_ids.insert(id, position);
        self.source_positions
            .push(source.response.workspace_id, position);
        self.sources.push(source);
        true
    }

    /// Makes room for `count` more sources (`--sources N` adds them in bulk).
    pub fn reserve_sources(&mut self, count: usize) {
        self.sources.reserve(count);
        self.source_ids.reserve(count);
    }

    /// Adds a tag; `false` when its id is taken.
    pub fn add_tag(&mut self, tag: Tag) -> bool {
        self.tags.add(tag)
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
        self.tags.get(id)
    }

    /// A connection as stored (see [`rendered`] for what a read returns).
    pub fn connection(&self, id: Uuid) -> Option<&ConnectionResponse> {
        self.connection_ids.get(&id).map(|&i| &self.connections[i])
    }

    /// How many connections are not deleted.
    pub fn live_connections(&self) -> usize {
        self.live_positions.len()
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
        self.tags.list(workspaces)
    }

    /// `POST /tags`: the workspace must exist (404), then the tag rules apply.
    pub fn create_tag(&mut self, request: TagCreateRequest, id: Uuid) -> Result<Tag, ApiError> {
        if self.workspace(request.workspace_id).is_none() {
            return Err(ApiError::not_found(
                "workspace",
                request.workspace_id.to_string(),
            ));
        }
        self.tags.create(request, id)
    }

    /// `PATCH /tags/{tagId}`; the connections that carry the tag show its new name and colour.
    pub fn update_tag(&mut self, id: Uuid, request: TagPatchRequest) -> Result<Tag, ApiError> {
        let tag = self.tags.update(id, request)?;
        for connection in &mut self.connections {
            for carried in connection.tags.iter_mut().filter(|t| t.tag_id == id) {
                carried.clone_from(&tag);
            }
        }
        Ok(tag)
    }

    /// `DELETE /tags/{tagId}`; the tag leaves every connection that carried it.
    pub fn delete_tag(&mut self, id: Uuid) -> Result<(), ApiError> {
        self.tags.delete(id)?;
        for connection in &mut self.connections {
            connection.tags.retain(|t| t.tag_id != id);
        }
        Ok(())
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
        let streams = match request.configurations {
            Some(c) if !c.streams.is_empty() => validate::configure_streams(
                &source.catalog,
                &destination.sync_modes,
                &c.streams,
                &[],
                new_id,
            )
            .map_err(|e| {
                if e.status().is_server_error() {
                    ApiError::unexpected_problem_bare()
                } else {
                    e
                }
            })?,
            _ => validate::default_streams(&source.catalog),
        };
        // What follows runs in Airbyte's connection handler, whose every failure the public
        // create answers with a bare 500 (`handleCreateConnectionError`): the duplicate-stream
        // check (above, inside `configure_streams`) and `validateWorkspace` (an
        // IllegalArgumentException: "Source and destination do not belong to the same
        // workspace").
        if source.response.workspace_id != workspace_id {
            return Err(ApiError::unexpected_problem_bare());
        }
        let namespace_definition = request
            .namespace_definition
            .unwrap_or(NamespaceDefinition::Destination);
        // The public create turns this problem, like every other failure of the handler, into a
        // bare 500 (`handleCreateConnectionError`); only a patch shows its body.
        self.check_conflicting_streams(
            request.destination_id,
            &DestinationSettings {
                namespace_definition,
                namespace_format: request.namespace_format.as_deref(),
                prefix: Some(request.prefix.as_deref().unwrap_or_default()),
            },
            &streams,
            None,
        )
        .map_err(|_| ApiError::unexpected_problem_bare())?;
        let tags = self.resolve_tags(request.tags.as_deref().unwrap_or_default(), workspace_id)?;
        Ok(ConnectionResponse {
            connection_id: id,
            // Airbyte's `ConnectionsHandler.createConnection` default.
            name: request.name.unwrap_or_else(|| {
                format!("{} <> {}", source.response.name, destination.response.name)
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
            namespace_definition: Some(namespace_definition),
            namespace_format: request.namespace_format,
            prefix: Some(request.prefix.unwrap_or_default()),
            configurations: StreamConfigurations { streams },
            created_at,
            tags,
            status_reason: None,
        })
    }

    /// `--refuse-conflicting-streams`: refuse creates and patches whose streams would write to
    /// another active connection's destination tables.
    pub fn set_refuse_conflicting_streams(&mut self, on: bool) {
        self.refuse_conflicting_streams = on;
    }

    /// Airbyte's `validateStreamsDoNotConflictWithExistingDestinationStreams`, when the flag is
    /// on: a stream conflicts when an `active` connection to the same destination (other than
    /// `current`) has a stream with the same key. The key is Airbyte's, made of the raw
    /// settings rather than the resolved destination namespace: namespace definition, namespace
    /// format, the stream's (discovered) namespace, prefix and name.
    fn check_conflicting_streams(
        &self,
        destination_id: Uuid,
        settings: &DestinationSettings<'_>,
        streams: &[StreamConfiguration],
        current: Option<Uuid>,
    ) -> Result<(), ApiError> {
        if !self.refuse_conflicting_streams {
            return Ok(());
        }
        let key = |s: &DestinationSettings<'_>, stream: &StreamConfiguration| {
            (
                s.namespace_definition,
                s.namespace_format.map(str::to_string),
                stream.namespace.clone(),
                s.prefix.unwrap_or_default().to_string(),
                stream.name.clone(),
            )
        };
        let mut existing: Vec<(_, Vec<Uuid>, &StreamConfiguration)> = Vec::new();
        for other in self.connections.iter().filter(|c| {
            c.destination_id == destination_id
                && c.status == ConnectionStatus::Active
                && Some(c.connection_id) != current
        }) {
            let theirs = DestinationSettings::of(other);
            for stream in &other.configurations.streams {
                let k = key(&theirs, stream);
                match existing.iter_mut().find(|(ek, _, _)| *ek == k) {
                    Some((_, ids, _)) => ids.push(other.connection_id),
                    None => existing.push((k, vec![other.connection_id], stream)),
                }
            }
        }
        let conflicts: Vec<Value> = streams
            .iter()
            .filter_map(|stream| {
                let k = key(settings, stream);
                existing.iter().find(|(ek, _, _)| *ek == k)
            })
            .map(|(_, ids, stream)| {
                serde_json::json!({
                    "connectionIds": ids,
                    "streamName": stream.name,
                    "streamNamespace": stream.namespace,
                })
            })
            .collect();
        if conflicts.is_empty() {
            Ok(())
        } else {
            Err(ApiError::conflicting_destination_streams(conflicts))
        }
    }

    /// `--job-duration`: how long the jobs started from now on take.
    pub fn set_job_duration(&mut self, duration: std::time::Duration) {
        self.jobs.duration = duration;
    }

    /// The id the next job gets (seeded jobs without an id take it in turn).
    pub fn next_job_id(&self) -> i64 {
        self.jobs.next_id()
    }

    /// Adds a seeded job; `false` when its id is taken.
    pub fn add_job(&mut self, job: Job) -> bool {
        self.jobs.add(job)
    }

    /// `POST /jobs`, checked in the order Airbyte checks: the connection must exist (404); a
    /// refresh is 422; a sync needs an `active` connection (409 `state-conflict`) with no job
    /// pending or running (409 `try-again-later`); a reset or clear cancels the running job
    /// first. `fails` is asked only when a job is started, so the fault dice roll once per job.
    pub fn start_job(
        &mut self,
        request: &JobCreateRequest,
        now: Now,
        fails: impl FnOnce() -> bool,
    ) -> Result<JobResponse, ApiError> {
        let connection = self
            .connection(request.connection_id)
            .ok_or_else(|| ApiError::not_found("connection", request.connection_id.to_string()))?;
        let (id, workspace, status) = (
            connection.connection_id,
            connection.workspace_id,
            connection.status,
        );
        match request.job_type {
            JobType::Refresh => {
                return Err(ApiError::unprocessable_entity(
                    "Refreshes are not supported in the public API",
                ));
            }
            JobType::Sync => {
                if status != ConnectionStatus::Active {
                    // `check(sync.status == ACTIVE)` throws an IllegalStateException, which the
                    // public API maps to this generic message.
                    return Err(ApiError::state_conflict("Could not fulfill request"));
                }
                if self.jobs.any_active(id, now) {
                    return Err(ApiError::try_again_later(format!(
                        "A sync is already running for: {id}"
                    )));
                }
            }
            JobType::Reset | JobType::Clear => {
                if status == ConnectionStatus::Deprecated {
                    return Err(ApiError::try_again_later("Could not fulfill request"));
                }
                self.jobs.cancel_active(id, now);
            }
        }
        Ok(self
            .jobs
            .start(id, workspace, request.job_type, fails(), now))
    }

    pub fn job(&self, id: i64, now: Now) -> Option<JobResponse> {
        self.jobs.get(id).map(|j| j.response(now))
    }

    pub fn cancel_job(&mut self, id: i64, now: Now) -> Result<JobResponse, ApiError> {
        self.jobs.cancel(id, now)
    }

    pub fn list_jobs(&self, filter: &JobFilter, now: Now) -> Vec<JobResponse> {
        self.jobs.list(filter, now)
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
        // Airbyte's `isPatchRelevantForDestinationValidation`: we take it to mean a patch that
        // sends streams or changes what the key is made of.
        if streams.is_some()
            || request.namespace_definition.is_some()
            || request.namespace_format.is_some()
            || request.prefix.is_some()
        {
            let stored = DestinationSettings::of(current);
            let settings = DestinationSettings {
                namespace_definition: request
                    .namespace_definition
                    .unwrap_or(stored.namespace_definition),
                namespace_format: request
                    .namespace_format
                    .as_deref()
                    .or(stored.namespace_format),
                prefix: request.prefix.as_deref().or(stored.prefix),
            };
            self.check_conflicting_streams(
                current.destination_id,
                &settings,
                streams
                    .as_deref()
                    .unwrap_or(&current.configurations.streams),
                Some(id),
            )?;
        }
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
            (false, true) => self.live_positions.insert(workspace, position),
            _ => {}
        }
    }

    /// Tags travel as full objects; each must exist and belong to the connection's workspace.
    /// The stored tag wins over whatever name or colour the request carried; a tag sent twice
    /// is carried once.
    fn resolve_tags(&self, tags: &[Tag], workspace: Uuid) -> Result<Vec<Tag>, ApiError> {
        let mut seen = HashSet::new();
        tags.iter()
            .filter(|t| seen.insert(t.tag_id))
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
