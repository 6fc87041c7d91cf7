//! The streams of a copy: the template's, cleaned once, then matched and checked against each
//! target's catalog the way create validates them (DIGEST §7.5–§7.10, `AirbyteCatalogHelper`).

use crate::plan::MissingStreamsPolicy;
use crate::suggest;
use crate::wire::{
    SelectedFieldInfo, StreamConfiguration, StreamMapperType, StreamProperties, SyncMode,
};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// The template's streams, ready to copy: empty `selectedFields` dropped (create refuses `[]`),
/// mapper ids dropped (they belong to the template). Records the problems no plan key can fix.
pub(super) fn clean_template(
    template: &str,
    streams: &[StreamConfiguration],
    errors: &mut Vec<String>,
) -> Vec<StreamConfiguration> {
    if streams.is_empty() {
        errors.push(format!(
            "the template \"{template}\" has no streams, and a create without streams would sync \
             every stream of each source; select the streams to copy in the template"
        ));
    }
    let mut seen = HashSet::with_capacity(streams.len());
    let mut cleaned = Vec::with_capacity(streams.len());
    for stream in streams {
        let label = stream_label(&stream.name, stream.namespace.as_deref());
        if !seen.insert((stream.name.as_str(), stream.namespace.as_deref())) {
            errors.push(format!(
                "the template \"{template}\" lists {label} twice, and a create refuses duplicate \
                 streams; remove one of them from the template"
            ));
        }
        let mut stream = stream.clone();
        if stream.selected_fields.as_ref().is_some_and(Vec::is_empty) {
            stream.selected_fields = None;
        }
        if let Some(fields) = &stream.selected_fields {
            check_selection(template, &label, fields, errors);
        }
        for (position, mapper) in stream.mappers.iter_mut().flatten().enumerate() {
            mapper.id = None;
            let mut masked = Vec::new();
            masked_secrets(&mapper.mapper_configuration, "", &mut masked);
            if !masked.is_empty() {
                errors.push(format!(
                    "the template \"{template}\" has mapper {} ({}) on {label} whose secret {} \
                     Airbyte returns masked, so it cannot be copied; remove that mapper from the \
                     template (or use one without a secret) and add it to the copies by hand",
                    position + 1,
                    mapper_type(mapper.mapper_type),
                    quoted(masked.iter().map(String::as_str)),
                ));
            }
        }
        cleaned.push(stream);
    }
    cleaned
}

/// Field selections create refuses whatever the source: empty or nested paths, duplicates.
fn check_selection(
    template: &str,
    label: &str,
    fields: &[SelectedFieldInfo],
    errors: &mut Vec<String>,
) {
    if fields.iter().any(|f| f.field_path.is_empty()) {
        errors.push(format!(
            "the template \"{template}\" selects an empty field path on {label}; fix the \
             template's field selection"
        ));
    }
    if fields.iter().any(|f| f.field_path.len() > 1) {
        errors.push(format!(
            "the template \"{template}\" selects a nested field on {label}, which create refuses \
             (only top-level fields can be selected); fix the template's field selection"
        ));
    }
    let mut seen = HashSet::with_capacity(fields.len());
    let twice: Vec<&str> = fields
        .iter()
        .filter_map(|f| f.field_path.first())
        .filter(|f| !seen.insert(f.as_str()))
        .map(String::as_str)
        .collect();
    if !twice.is_empty() {
        errors.push(format!(
            "the template \"{template}\" selects {} more than once on {label}; fix the \
             template's field selection",
            quoted(twice)
        ));
    }
}

/// What Airbyte puts in place of a secret it will not return (`MapperSecretHelper`). Matched
/// exactly: a looser rule (any run of `*`) would refuse a row filter that compares with `"***"`,
/// with no way around it, while a miss only costs a 400 at apply.
pub(crate) const SECRET_MASK: &str = "**********";

/// Collects the paths of masked values in a mapper configuration.
fn masked_secrets(config: &Map<String, Value>, prefix: &str, out: &mut Vec<String>) {
    for (key, value) in config {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        masked_value(value, path, out);
    }
}

fn masked_value(value: &Value, path: String, out: &mut Vec<String>) {
    match value {
        Value::String(s) if s == SECRET_MASK => out.push(path),
        Value::Object(map) => masked_secrets(map, &path, out),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                masked_value(item, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn mapper_type(mapper: StreamMapperType) -> &'static str {
    match mapper {
        StreamMapperType::Hashing => "hashing",
        StreamMapperType::FieldRenaming => "field-renaming",
        StreamMapperType::RowFiltering => "row-filtering",
        StreamMapperType::Encryption => "encryption",
        StreamMapperType::FieldFiltering => "field-filtering",
    }
}

/// The target's catalog by stream name, built once per target.
struct CatalogIndex<'a> {
    catalog: &'a [StreamProperties],
    by_name: HashMap<&'a str, Occurrence>,
}

/// Where a name sits in the catalog: one position, or several (told apart by namespace).
enum Occurrence {
    One(usize),
    Several,
}

/// What matching a template stream against the catalog found.
enum Lookup<'a> {
    Found(usize),
    /// Not there. `namespaces`: the name exists, but only in these other namespaces.
    Missing {
        namespaces: Vec<Option<&'a str>>,
    },
    /// Several catalog streams share both name and namespace.
    Ambiguous,
}

