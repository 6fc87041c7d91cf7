//! From a seed document to a running store: names resolved to ids, catalogs built, and seeded
//! connections passed through the same create rules as `POST /connections`.
//!
//! [`build`] is the only way a [`Store`] gets its starting state; [`Seed::from_yaml`] parses a
//! seed file and builds it once to check every reference, reporting a bad one with its YAML path.
//! The seed document itself ([`super::seed`]) knows nothing of the store.

use super::catalog::{Catalog, CatalogStream};
use super::jobs::{Job, SeededJob};
use super::seed::{
    FieldPath, Seed, SeedConnection, SeedError, SeedJob, SeedSchedule, SeedStream, derived_id,
};
use super::store::{Destination, Source, Store};
use crate::wire::{
    ConnectionCreateRequest, ConnectionScheduleResponse, DestinationResponse, JobStatus, JobType,
    ScheduleTypeWithBasic, SelectedFieldInfo, SourceResponse, StreamConfiguration,
    StreamConfigurations, Tag, WorkspaceResponse,
};
use crate::yaml;
use serde_json::Map;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use uuid::Uuid;

/// The largest job id a seed may give.
const MAX_JOB_ID: i64 = 1_000_000_000_000;

/// `createdAt` of seed objects that do not set one: 2026-01-01T00:00:00Z, so reads are stable.
pub const SEED_CREATED_AT: i64 = 1_767_225_600;

impl Seed {
    /// Parses a seed file and checks every reference in it. `path` only names the file in errors.
    pub fn from_yaml(path: &Path, bytes: &[u8]) -> Result<Seed, SeedError> {
        let seed: Seed = yaml::parse(path, bytes)?;
        build(&seed, 0).map_err(|e| e.in_file(path))?;
        Ok(seed)
    }
}

/// Builds the state a seed describes, plus `extra_sources` copies of its template source
/// (`bulk-000001`…, in the first workspace). Seeded connections pass the create rules.
pub fn build(seed: &Seed, extra_sources: usize) -> Result<Store, SeedError> {
    let mut builder = Builder::default();
    builder.workspaces(seed)?;
    let mut catalogs = HashMap::new();
    for (name, streams) in &seed.catalogs {
        catalogs.insert(name.as_str(), Arc::new(catalog(name, streams)?));
    }
    builder.destinations(seed)?;
    builder.sources(seed, &catalogs)?;
    builder.bulk_sources(seed, extra_sources)?;
    builder.tags(seed)?;
    for (i, c) in seed.connections.iter().enumerate() {
        builder.connection(c, &format!("connections[{i}]"))?;
    }
    for (i, j) in seed.jobs.iter().enumerate() {
        builder.job(j, &format!("jobs[{i}]"))?;
    }
    Ok(builder.store)
}

/// A store being built, and the seed names resolved to ids so far.
#[derive(Debug, Default)]
struct Builder {
    store: Store,
    workspaces: HashMap<String, Uuid>,
    first_workspace: Option<Uuid>,
    destinations: HashMap<String, Uuid>,
    sources: HashMap<String, Uuid>,
    tags: HashMap<String, Uuid>,
    connections: HashMap<String, Uuid>,
}

impl Builder {
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

    fn workspaces(&mut self, seed: &Seed) -> Result<(), SeedError> {
        for (i, w) in seed.workspaces.iter().enumerate() {
            let path = format!("workspaces[{i}]");
            let id = w.id.unwrap_or_else(|| derived_id("workspace", &w.name));
            unique(&mut self.workspaces, &w.name, id, &path, "workspace")?;
            let added = self.store.add_workspace(WorkspaceResponse {
                workspace_id: id,
                name: w.name.clone(),
                data_residency: w.data_residency.clone().unwrap_or_else(|| "auto".into()),
                notifications: Map::new(),
            });
            if !added {
                return Err(duplicate_id(&path, id));
            }
            self.first_workspace.get_or_insert(id);
        }
        Ok(())
    }

