//! Diff (SPEC §8): the pure stage between building copies and executing them.
//!
//! load → resolve → build copies → **diff** → execute → report. [`diff`] compares one existing
//! copy's *actual* state (the connection as the list returns it) with its *desired* state (the
//! body `copy` builds for its target) and returns every difference as a [`Change`], after
//! normalising what is not drift: a cron's trailing ` UTC`, stream order, empty `selectedFields`,
//! a cursor or primary key the desired body leaves to the source, `namespaceFormat` outside
//! `custom_format`, mapper ids, masked mapper secrets (a warning: they cannot be compared), and
//! tags on the copy that the plan does not ask for.
//!
//! A desired body built without the target's catalog carries the template's cursors, primary keys
//! and every template stream; such a body decides the connection's own fields exactly, but a
//! stream difference found with it ([`Drift::streams_differ`]) is only settled by building the
//! body again with the catalog and diffing once more. [`Drift::patch`] turns the changes into the
//! `PATCH /connections/{id}` body: only the top-level fields that differ, the streams whole, the
//! tags as the copy's plus the missing desired ones.

mod target;
#[cfg(test)]
mod tests;

pub use target::{Decision, TargetError, TargetPlan, decide_existing};

use crate::copy::SECRET_MASK;
use crate::cron;
use crate::wire::{
    ConnectionCreateRequest, ConnectionPatchRequest, ConnectionResponse, ConnectionSchedule,
    ConnectionStatus, NamespaceDefinition, NonBreakingSchemaUpdatesBehavior, ScheduleType,
    ScheduleTypeWithBasic, SelectedFieldInfo, StreamConfiguration, SyncMode, Tag,
};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap};

/// One difference between a copy and what the plan wants it to be (SPEC §8, JSON `changes`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// A dotted path: `name`, `schedule.cronExpression`, `streams.orders.syncMode`, `tags`.
    pub field: String,
    /// The copy's value; `null` for a stream the copy lacks.
    pub from: Value,
    /// The desired value; `null` for a stream the plan no longer has.
    pub to: Value,
    /// Whether applying it resets the stream's sync state (a full re-sync).
    pub resets_state: bool,
    /// What the change is about, for rendering and for building the patch.
    #[serde(skip)]
    pub subject: Subject,
}

/// What a [`Change`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A top-level field of the connection, by its wire name (`schedule`, `prefix`, `tags`, …).
    Field(&'static str),
    /// The copy lacks this stream (by its label: the name, `namespace.name` when names collide).
    StreamAdded(String),
    /// The copy has a stream the plan no longer has.
    StreamRemoved(String),
    /// One setting of a stream both have: the stream's label and the setting's wire name.
    Stream(String, &'static str),
}

/// Every difference of one copy, and what could not be compared.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Drift {
    pub changes: Vec<Change>,
    /// Full sentences, e.g. a mapper secret that reads back masked.
    pub warnings: Vec<String>,
}

impl Drift {
    /// Whether the copy is in line with the plan.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Whether any stream differs: writing streams needs the target's catalog, and so does
    /// deciding a difference found with a desired body built without it.
    pub fn streams_differ(&self) -> bool {
        self.changes
            .iter()
            .any(|c| !matches!(c.subject, Subject::Field(_)))
    }

    /// Whether any change resets a stream's sync state.
    pub fn resets_state(&self) -> bool {
        self.changes.iter().any(|c| c.resets_state)
    }