impl<'a> CatalogIndex<'a> {
    fn new(catalog: &'a [StreamProperties]) -> Self {
        let mut by_name = HashMap::with_capacity(catalog.len());
        for (position, stream) in catalog.iter().enumerate() {
            by_name
                .entry(stream.stream_name.as_str())
                .and_modify(|seen| *seen = Occurrence::Several)
                .or_insert(Occurrence::One(position));
        }
        CatalogIndex { catalog, by_name }
    }

    /// Matches as create does: by name; the namespace only decides between streams that share
    /// the name (`findAndValidateCatalogStreamAndConfiguration`).
    fn find(&self, name: &str, namespace: Option<&str>) -> Lookup<'a> {
        match self.by_name.get(name) {
            None => Lookup::Missing {
                namespaces: Vec::new(),
            },
            Some(Occurrence::One(position)) => Lookup::Found(*position),
            Some(Occurrence::Several) => {
                let same_name = self
                    .catalog
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.stream_name == name);
                let matches: Vec<usize> = same_name
                    .clone()
                    .filter(|(_, s)| s.stream_namespace.as_deref() == namespace)
                    .map(|(position, _)| position)
                    .collect();
                match matches[..] {
                    [position] => Lookup::Found(position),
                    [] => Lookup::Missing {
                        namespaces: same_name
                            .map(|(_, s)| s.stream_namespace.as_deref())
                            .collect(),
                    },
                    _ => Lookup::Ambiguous,
                }
            }
        }
    }

    /// The catalog's stream name nearest to a missing one, for "did you mean".
    fn closest(&self, name: &str) -> Option<&'a str> {
        suggest::closest(name, self.catalog.iter().map(|s| s.stream_name.as_str()))
    }
}