    fn destinations(&mut self, seed: &Seed) -> Result<(), SeedError> {
        for (i, d) in seed.destinations.iter().enumerate() {
            let path = format!("destinations[{i}]");
            let id = d.id.unwrap_or_else(|| derived_id("destination", &d.name));
            unique(&mut self.destinations, &d.name, id, &path, "destination")?;
            let workspace_id = self.workspace(d.workspace.as_deref(), &path)?;
            let added = self.store.add_destination(Destination {
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
            if !added {
                return Err(duplicate_id(&path, id));
            }
        }
        Ok(())
    }

    fn sources(
        &mut self,
        seed: &Seed,
        catalogs: &HashMap<&str, Arc<Catalog>>,
    ) -> Result<(), SeedError> {
        for (i, s) in seed.sources.iter().enumerate() {
            let path = format!("sources[{i}]");
            let id = s.id.unwrap_or_else(|| derived_id("source", &s.name));
            unique(&mut self.sources, &s.name, id, &path, "source")?;
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
                workspace_id: self.workspace(s.workspace.as_deref(), &path)?,
                configuration: s.configuration.clone(),
                created_at: s.created_at.unwrap_or(SEED_CREATED_AT),
                resource_allocation: None,
            };
            if !self.store.add_source(Source { response, catalog }) {
                return Err(duplicate_id(&path, id));
            }
        }
        Ok(())
    }

    fn bulk_sources(&mut self, seed: &Seed, count: usize) -> Result<(), SeedError> {
        if count == 0 {
            return Ok(());
        }
        let template = seed
            .template_source()
            .and_then(|t| self.sources.get(t.name.as_str()))
            .and_then(|id| self.store.source(*id))
            .cloned()
            .ok_or_else(|| {
                SeedError::invalid(
                    "sources",
                    "--sources needs a source to copy, and the seed has none",
                )
            })?;
        let workspace_id = self.workspace(None, "sources")?;
        self.store.reserve_sources(count);
        for n in 1..=count {
            let name = format!("bulk-{n:06}");
            let id = derived_id("source", &name);
            let response = SourceResponse {
                source_id: id,
                name,
                workspace_id,
                ..template.response.clone()
            };
            let source = Source {
                response,
                catalog: template.catalog.clone(),
            };
            if !self.store.add_source(source) {
                return Err(duplicate_id("sources", id));
            }
        }
        Ok(())
    }

    fn tags(&mut self, seed: &Seed) -> Result<(), SeedError> {
        for (i, t) in seed.tags.iter().enumerate() {
            let path = format!("tags[{i}]");
            let id = t.id.unwrap_or_else(|| derived_id("tag", &t.name));
            unique(&mut self.tags, &t.name, id, &path, "tag")?;
            let added = self.store.add_tag(Tag {
                tag_id: id,
                workspace_id: self.workspace(t.workspace.as_deref(), &path)?,
                name: t.name.clone(),
                color: t.color.clone(),
            });
            if !added {
                return Err(duplicate_id(&path, id));
            }
        }
        Ok(())
    }

    fn connection(&mut self, c: &SeedConnection, path: &str) -> Result<(), SeedError> {
        let lookup = |names: &HashMap<String, Uuid>, name: &str, field: &str, kind: &str| {
            names.get(name).copied().ok_or_else(|| {
                SeedError::invalid(
                    format!("{path}.{field}"),
                    format!("no {kind} named `{name}`"),
                )
            })
        };
        let source_id = lookup(&self.sources, &c.source, "source", "source")?;
        let destination_id = lookup(
            &self.destinations,
            &c.destination,
            "destination",
            "destination",
        )?;
        let mut tags = Vec::new();
        for (j, name) in c.tags.iter().enumerate() {
            let id = lookup(&self.tags, name, &format!("tags[{j}]"), "tag")?;
            tags.extend(self.store.tag(id).cloned());
        }
        // The seed's own default name (the API's is `<source> <> <destination>`).
        let name = c
            .name
            .clone()
            .unwrap_or_else(|| format!("{} → {}", c.source, c.destination));
        let mut request = seed_request(c, source_id, destination_id, tags);
        request.name = Some(name.clone());
        let id = c.id.unwrap_or_else(|| derived_id("connection", &name));
        let mut mapper = 0u32;
        let mut new_id = || {
            mapper += 1;
            derived_id("mapper", &format!("{id}/{mapper}"))
        };
        let created_at = c.created_at.unwrap_or(SEED_CREATED_AT);
        let mut connection = self
            .store
            .prepare_create(request, id, created_at, &mut new_id)
            .map_err(|e| SeedError::invalid(path, e.0.message()))?;
        if let Some(schedule) = &c.schedule {
            basic_schedule(schedule, &mut connection.schedule, path)?;
        }
        if self.store.connection(id).is_some() {
            return Err(duplicate_id(path, id));
        }
        self.store.insert_connection(connection);
        self.connections.insert(name, id);
        Ok(())
    }

    fn job(&mut self, j: &SeedJob, path: &str) -> Result<(), SeedError> {
        let connection = self
            .connections
            .get(&j.connection)
            .and_then(|id| self.store.connection(*id))
            .ok_or_else(|| {
                SeedError::invalid(
                    format!("{path}.connection"),
                    format!("no connection named `{}`", j.connection),
                )
            })?;
        let id = j.id.unwrap_or_else(|| self.store.next_job_id());
        // Bounded so that the ids of the jobs started later never run out.
        if !(1..=MAX_JOB_ID).contains(&id) {
            return Err(SeedError::invalid(
                format!("{path}.id"),
                format!("a job id is a number from 1 to {MAX_JOB_ID}"),
            ));
        }
        let created_at = j.created_at.unwrap_or(SEED_CREATED_AT);
        let updated_at = j.updated_at.unwrap_or(created_at);
        if updated_at < created_at {
            return Err(SeedError::invalid(
                format!("{path}.updatedAt"),
                "a job cannot change before it was created",
            ));
        }
        let job = Job::seeded(&SeededJob {
            id,
            connection_id: connection.connection_id,
            workspace_id: connection.workspace_id,
            job_type: j.job_type.unwrap_or(JobType::Sync),
            status: j.status.unwrap_or(JobStatus::Succeeded),
            created_at,
            updated_at,
            rows: j.rows_synced,
            bytes: j.bytes_synced,
        });
        if !self.store.add_job(job) {
            return Err(SeedError::invalid(
                format!("{path}.id"),
                format!("job id {id} is used twice"),
            ));
        }
        Ok(())
    }
}

/// A `basic` seed schedule, stored as Airbyte keeps one made in the UI; other types were
/// already stored by the create rules.
fn basic_schedule(
    schedule: &SeedSchedule,
    stored: &mut ConnectionScheduleResponse,
    path: &str,
) -> Result<(), SeedError> {
    match (schedule.schedule_type, &schedule.basic_timing) {
        (ScheduleTypeWithBasic::Basic, timing) => {
            if schedule.cron_expression.is_some() {
                return Err(SeedError::invalid(
                    format!("{path}.schedule.cronExpression"),
                    "a basic schedule has a basicTiming, not a cron expression",
                ));
            }
            *stored = ConnectionScheduleResponse {
                schedule_type: ScheduleTypeWithBasic::Basic,
                cron_expression: None,
                basic_timing: Some(timing.clone().unwrap_or_else(|| "Every 24 HOURS".into())),
            };
            Ok(())
        }
        (_, Some(_)) => Err(SeedError::invalid(
            format!("{path}.schedule.basicTiming"),
            "only a basic schedule has a basicTiming",
        )),
        (_, None) => Ok(()),
    }
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
        schedule: c.schedule.as_ref().map(SeedSchedule::create_schedule),
        data_residency: None,
        namespace_definition: c.namespace_definition,
        namespace_format: c.namespace_format.clone(),
        prefix: c.prefix.clone(),
        non_breaking_schema_updates_behavior: c.non_breaking_schema_updates_behavior,
        status: c.status,
        tags: Some(tags),
    }
}

/// The deepest field path a seed may declare (real schemas rarely nest past a handful).
const MAX_FIELD_DEPTH: usize = 32;

/// Builds a catalog from its seed form, adding the parents of nested fields and checking that
/// cursor and key name fields the stream has.
fn catalog(name: &str, streams: &[SeedStream]) -> Result<Catalog, SeedError> {
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