    /// The top-level fields that differ, by wire name, each once, in a stable order.
    pub fn fields(&self) -> Vec<&'static str> {
        let mut fields: Vec<&'static str> = Vec::new();
        for change in &self.changes {
            let field = match change.subject {
                Subject::Field(field) => field,
                _ => "configurations",
            };
            if !fields.contains(&field) {
                fields.push(field);
            }
        }
        fields
    }

    /// The `PATCH /connections/{id}` body that brings `actual` to `desired`: only the top-level
    /// fields that differ; `configurations.streams` whole; `tags` as the copy's own tags plus the
    /// desired ones it lacks (tags the plan does not know are left on the copy).
    pub fn patch(
        &self,
        desired: &ConnectionCreateRequest,
        actual: &ConnectionResponse,
    ) -> ConnectionPatchRequest {
        let mut patch = ConnectionPatchRequest::default();
        for field in self.fields() {
            match field {
                "name" => patch.name.clone_from(&desired.name),
                "schedule" => patch.schedule.clone_from(&desired.schedule),
                "status" => patch.status = desired.status,
                "namespaceDefinition" => patch.namespace_definition = desired.namespace_definition,
                "namespaceFormat" => patch.namespace_format.clone_from(&desired.namespace_format),
                "prefix" => patch.prefix.clone_from(&desired.prefix),
                "nonBreakingSchemaUpdatesBehavior" => {
                    patch.non_breaking_schema_updates_behavior =
                        desired.non_breaking_schema_updates_behavior;
                }
                "configurations" => patch.configurations.clone_from(&desired.configurations),
                "tags" => patch.tags = Some(merged_tags(desired, actual)),
                _ => {}
            }
        }
        // A definition change to custom_format needs its format along, or the server keeps
        // whatever format it had.
        if patch.namespace_definition == Some(NamespaceDefinition::CustomFormat) {
            patch.namespace_format.clone_from(&desired.namespace_format);
        }
        patch
    }
}

/// Compares one copy with its desired body, field by field (SPEC §8).
pub fn diff(desired: &ConnectionCreateRequest, actual: &ConnectionResponse) -> Drift {
    let mut drift = Drift::default();
    let changes = &mut drift.changes;

    if let Some(name) = &desired.name {
        if *name != actual.name {
            changes.push(field("name", json!(actual.name), json!(name)));
        }
    }
    if let Some(schedule) = &desired.schedule {
        schedule_change(schedule, actual, changes);
    }
    // `locked` is Airbyte's doing (billing, say), not the plan's: not drift, and a patch could
    // not undo it. Whatever else differs on a locked copy is an error for its target.
    if let Some(status) = desired
        .status
        .filter(|_| actual.status != ConnectionStatus::Locked)
    {
        if status != actual.status {
            changes.push(field("status", json!(actual.status), json!(status)));
        }
    }
    if let Some(definition) = desired.namespace_definition {
        let current = actual
            .namespace_definition
            .unwrap_or(NamespaceDefinition::Destination);
        if definition != current {
            changes.push(field(
                "namespaceDefinition",
                json!(current),
                json!(definition),
            ));
        }
        if definition == NamespaceDefinition::CustomFormat {
            let want = desired.namespace_format.as_deref().unwrap_or("");
            let have = actual.namespace_format.as_deref().unwrap_or("");
            if want != have {
                changes.push(field("namespaceFormat", json!(have), json!(want)));
            }
        }
    }
    if let Some(prefix) = &desired.prefix {
        let have = actual.prefix.as_deref().unwrap_or("");
        if prefix != have {
            changes.push(field("prefix", json!(have), json!(prefix)));
        }
    }
    if let Some(behavior) = desired.non_breaking_schema_updates_behavior {
        let current = actual
            .non_breaking_schema_updates_behavior
            .unwrap_or(NonBreakingSchemaUpdatesBehavior::Ignore);
        if behavior != current {
            changes.push(field(
                "nonBreakingSchemaUpdatesBehavior",
                json!(current),
                json!(behavior),
            ));
        }
    }
    if let Some(configurations) = &desired.configurations {
        streams(
            &configurations.streams,
            &actual.configurations.streams,
            &mut drift,
        );
    }
    if let Some(tags) = &desired.tags {
        tags_change(tags, &actual.tags, &mut drift.changes);
    }
    drift
}

fn field(name: &'static str, from: Value, to: Value) -> Change {
    Change {
        field: name.to_string(),
        from,
        to,
        resets_state: false,
        subject: Subject::Field(name),
    }
}

