//! The plan file as written (SPEC §2): the serde mirror that `yaml::parse` fills.
//!
//! Every key is optional here, so that a missing key is reported with the others by the checker
//! ([`super::check`]) instead of stopping the parse; `deny_unknown_fields` everywhere turns a
//! misspelt key into a syntax-level error with `file:line:column` and a suggestion. No struct holds
//! a free-form map, so a document that parses cannot hold a key named like a secret. `expecting`
//! is what a type error says was expected.

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of plan keys (version, template, targets, …)"
)]
pub(super) struct RawPlan {
    pub(super) version: Option<i64>,
    pub(super) template: Option<String>,
    pub(super) airbyte: Option<RawAirbyte>,
    pub(super) targets: Option<Vec<RawTarget>>,
    pub(super) defaults: Option<RawOverrides>,
    pub(super) existing: Option<String>,
    pub(super) missing_streams: Option<String>,
    pub(super) owner: Option<String>,
    pub(super) prune: Option<bool>,
    pub(super) concurrency: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping with `url:`")]
pub(super) struct RawAirbyte {
    pub(super) url: Option<String>,
}

/// A target entry: a selector plus the same keys as [`RawOverrides`] (serde cannot flatten and
/// deny unknown keys at once).
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a mapping with `source: ID-OR-NAME` or `match: GLOB`"
)]
pub(super) struct RawTarget {
    pub(super) source: Option<String>,
    #[serde(rename = "match")]
    pub(super) pattern: Option<String>,
    #[serde(rename = "type")]
    pub(super) source_type: Option<String>,
    pub(super) exclude: Option<Vec<String>>,
    #[serde(rename = "allow_empty")]
    pub(super) allow_empty: Option<bool>,
    pub(super) name: Option<String>,
    pub(super) prefix: Option<String>,
    pub(super) status: Option<String>,
    pub(super) schedule: Option<RawSchedule>,
    pub(super) namespace_definition: Option<String>,
    pub(super) namespace_format: Option<String>,
    pub(super) non_breaking_schema_updates_behavior: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a mapping of connection settings (name, prefix, status, schedule, …)"
)]
pub(super) struct RawOverrides {
    pub(super) name: Option<String>,
    pub(super) prefix: Option<String>,
    pub(super) status: Option<String>,
    pub(super) schedule: Option<RawSchedule>,
    pub(super) namespace_definition: Option<String>,
    pub(super) namespace_format: Option<String>,
    pub(super) non_breaking_schema_updates_behavior: Option<String>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a mapping like { scheduleType: cron, cronExpression: \"0 0 3 * * ?\" }"
)]
pub(super) struct RawSchedule {
    pub(super) schedule_type: Option<String>,
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
