//! The sandbox's starting state: a seed document, written by hand in YAML or built in code.
//!
//! Objects refer to each other by name (a connection names its `source` and `destination`, a
//! source names its `workspace` and `catalog`), ids are optional and, when absent, derived from
//! the object's kind and name, so the same seed always yields the same ids. Keys that mirror an
//! Airbyte API field are spelled as the API spells them (`syncMode`, `sourceDefinedPrimaryKey`).
//! Parsing goes through [`crate::yaml`]; references are checked when the store is built
//! (`Seed::from_yaml`, in [`super::seeding`], does both), and a bad reference is reported with its
//! YAML path. This module is only the document: it knows nothing of the store.

use super::catalog::{DestinationSyncMode, SourceSyncMode};
use crate::wire::{
    ConfiguredStreamMapper, ConnectionSchedule, ConnectionStatus, JobStatus, JobType,
    NamespaceDefinition, NonBreakingSchemaUpdatesBehavior, ScheduleType, ScheduleTypeWithBasic,
    SyncMode,
};
use crate::yaml::{self, YamlError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// A whole seed. Every list may be empty; [`Seed::default_seed`] is the one SPEC §7 describes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    #[serde(default)]
    pub workspaces: Vec<SeedWorkspace>,
    #[serde(default)]
    pub destinations: Vec<SeedDestination>,
    /// Stream catalogs by name; sources refer to them, so many sources can share one.
    #[serde(default)]
    pub catalogs: BTreeMap<String, Vec<SeedStream>>,
    #[serde(default)]
    pub sources: Vec<SeedSource>,
    #[serde(default)]
    pub tags: Vec<SeedTag>,
    #[serde(default)]
    pub connections: Vec<SeedConnection>,
    /// Past jobs of the seeded connections, frozen in their status.
    #[serde(default)]
    pub jobs: Vec<SeedJob>,
    /// Application credentials that `POST /applications/token` exchanges for a token.
    #[serde(default)]
    pub applications: Vec<SeedApplication>,
    /// Bearer tokens accepted as they are, without expiry.
    #[serde(default)]
    pub tokens: Vec<String>,
}

/// A workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SeedWorkspace {
    pub name: String,
    #[serde(default)]
    pub id: Option<Uuid>,
    /// Defaults to `auto`.
    #[serde(default)]
    pub data_residency: Option<String>,
}

/// A destination and the destination sync modes it supports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SeedDestination {
    pub name: String,
    /// The connector, e.g. `bigquery`.
    #[serde(rename = "type")]
    pub destination_type: String,
    /// The workspace's name; defaults to the first workspace.
    #[serde(default)]
    pub workspace: Option<String>,
    #[serde(default)]
    pub id: Option<Uuid>,
    #[serde(default)]
    pub definition_id: Option<Uuid>,
    /// Defaults to `overwrite`, `append`, `append_dedup`.
    #[serde(default = "default_destination_modes")]
    pub sync_modes: Vec<DestinationSyncMode>,
    #[serde(default)]
    pub configuration: Map<String, Value>,
    #[serde(default)]
    pub created_at: Option<i64>,
}

fn default_destination_modes() -> Vec<DestinationSyncMode> {
    vec![
        DestinationSyncMode::Overwrite,
        DestinationSyncMode::Append,
        DestinationSyncMode::AppendDedup,
    ]
}

/// A source and the catalog it discovers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SeedSource {
    pub name: String,
    /// The connector, e.g. `postgres`.
    #[serde(rename = "type")]
    pub source_type: String,
    /// The name of an entry of `catalogs`.
    pub catalog: String,
    /// The workspace's name; defaults to the first workspace.
    #[serde(default)]
    pub workspace: Option<String>,
    #[serde(default)]
    pub id: Option<Uuid>,
    #[serde(default)]
    pub definition_id: Option<Uuid>,
    #[serde(default)]
    pub configuration: Map<String, Value>,
    #[serde(default)]
    pub created_at: Option<i64>,
}

/// A field path: `id`, or `[address, city]` for a nested field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldPath {
    Top(String),
    Nested(Vec<String>),
}