/// The schedule: its type, and for cron the expression without a trailing ` UTC`.
fn schedule_change(want: &ConnectionSchedule, actual: &ConnectionResponse, out: &mut Vec<Change>) {
    let have = &actual.schedule;
    let have_cron = have.cron_expression.as_deref().map(cron::strip_utc);
    let want_cron = want.cron_expression.as_deref().map(cron::strip_utc);
    let same_type = matches!(
        (want.schedule_type, have.schedule_type),
        (ScheduleType::Manual, ScheduleTypeWithBasic::Manual)
            | (ScheduleType::Cron, ScheduleTypeWithBasic::Cron)
    );
    if same_type && want.schedule_type == ScheduleType::Manual {
        return;
    }
    if same_type {
        if have_cron != want_cron {
            out.push(Change {
                field: "schedule.cronExpression".into(),
                from: json!(have_cron),
                to: json!(want_cron),
                resets_state: false,
                subject: Subject::Field("schedule"),
            });
        }
        return;
    }
    let mut from = Map::new();
    from.insert("scheduleType".into(), json!(have.schedule_type));
    if let Some(expression) = have_cron {
        from.insert("cronExpression".into(), json!(expression));
    }
    if let Some(timing) = &have.basic_timing {
        from.insert("basicTiming".into(), json!(timing));
    }
    let mut to = Map::new();
    to.insert("scheduleType".into(), json!(want.schedule_type));
    if let Some(expression) = want_cron {
        to.insert("cronExpression".into(), json!(expression));
    }
    out.push(field("schedule", Value::Object(from), Value::Object(to)));
}

/// Desired tags the copy lacks (by id; a tag lives in one workspace). Extra tags on the copy
/// are not drift.
fn tags_change(want: &[Tag], have: &[Tag], out: &mut Vec<Change>) {
    let missing: Vec<&Tag> = want
        .iter()
        .filter(|w| !have.iter().any(|h| h.tag_id == w.tag_id))
        .collect();
    if missing.is_empty() {
        return;
    }
    let names = |tags: &mut dyn Iterator<Item = &Tag>| -> Value {
        Value::Array(tags.map(|t| json!(t.name)).collect())
    };
    out.push(field(
        "tags",
        names(&mut have.iter()),
        names(&mut have.iter().chain(missing.iter().copied())),
    ));
}

/// The copy's tags plus the desired ones it lacks.
fn merged_tags(desired: &ConnectionCreateRequest, actual: &ConnectionResponse) -> Vec<Tag> {
    let mut tags = actual.tags.clone();
    for tag in desired.tags.iter().flatten() {
        if !tags.iter().any(|t| t.tag_id == tag.tag_id) {
            tags.push(tag.clone());
        }
    }
    tags
}

/// Streams matched by name, and by namespace only where names collide (as create matches them).
fn streams(want: &[StreamConfiguration], have: &[StreamConfiguration], drift: &mut Drift) {
    let colliding = colliding_names(want, have);
    let key = |s: &StreamConfiguration| -> (String, Option<String>) {
        let namespace = if colliding.contains(s.name.as_str()) {
            s.namespace.clone()
        } else {
            None
        };
        (s.name.clone(), namespace)
    };
    let label = |s: &StreamConfiguration| -> String {
        match (&s.namespace, colliding.contains(s.name.as_str())) {
            (Some(namespace), true) => format!("{namespace}.{}", s.name),
            _ => s.name.clone(),
        }
    };
    let have_by_key: HashMap<(String, Option<String>), &StreamConfiguration> =
        have.iter().map(|s| (key(s), s)).collect();
    let want_keys: BTreeSet<(String, Option<String>)> = want.iter().map(key).collect();

    for stream in want {
        let label = label(stream);
        match have_by_key.get(&key(stream)) {
            None => drift.changes.push(Change {
                field: format!("streams.{label}"),
                from: Value::Null,
                to: stream_value(stream),
                resets_state: false,
                subject: Subject::StreamAdded(label),
            }),
            Some(current) => stream_settings(&label, stream, current, drift),
        }
    }
    for stream in have {
        if !want_keys.contains(&key(stream)) {
            let label = label(stream);
            drift.changes.push(Change {
                field: format!("streams.{label}"),
                from: stream_value(stream),
                to: Value::Null,
                resets_state: false,
                subject: Subject::StreamRemoved(label),
            });
        }
    }
}

/// Names that more than one stream carries, on either side.
fn colliding_names<'a>(
    want: &'a [StreamConfiguration],
    have: &'a [StreamConfiguration],
) -> BTreeSet<&'a str> {
    let mut out = BTreeSet::new();
    for side in [want, have] {
        let mut seen = BTreeSet::new();
        for s in side {
            if !seen.insert(s.name.as_str()) {
                out.insert(s.name.as_str());
            }
        }
    }
    out
}

/// A stream as the JSON `changes` show it: its name and the settings that matter.
fn stream_value(stream: &StreamConfiguration) -> Value {
    let mut value = json!({
        "name": stream.name,
        "syncMode": stream.sync_mode.unwrap_or(SyncMode::FullRefreshOverwrite),
    });
    if let (Some(namespace), Some(map)) = (&stream.namespace, value.as_object_mut()) {
        map.insert("namespace".into(), json!(namespace));
    }
    value
}