/// Copies the template's streams for one target, checked against its catalog.
pub(super) fn copy_streams(
    streams: &[StreamConfiguration],
    source: &str,
    catalog: &[StreamProperties],
    missing_streams: MissingStreamsPolicy,
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Vec<StreamConfiguration> {
    let index = CatalogIndex::new(catalog);
    let mut copied = Vec::with_capacity(streams.len());
    let mut taken: HashMap<usize, &StreamConfiguration> = HashMap::with_capacity(streams.len());
    let mut skipped = 0;
    for stream in streams {
        let position = match index.find(&stream.name, stream.namespace.as_deref()) {
            Lookup::Found(position) => position,
            Lookup::Missing { namespaces } => {
                let missing = missing_message(&index, stream, source, &namespaces);
                match missing_streams {
                    MissingStreamsPolicy::Fail => errors.push(format!(
                        "{missing} (set missing_streams: skip to leave it out)"
                    )),
                    MissingStreamsPolicy::Skip => {
                        skipped += 1;
                        warnings.push(format!(
                            "{missing}; the copy leaves it out (missing_streams: skip)"
                        ));
                    }
                }
                continue;
            }
            Lookup::Ambiguous => {
                errors.push(format!(
                    "source \"{source}\" has several streams named \"{}\" in namespace {}, and \
                     Airbyte cannot tell them apart; leave this source out of the plan",
                    stream.name,
                    namespace_label(stream.namespace.as_deref()),
                ));
                continue;
            }
        };
        let found = &catalog[position];
        if let Some(first) = taken.insert(position, stream) {
            errors.push(format!(
                "the template's {} and {} both match stream \"{}\" of source \"{source}\", and \
                 a create refuses the same stream twice; leave this source out of the plan",
                stream_label(&first.name, first.namespace.as_deref()),
                stream_label(&stream.name, stream.namespace.as_deref()),
                found.stream_name,
            ));
            continue;
        }
        copied.push(copy_stream(stream, found, source, errors, warnings));
    }
    if skipped > 0 && skipped == streams.len() {
        errors.push(format!(
            "none of the template's streams exist in source \"{source}\", and a create without \
             streams would sync every stream of the source; leave this source out of the plan"
        ));
    }
    copied
}

fn missing_message(
    index: &CatalogIndex<'_>,
    stream: &StreamConfiguration,
    source: &str,
    namespaces: &[Option<&str>],
) -> String {
    let name = &stream.name;
    if namespaces.is_empty() {
        let hint = index
            .closest(name)
            .map(|near| format!(", did you mean \"{near}\"?"))
            .unwrap_or_default();
        format!("stream \"{name}\" does not exist in source \"{source}\"{hint}")
    } else {
        format!(
            "stream \"{name}\" in namespace {} does not exist in source \"{source}\" (it has \
             \"{name}\" in namespace {})",
            namespace_label(stream.namespace.as_deref()),
            namespaces
                .iter()
                .map(|n| namespace_label(*n))
                .collect::<Vec<_>>()
                .join(", "),
        )
    }
}

/// One template stream, fitted to and checked against the target's catalog entry.
fn copy_stream(
    template: &StreamConfiguration,
    found: &StreamProperties,
    source: &str,
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> StreamConfiguration {
    let name = &template.name;
    let mut copy = template.clone();
    if template.namespace.is_some() && found.stream_namespace != template.namespace {
        warnings.push(format!(
            "stream \"{name}\" is in namespace {} in source \"{source}\", not {} as in the \
             template; the copy uses the source's",
            namespace_label(found.stream_namespace.as_deref()),
            namespace_label(template.namespace.as_deref()),
        ));
    }
    // The copy names the stream as the target's catalog does.
    copy.namespace.clone_from(&found.stream_namespace);

    // An omitted mode is `full_refresh_overwrite`, which create never checks (DIGEST §7.9).
    let mode = template.sync_mode.unwrap_or(SyncMode::FullRefreshOverwrite);
    if let Some(modes) = &found.sync_modes {
        if mode != SyncMode::FullRefreshOverwrite && !supports(modes, mode) {
            errors.push(format!(
                "stream \"{name}\" cannot use sync mode {mode} with source \"{source}\" and this \
                 destination (they support {}); change the stream's sync mode in the template \
                 or leave this source out of the plan",
                modes
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ));
        }
    }

    let cursor = fit_cursor(template, found, mode, &mut copy, source, errors);
    let key = fit_primary_key(template, found, mode, &mut copy, source, errors);

    check_selected_fields(template, found, mode, cursor, key, source, errors);
    copy
}

/// Sets the copy's `cursorField` and returns the cursor the server will use.
fn fit_cursor<'a>(
    template: &'a StreamConfiguration,
    found: &'a StreamProperties,
    mode: SyncMode,
    copy: &mut StreamConfiguration,
    source: &str,
    errors: &mut Vec<String>,
) -> &'a [String] {
    let name = &template.name;
    if found.source_defined_cursor_field {
        // The server takes the source's cursor and refuses any other (DIGEST §7.8).
        copy.cursor_field = None;
        return &found.default_cursor_field;
    }
    if !mode.is_incremental() {
        // Full refresh ignores a configured cursor; dropping it means a field this source lacks
        // cannot matter.
        copy.cursor_field = None;
        return &[];
    }
    match template.cursor_field.as_deref() {
        Some(cursor) if !cursor.is_empty() => {
            if !has_path(found, cursor) {
                errors.push(format!(
                    "stream \"{name}\" has no field {} in source \"{source}\" to use as its \
                     cursor; change the cursor in the template or leave this source out of the plan",
                    quoted_path(cursor),
                ));
            }
            cursor
        }
        _ => {
            copy.cursor_field = None;
            if found.default_cursor_field.is_empty() {
                errors.push(format!(
                    "stream \"{name}\" needs a cursor for {mode}, but the template sets none and \
                     source \"{source}\" has no default cursor; set a cursor on the stream in the \
                     template"
                ));
            }
            &found.default_cursor_field
        }
    }
}

