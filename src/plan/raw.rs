//! The plan file as written (SPEC §2): the serde mirror that `yaml::parse` fills, and the source
//! of the plan's JSON Schema ([`super::schema`]).
//!
//! Every key is optional here, so that a missing key is reported with the others by the checker
//! ([`super::check`]) instead of stopping the parse; `deny_unknown_fields` everywhere turns a
//! misspelt key into a syntax-level error with `file:line:column` and a suggestion (and into
//! `additionalProperties: false` in the schema). No struct holds a free-form map, so a document
//! that parses cannot hold a key named like a secret. `expecting` is what a type error says was
//! expected. The doc comments are the schema's descriptions, which editors show; the `schemars`
//! attributes add what the checker enforces (required keys, enums, ranges) so that an editor
//! flags it as it is typed.

use super::schema;
use schemars::JsonSchema;
use serde::Deserialize;

/// A replicate plan: one template connection, copied onto many sources.
#[derive(Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of plan keys (version, template, targets, …)"
)]
#[schemars(title = "replicate plan")]
pub(super) struct RawPlan {
    /// The plan format's version; the only one is 1.
    #[schemars(required, schema_with = "schema::version")]
    pub(super) version: Option<i64>,
    /// The template connection: its id, or its exact name.
    #[schemars(required, length(min = 1))]
    pub(super) template: Option<String>,
    pub(super) airbyte: Option<RawAirbyte>,
    /// The sources to copy the template onto.
    #[schemars(required, length(min = 1))]
    pub(super) targets: Option<Vec<RawTarget>>,
    pub(super) defaults: Option<RawOverrides>,
    /// A copy already exists: bring it in line with the plan (`update`), leave it (`skip`), or
    /// make it an error (`fail`).
    #[schemars(with = "Option<schema::Existing>")]
    pub(super) existing: Option<String>,
    /// A template stream the source lacks: an error for that target (`fail`), or left out of
    /// its copy with a warning (`skip`).
    #[schemars(with = "Option<schema::MissingStreams>")]
    pub(super) missing_streams: Option<String>,
    /// The tag that marks this plan's copies; default `replicate:` and the file's name.
    #[schemars(length(min = 1, max = 30))]
    pub(super) owner: Option<String>,
    /// Delete the copies this plan owns whose source is no longer a target.
    pub(super) prune: Option<bool>,
    /// API requests in flight at once; `--concurrency` wins.
    #[schemars(range(min = 1, max = 256))]
    pub(super) concurrency: Option<i64>,
}

/// Where the Airbyte API is; `--url` and `AIRBYTE_URL` win.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a mapping with `url:`")]
pub(super) struct RawAirbyte {
    /// The API's base URL, e.g. `https://api.airbyte.com/v1` or
    /// `http://host:8000/api/public/v1`; never with credentials.
    #[schemars(regex(pattern = "^[Hh][Tt][Tt][Pp][Ss]?://[^@/?#]+([/?#].*)?$"))]
    pub(super) url: Option<String>,
}

// A selector plus the same keys as `RawOverrides`: serde cannot flatten and deny unknown keys
// at once.
/// One source (`source:`), or every source of the template's workspace whose name matches a
/// glob (`match:`); its own settings win over `defaults`.
#[derive(Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a mapping with `source: ID-OR-NAME` or `match: GLOB`"
)]
#[schemars(transform = schema::one_selector)]
pub(super) struct RawTarget {
    /// One source, by id or exact name.
    #[schemars(length(min = 1))]
    pub(super) source: Option<String>,
    /// A glob over source names: `*`, `?`, `[a-z]`, `{eu,us}`, `\` escapes; case-sensitive.
    #[serde(rename = "match")]
    #[schemars(length(min = 1))]
    pub(super) pattern: Option<String>,
    /// With `match`: only sources of this sourceType, e.g. `postgres`.
    #[serde(rename = "type")]
    #[schemars(length(min = 1))]
    pub(super) source_type: Option<String>,
    /// With `match`: globs over source names to leave out.
    pub(super) exclude: Option<Vec<String>>,
    /// With `match`: selecting no source is fine (otherwise an error for the entry).
    #[serde(rename = "allow_empty")]
    pub(super) allow_empty: Option<bool>,
    /// The copy's name; placeholders such as `{source.name}`.
    #[schemars(length(min = 1))]
    pub(super) name: Option<String>,
    /// The prefix of the copy's destination tables, e.g. "{source.name|slug}_".
    pub(super) prefix: Option<String>,
    /// `active` or `inactive`.
    #[schemars(with = "Option<schema::Status>")]
    pub(super) status: Option<String>,
    pub(super) schedule: Option<RawSchedule>,
    /// Where the copy's tables go: the source's namespace, the destination's default, or
    /// `namespaceFormat`.
    #[schemars(with = "Option<schema::NamespaceDefinition>")]
    pub(super) namespace_definition: Option<String>,
    /// With `custom_format`: the namespace, e.g. `"${SOURCE_NAMESPACE}_{source.name|slug}"`.
    pub(super) namespace_format: Option<String>,
    /// What Airbyte does when the source's schema changes without breaking the copy.
    #[schemars(with = "Option<schema::NonBreakingSchemaUpdatesBehavior>")]
    pub(super) non_breaking_schema_updates_behavior: Option<String>,
}