/// The settings of one stream that both sides have.
fn stream_settings(
    label: &str,
    want: &StreamConfiguration,
    have: &StreamConfiguration,
    drift: &mut Drift,
) {
    let mut push = |setting: &'static str, from: Value, to: Value, resets_state: bool| {
        drift.changes.push(Change {
            field: format!("streams.{label}.{setting}"),
            from,
            to,
            resets_state,
            subject: Subject::Stream(label.to_string(), setting),
        });
    };
    let want_mode = want.sync_mode.unwrap_or(SyncMode::FullRefreshOverwrite);
    let have_mode = have.sync_mode.unwrap_or(SyncMode::FullRefreshOverwrite);
    if want_mode != have_mode {
        push("syncMode", json!(have_mode), json!(want_mode), true);
    }
    // A cursor or key the desired body leaves out is the source's to fill in: not compared.
    if let Some(cursor) = want.cursor_field.as_ref().filter(|c| !c.is_empty()) {
        let current = have.cursor_field.clone().unwrap_or_default();
        if *cursor != current {
            push("cursorField", json!(current), json!(cursor), true);
        }
    }
    if let Some(key) = want.primary_key.as_ref().filter(|k| !k.is_empty()) {
        let current = have.primary_key.clone().unwrap_or_default();
        if *key != current {
            push("primaryKey", json!(current), json!(key), true);
        }
    }
    let want_fields = field_set(want.selected_fields.as_deref());
    let have_fields = field_set(have.selected_fields.as_deref());
    if want_fields != have_fields {
        push(
            "selectedFields",
            fields_value(&have_fields),
            fields_value(&want_fields),
            false,
        );
    }
    let want_mappers = want.mappers.as_deref().unwrap_or_default();
    let have_mappers = have.mappers.as_deref().unwrap_or_default();
    let mut masked = Vec::new();
    let same_mappers = want_mappers.len() == have_mappers.len()
        && want_mappers.iter().zip(have_mappers).all(|(w, h)| {
            w.mapper_type == h.mapper_type
                && same_config(
                    &Value::Object(w.mapper_configuration.clone()),
                    &Value::Object(h.mapper_configuration.clone()),
                    "",
                    &mut masked,
                )
        });
    if same_mappers {
        for path in masked {
            drift.warnings.push(format!(
                "stream {label}: the mapper secret `{}` reads back masked and cannot be \
                 compared; it is left as it is",
                path.trim_start_matches('.')
            ));
        }
    } else {
        let strip = |mappers: &[crate::wire::ConfiguredStreamMapper]| -> Value {
            Value::Array(
                mappers
                    .iter()
                    .map(|m| json!({"type": m.mapper_type, "mapperConfiguration": m.mapper_configuration}))
                    .collect(),
            )
        };
        push("mappers", strip(have_mappers), strip(want_mappers), false);
    }
}

/// A field selection as a set of paths; empty and absent both mean every field.
fn field_set(fields: Option<&[SelectedFieldInfo]>) -> BTreeSet<Vec<String>> {
    fields
        .unwrap_or_default()
        .iter()
        .map(|f| f.field_path.clone())
        .collect()
}

fn fields_value(fields: &BTreeSet<Vec<String>>) -> Value {
    Value::Array(fields.iter().map(|path| json!(path.join("."))).collect())
}

/// Whether two mapper configurations agree; a masked value on the copy's side matches anything
/// and its path is recorded.
fn same_config(want: &Value, have: &Value, path: &str, masked: &mut Vec<String>) -> bool {
    match (want, have) {
        (_, Value::String(s)) if s == SECRET_MASK => {
            masked.push(path.to_string());
            true
        }
        (Value::Object(w), Value::Object(h)) => {
            w.len() == h.len()
                && w.iter().all(|(k, wv)| {
                    h.get(k)
                        .is_some_and(|hv| same_config(wv, hv, &format!("{path}.{k}"), masked))
                })
        }
        (Value::Array(w), Value::Array(h)) => {
            w.len() == h.len()
                && w.iter()
                    .zip(h)
                    .enumerate()
                    .all(|(i, (wv, hv))| same_config(wv, hv, &format!("{path}[{i}]"), masked))
        }
        _ => want == have,
    }
}