impl FieldPath {
    pub fn to_path(&self) -> Vec<String> {
        match self {
            FieldPath::Top(name) => vec![name.clone()],
            FieldPath::Nested(path) => path.clone(),
        }
    }
}

/// One stream of a catalog, with the keys `GET /streams` reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SeedStream {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    /// The stream's fields; the parents of nested paths are added when missing.
    pub fields: Vec<FieldPath>,
    /// The source sync modes; defaults to both `full_refresh` and `incremental`.
    #[serde(default = "default_source_modes")]
    pub sync_modes: Vec<SourceSyncMode>,
    #[serde(default)]
    pub default_cursor_field: Vec<String>,
    #[serde(default)]
    pub source_defined_cursor_field: bool,
    #[serde(default)]
    pub source_defined_primary_key: Vec<Vec<String>>,
}

fn default_source_modes() -> Vec<SourceSyncMode> {
    vec![SourceSyncMode::FullRefresh, SourceSyncMode::Incremental]
}

/// A tag connections can carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SeedTag {
    pub name: String,
    /// A hex colour such as `4F46E5`.
    pub color: String,
    #[serde(default)]
    pub workspace: Option<String>,
    #[serde(default)]
    pub id: Option<Uuid>,
}

/// A connection, as a create body with names instead of ids. It goes through the same
/// validation as `POST /connections`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SeedConnection {
    /// Defaults to `<source name> → <destination name>`.
    #[serde(default)]
    pub name: Option<String>,
    pub source: String,
    pub destination: String,
    #[serde(default)]
    pub id: Option<Uuid>,
    #[serde(default)]
    pub status: Option<ConnectionStatus>,
    /// Unlike a create, a seed may give a `basic` schedule: connections made in the UI have one.
    #[serde(default)]
    pub schedule: Option<SeedSchedule>,
    #[serde(default)]
    pub namespace_definition: Option<NamespaceDefinition>,
    #[serde(default)]
    pub namespace_format: Option<String>,
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub non_breaking_schema_updates_behavior: Option<NonBreakingSchemaUpdatesBehavior>,
    /// Omitted: every stream of the source, as `full_refresh_overwrite`.
    #[serde(default)]
    pub streams: Vec<SeedStreamConfiguration>,
    /// Tag names.
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub created_at: Option<i64>,
}

/// A seeded connection's schedule: a create's (`manual`, `cron`), or `basic` with its
/// `basicTiming` (default `Every 24 HOURS`), which only the UI can make.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SeedSchedule {
    pub schedule_type: ScheduleTypeWithBasic,
    #[serde(default)]
    pub cron_expression: Option<String>,
    #[serde(default)]
    pub basic_timing: Option<String>,
}

impl SeedSchedule {
    /// The schedule a create body carries (`basic` is created `manual`, then stored as `basic`).
    pub fn create_schedule(&self) -> ConnectionSchedule {
        ConnectionSchedule {
            schedule_type: match self.schedule_type {
                ScheduleTypeWithBasic::Cron => ScheduleType::Cron,
                ScheduleTypeWithBasic::Manual | ScheduleTypeWithBasic::Basic => {
                    ScheduleType::Manual
                }
            },
            cron_expression: self.cron_expression.clone(),
        }
    }
}

/// A stream of a seeded connection (`StreamConfiguration`, with plain field names in
/// `selectedFields`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SeedStreamConfiguration {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub sync_mode: Option<SyncMode>,
    #[serde(default)]
    pub cursor_field: Option<Vec<String>>,
    #[serde(default)]
    pub primary_key: Option<Vec<Vec<String>>>,
    #[serde(default)]
    pub selected_fields: Option<Vec<FieldPath>>,
    #[serde(default)]
    pub include_files: Option<bool>,
    #[serde(default)]
    pub destination_object_name: Option<String>,
    #[serde(default)]
    pub mappers: Option<Vec<ConfiguredStreamMapper>>,
}