/// Settings for every copy; unset keys come from the template, and a target's own keys win.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a mapping of connection settings (name, prefix, status, schedule, …)"
)]
pub(super) struct RawOverrides {
    /// The copies' name; placeholders such as `{source.name}`; default
    /// "{source.name} → {destination.name}".
    #[schemars(length(min = 1))]
    pub(super) name: Option<String>,
    /// The prefix of the copies' destination tables, e.g. "{source.name|slug}_".
    pub(super) prefix: Option<String>,
    /// `active` or `inactive`.
    #[schemars(with = "Option<schema::Status>")]
    pub(super) status: Option<String>,
    pub(super) schedule: Option<RawSchedule>,
    /// Where the copies' tables go: the source's namespace, the destination's default, or
    /// `namespaceFormat`.
    #[schemars(with = "Option<schema::NamespaceDefinition>")]
    pub(super) namespace_definition: Option<String>,
    /// With `custom_format`: the namespace, e.g. `"${SOURCE_NAMESPACE}_{source.name|slug}"`.
    pub(super) namespace_format: Option<String>,
    /// What Airbyte does when a source's schema changes without breaking the copy.
    #[schemars(with = "Option<schema::NonBreakingSchemaUpdatesBehavior>")]
    pub(super) non_breaking_schema_updates_behavior: Option<String>,
}

/// When the copy syncs: `{ scheduleType: manual }`, or `{ scheduleType: cron, cronExpression:
/// "0 0 3 * * ?" }` (Quartz, seconds first, UTC; at least an hour apart).
#[derive(Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a mapping like { scheduleType: cron, cronExpression: \"0 0 3 * * ?\" }"
)]
#[schemars(transform = schema::cron_needs_expression)]
pub(super) struct RawSchedule {
    /// `manual` or `cron` (`basic` cannot be created through the API).
    #[schemars(required, with = "Option<schema::ScheduleType>")]
    pub(super) schedule_type: Option<String>,
    /// A Quartz cron expression, seconds first, in UTC: "0 0 3 * * ?" is 03:00 UTC daily.
    pub(super) cron_expression: Option<String>,
}

impl RawTarget {
    pub(super) fn split(self) -> (RawSelector, RawOverrides) {
        let selector = RawSelector {
            source: self.source,
            pattern: self.pattern,
            source_type: self.source_type,
            exclude: self.exclude,
            allow_empty: self.allow_empty,
        };
        let overrides = RawOverrides {
            name: self.name,
            prefix: self.prefix,
            status: self.status,
            schedule: self.schedule,
            namespace_definition: self.namespace_definition,
            namespace_format: self.namespace_format,
            non_breaking_schema_updates_behavior: self.non_breaking_schema_updates_behavior,
        };
        (selector, overrides)
    }
}

pub(super) struct RawSelector {
    pub(super) source: Option<String>,
    pub(super) pattern: Option<String>,
    pub(super) source_type: Option<String>,
    pub(super) exclude: Option<Vec<String>>,
    pub(super) allow_empty: Option<bool>,
}