/// Sets the copy's `primaryKey` and returns the key the server will use.
fn fit_primary_key<'a>(
    template: &'a StreamConfiguration,
    found: &'a StreamProperties,
    mode: SyncMode,
    copy: &mut StreamConfiguration,
    source: &str,
    errors: &mut Vec<String>,
) -> &'a [Vec<String>] {
    let name = &template.name;
    if !found.source_defined_primary_key.is_empty() {
        // The server takes the source's key and refuses any other (DIGEST §7.8).
        copy.primary_key = None;
        return &found.source_defined_primary_key;
    }
    if matches!(
        mode,
        SyncMode::FullRefreshOverwrite | SyncMode::FullRefreshAppend
    ) {
        // These modes ignore a configured key (the server keeps the discovered one).
        copy.primary_key = None;
        return &[];
    }
    let key = template.primary_key.as_deref().unwrap_or_default();
    if key.is_empty() {
        copy.primary_key = None;
        if needs_primary_key(mode) {
            errors.push(format!(
                "stream \"{name}\" needs a primary key for {mode}, but the template sets none and \
                 source \"{source}\" defines none; set a primary key on the stream in the template"
            ));
        }
        return &[];
    }
    let unknown: Vec<&Vec<String>> = key.iter().filter(|p| !has_path(found, p)).collect();
    if !unknown.is_empty() {
        errors.push(format!(
            "stream \"{name}\" has no field {} in source \"{source}\" for its primary key; \
             change the primary key in the template or leave this source out of the plan",
            unknown
                .iter()
                .map(|p| quoted_path(p))
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    if key
        .iter()
        .any(|path| path.iter().enumerate().any(|(i, f)| path[..i].contains(f)))
    {
        errors.push(format!(
            "stream \"{name}\" has a primary key that names a field twice, which create refuses; \
             fix the primary key in the template"
        ));
    }
    key
}

/// `selectedFields` must exist in the source, and hold the key and cursor the mode needs.
fn check_selected_fields(
    template: &StreamConfiguration,
    found: &StreamProperties,
    mode: SyncMode,
    cursor: &[String],
    key: &[Vec<String>],
    source: &str,
    errors: &mut Vec<String>,
) {
    let Some(selected) = &template.selected_fields else {
        return;
    };
    let name = &template.name;
    // Only top-level fields can be selected: the first element of every known path.
    let top_level: HashSet<&str> = found
        .property_fields
        .iter()
        .filter_map(|p| p.first())
        .map(String::as_str)
        .collect();
    let chosen: HashSet<&str> = selected
        .iter()
        .filter_map(|f| f.field_path.first())
        .map(String::as_str)
        .collect();
    let unknown: Vec<&str> = selected
        .iter()
        .filter_map(|f| f.field_path.first())
        .map(String::as_str)
        .filter(|f| !top_level.contains(f))
        .collect();
    if !unknown.is_empty() {
        errors.push(format!(
            "stream \"{name}\" selects {} that source \"{source}\" does not have; change the \
             field selection in the template or leave this source out of the plan",
            fields_label(&unknown),
        ));
    }
    if needs_primary_key(mode) {
        let left_out: Vec<&str> = key
            .iter()
            .filter_map(|p| p.first())
            .map(String::as_str)
            .filter(|f| !chosen.contains(f))
            .collect();
        if !left_out.is_empty() {
            errors.push(format!(
                "stream \"{name}\" leaves its primary key {} out of its selected fields, which \
                 {mode} needs (source \"{source}\"); add it to the field selection in the template",
                fields_label(&left_out),
            ));
        }
    }
    if mode.is_incremental() {
        if let Some(field) = cursor.first().filter(|f| !chosen.contains(f.as_str())) {
            errors.push(format!(
                "stream \"{name}\" leaves its cursor field \"{field}\" out of its selected \
                 fields, which {mode} needs (source \"{source}\"); add it to the field selection \
                 in the template"
            ));
        }
    }
}

/// The modes create refuses without a primary key, and whose field selection must include it
/// (`requiredPrimaryKeySyncModes`). Soft-delete modes are not among them on the server.
fn needs_primary_key(mode: SyncMode) -> bool {
    matches!(
        mode,
        SyncMode::IncrementalDedupedHistory
            | SyncMode::FullRefreshOverwriteDeduped
            | SyncMode::IncrementalUpdate
            | SyncMode::FullRefreshUpdate
    )
}

/// Whether the source and destination pair support a mode. `GET /streams` never lists
/// `full_refresh_overwrite_deduped`, though create takes it when the source can full-refresh and
/// the destination can dedup (DIGEST §5). The destination is the template's, whose own use of the
/// mode shows it can; so the mode is taken when the source offers any full-refresh mode.
fn supports(modes: &[SyncMode], mode: SyncMode) -> bool {
    modes.contains(&mode)
        || (mode == SyncMode::FullRefreshOverwriteDeduped
            && modes.iter().any(|m| !m.is_incremental()))
}

fn has_path(found: &StreamProperties, path: &[String]) -> bool {
    found.property_fields.iter().any(|p| p == path)
}

fn stream_label(name: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(namespace) => format!("stream \"{name}\" (namespace \"{namespace}\")"),
        None => format!("stream \"{name}\""),
    }
}

fn namespace_label(namespace: Option<&str>) -> String {
    namespace.map_or_else(|| "(none)".to_string(), |n| format!("\"{n}\""))
}

fn quoted<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    items
        .into_iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn quoted_path(path: &[String]) -> String {
    format!("\"{}\"", path.join("."))
}

fn fields_label(fields: &[&str]) -> String {
    let noun = if fields.len() == 1 { "field" } else { "fields" };
    format!("{noun} {}", quoted(fields.iter().copied()))
}