/// A past job of a seeded connection. It keeps its status for good: a `running` one stays
/// running (a sync start of its connection answers 409) until it is cancelled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SeedJob {
    /// The connection's name.
    pub connection: String,
    /// Defaults to the next free id, counting from 1.
    #[serde(default)]
    pub id: Option<i64>,
    /// Defaults to `sync`.
    #[serde(default)]
    pub job_type: Option<JobType>,
    /// Defaults to `succeeded`.
    #[serde(default)]
    pub status: Option<JobStatus>,
    /// Seconds since the epoch; defaults to the seed's fixed time.
    #[serde(default)]
    pub created_at: Option<i64>,
    /// Seconds since the epoch, when the status last changed; defaults to `createdAt`.
    #[serde(default)]
    pub updated_at: Option<i64>,
    /// Defaults to a number made up from the id for a succeeded job, none otherwise.
    #[serde(default)]
    pub rows_synced: Option<i64>,
    #[serde(default)]
    pub bytes_synced: Option<i64>,
}

/// Client credentials for the token endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SeedApplication {
    pub client_id: String,
    pub client_secret: String,
}

/// A seed that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SeedError {
    /// Syntax, types, unknown keys: with file, line and column.
    #[error(transparent)]
    Yaml(#[from] YamlError),
    /// A reference that resolves to nothing, a duplicate, a connection the API would refuse:
    /// with the YAML path of the offending value.
    #[error("{}", InvalidDisplay(file.as_deref(), path, message))]
    Invalid {
        file: Option<PathBuf>,
        path: String,
        message: String,
    },
}

struct InvalidDisplay<'a>(Option<&'a Path>, &'a str, &'a str);

impl fmt::Display for InvalidDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = self.0 {
            write!(f, "{}: ", file.display())?;
        }
        write!(f, "{}: {}", self.1, self.2)
    }
}

impl SeedError {
    pub(crate) fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        SeedError::Invalid {
            file: None,
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn in_file(self, path: &Path) -> Self {
        match self {
            SeedError::Invalid {
                path: p, message, ..
            } => SeedError::Invalid {
                file: Some(path.to_path_buf()),
                path: p,
                message,
            },
            yaml @ SeedError::Yaml(_) => yaml,
        }
    }
}

const DEFAULT_SEED: &str = include_str!("default_seed.yaml");

impl Seed {
    /// The default seed of SPEC §7, with fixed ids.
    pub fn default_seed() -> Seed {
        #[allow(clippy::expect_used)] // a start-up invariant, checked by a unit test
        yaml::parse(Path::new("default_seed.yaml"), DEFAULT_SEED.as_bytes())
            .expect("the built-in default seed parses")
    }

    /// The source whose catalog and type `--sources N` copies: the first connection's source,
    /// else the first source.
    pub fn template_source(&self) -> Option<&SeedSource> {
        self.connections
            .first()
            .and_then(|c| self.sources.iter().find(|s| s.name == c.source))
            .or_else(|| self.sources.first())
    }
}

/// A deterministic id for a seed object without one: the same kind and name always give the
/// same id (a version-4-shaped UUID made from a 128-bit FNV-1a hash).
pub fn derived_id(kind: &str, name: &str) -> Uuid {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013B;
    let mut hash = OFFSET;
    for byte in kind.bytes().chain([0]).chain(name.bytes()) {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(PRIME);
    }
    uuid::Builder::from_random_bytes(hash.to_be_bytes()).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_seed_parses_and_resolves() {
        let seed = Seed::default_seed();
        assert_eq!(seed.sources.len(), 7);
        assert_eq!(seed.template_source().unwrap().name, "shop-template");
        crate::sandbox::seeding::build(&seed, 3).unwrap();
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        assert_eq!(derived_id("source", "a"), derived_id("source", "a"));
        assert_ne!(derived_id("source", "a"), derived_id("workspace", "a"));
        assert_eq!(derived_id("source", "a").get_version_num(), 4);
    }

    #[test]
    fn bad_references_name_the_yaml_path() {
        let text = "workspaces: [{name: W}]\ndestinations: [{name: D, type: bigquery}]\n\
                    catalogs: {c: [{name: s, fields: [id]}]}\nsources: [{name: S, type: pg, catalog: c}]\n\
                    connections: [{source: S, destination: Nope}]\n";
        let err = Seed::from_yaml(Path::new("seed.yaml"), text.as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "seed.yaml: connections[0].destination: no destination named `Nope`"
        );
    }
}
