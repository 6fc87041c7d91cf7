//! The create and patch rules of a connection (DIGEST §4.1, §7), as pure functions.
//!
//! The order of the checks and the wording of every message follow Airbyte's
//! `AirbyteCatalogHelper` (`getValidConfiguredStreams`, `validateFieldSelection`,
//! `validateStreamConfig`, `validateCursorField`, `validatePrimaryKey`, `validateCronConfiguration`):
//! find the stream, check its field selection, then (unless the mode is omitted or
//! `full_refresh_overwrite`) that the pair supports the mode, then cursor and primary key; a stream
//! named twice fails after its first copy was checked. Lists in messages are printed the way
//! Kotlin prints them (`[id, name]`, `[[id]]`), as the real server does.
//!
//! What the server stores for an accepted stream follows `toAirbyteStreamConfiguration`: the
//! cursor and key the source defines win over the request's, and modes that do not use a cursor
//! or key keep the discovered defaults.

use super::catalog::{Catalog, CatalogStream, DestinationSyncMode};
use super::problem::{ApiError, MASK};
use crate::cron;
use crate::wire::{
    ConfiguredStreamMapper, ConnectionSchedule, ScheduleType, StreamConfiguration,
    StreamMapperType, SyncMode,
};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use uuid::Uuid;

/// Checks a create or patch schedule and returns it as stored: a cron expression without its
/// trailing ` UTC`; no expression for `manual`. (`basic` never gets here: the request type
/// refuses it.)
pub fn check_schedule(schedule: &ConnectionSchedule) -> Result<ConnectionSchedule, ApiError> {
    match schedule.schedule_type {
        ScheduleType::Manual => Ok(ConnectionSchedule {
            schedule_type: ScheduleType::Manual,
            cron_expression: None,
        }),
        ScheduleType::Cron => {
            let Some(expression) = &schedule.cron_expression else {
                return Err(ApiError::bad_request(
                    "Missing cron expression in the schedule.",
                ));
            };
            check_cron(expression).map_err(ApiError::bad_request)?;
            Ok(ConnectionSchedule {
                schedule_type: ScheduleType::Cron,
                cron_expression: Some(cron::strip_utc(expression).to_string()),
            })
        }
    }
}

const QUARTZ_DOC: &str =
    "https://www.quartz-scheduler.org/documentation/quartz-2.3.0/tutorials/crontrigger.html";

/// The cron rules of [`crate::cron`], with the messages of Airbyte's
/// `AirbyteCatalogHelper.validateCronConfiguration`, in its order: the parser (cron-utils,
/// Quartz: the number of parts, then each field), its validation (one of day-of-month and
/// day-of-week must be `?`), then the one-hour minimum (seconds and minutes must be numbers).
/// Every message quotes the expression as sent, ` UTC` included.
fn check_cron(original: &str) -> Result<(), String> {
    let parse_error = |why: &str| {
        format!(
            "The cron expression {original} is not valid. Error: {why}. Please check the cron expression format at {QUARTZ_DOC}"
        )
    };
    // Airbyte's normalisation: an expression ending in `UTC` loses every `UTC`, then is trimmed.
    let normalized = if original.ends_with("UTC") {
        original.replace("UTC", "").trim().to_string()
    } else {
        original.to_string()
    };
    let parts: Vec<&str> = normalized.split_whitespace().collect();
    if !(6..=7).contains(&parts.len()) {
        return Err(parse_error(&format!(
            "Cron expression contains {} parts but we expect one of [6, 7]",
            parts.len()
        )));
    }
    let is_number = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    // The fields, each checked where the other rules cannot interfere.
    let (dom, dow) = (parts[3], parts[5]);
    let mut probes = Vec::new();
    let year = parts.get(6).copied().unwrap_or("");
    let rest = |dom: &str, dow: &str| format!("0 0 {} {dom} {} {dow} {year}", parts[2], parts[4]);
    match (dom, dow) {
        ("?", "?") => probes.push(rest("?", "*")),
        ("?", _) | (_, "?") => probes.push(rest(dom, dow)),
        _ => {
            probes.push(rest(dom, "?"));
            probes.push(rest("?", dow));
        }
    }
    for (i, field) in parts[..2].iter().enumerate() {
        if is_number(field) {
            let mut probe = ["0"; 2];
            probe[i] = field;
            probes.push(format!("{} {} 0 ? * *", probe[0], probe[1]));
        }
    }
    for probe in probes {
        cron::check(probe.trim()).map_err(|e| parse_error(field_reason(&e)))?;
    }
    if (dom == "?") == (dow == "?") {
        return Err(parse_error(
            "Both, a day-of-week AND a day-of-month parameter, are not supported.",
        ));
    }
    if !is_number(parts[0]) || !is_number(parts[1]) {
        return Err(format!(
            "The cron expression {original} is not valid or is less than the one hour minimum. \
             The seconds and minutes values cannot be `*`."
        ));
    }
    // Anything the probes could not see (none is known) still gets a parser-style answer.
    cron::check(&normalized).map_err(|e| parse_error(field_reason(&e)))
}

/// The reason inside one of [`cron::check`]'s messages (`The cron expression X is not valid:
/// <reason>.`), to quote in Airbyte's wording.
fn field_reason(message: &str) -> &str {
    message
        .split_once(" is not valid: ")
        .map_or(message, |(_, why)| why)
        .trim_end_matches('.')
}

/// What a create without stream configurations selects: every discovered stream, as
/// `full_refresh_overwrite` with the discovered cursor and key.
pub fn default_streams(catalog: &Catalog) -> Vec<StreamConfiguration> {
    catalog
        .streams()
        .iter()
        .map(|stream| StreamConfiguration {
            name: stream.name.clone(),
            namespace: stream.namespace.clone(),
            sync_mode: Some(SyncMode::FullRefreshOverwrite),
            cursor_field: non_empty(stream.default_cursor_field.clone()),
            primary_key: non_empty(stream.source_defined_primary_key.clone()),
            include_files: None,
            destination_object_name: None,
            selected_fields: None,
            mappers: None,
        })
        .collect()
}

/// Validates the requested streams against the source's catalog and the destination's modes,
/// and returns them as stored. `previous` are the connection's current streams on a patch
/// (their mapper ids and secrets may be referred to); `new_id` makes mapper ids.
pub fn configure_streams(
    catalog: &Catalog,
    destination: &[DestinationSyncMode],
    requested: &[StreamConfiguration],
    previous: &[StreamConfiguration],
    new_id: &mut dyn FnMut() -> Uuid,
) -> Result<Vec<StreamConfiguration>, ApiError> {
    let mut seen = HashSet::new();
    let mut configured = Vec::with_capacity(requested.len());
    for config in requested {
        let stream = find_stream(catalog, &config.name, config.namespace.as_deref())?;
        check_field_selection(config, stream)?;
        check_sync_mode(config, stream, destination)?;
        configured.push(stored_stream(config, stream));
        if !seen.insert((config.name.as_str(), config.namespace.as_deref())) {
            return Err(ApiError::bad_request(format!(
                "Duplicate stream found in configuration for stream name [{}] in namespace [{}].",
                config.name,
                config.namespace.as_deref().unwrap_or("null")
            )));
        }
    }
    // Two entries that found the same stream (e.g. one without `namespace`, one with the
    // discovered one) pass the check above but not the handler's
    // `validateCatalogDoesntContainDuplicateStreamNames`: an IllegalArgumentException, which the
    // public API answers with 500.
    let mut resolved = HashSet::new();
    for stream in &configured {
        if !resolved.insert((stream.namespace.as_deref(), stream.name.as_str())) {
            return Err(ApiError::unexpected_problem(format!(
                "Catalog contains duplicate stream names: {}.{}",
                stream.namespace.as_deref().unwrap_or("null"),
                stream.name
            )));
        }
    }
    let known: HashMap<Uuid, &ConfiguredStreamMapper> = previous
        .iter()
        .flat_map(|s| s.mappers.iter().flatten())
        .filter_map(|m| Some((m.id?, m)))
        .collect();
    for stream in &mut configured {
        if let Some(mappers) = &mut stream.mappers {
            for mapper in mappers {
                settle_mapper(&stream.name, mapper, &known, new_id)?;
            }
        }
    }
    Ok(configured)
}

/// Streams match by name; the namespace only decides between streams that share the name.
fn find_stream<'c>(
    catalog: &'c Catalog,
    name: &str,
    namespace: Option<&str>,
) -> Result<&'c CatalogStream, ApiError> {
    let by_name: Vec<&CatalogStream> = catalog.named(name).collect();
    if let [only] = by_name.as_slice() {
        return Ok(only);
    }
    let matches: Vec<&CatalogStream> = by_name
        .into_iter()
        .filter(|s| s.namespace.as_deref() == namespace)
        .collect();
    let namespace = namespace.unwrap_or("null");
    match matches.as_slice() {
        [only] => Ok(only),
        [] => Err(ApiError::bad_request(format!(
            "No streams found with name [{name}] and namespace [{namespace}]. Please call the \
             https://reference.airbyte.com/reference/getstreamproperties endpoint to see the valid \
             stream name and namespace combinations."
        ))),
        _ => Err(ApiError::bad_request(format!(
            "Multiple streams found with name [{name}] and namespace [{namespace}]. Please call \
             the https://reference.airbyte.com/reference/getstreamproperties endpoint to see the \
             valid stream name and namespace combinations."
        ))),
    }
}

fn check_field_selection(
    config: &StreamConfiguration,
    stream: &CatalogStream,
) -> Result<(), ApiError> {
    let Some(selected) = &config.selected_fields else {
        return Ok(());
    };
    let name = &stream.name;
    let top_level = stream.top_level_fields();
    if selected.is_empty() {
        return Err(ApiError::bad_request(format!(
            "No fields selected for stream {name}. The list of valid field names includes: {}.",
            list(&top_level)
        )));
    }
    let mut fields = Vec::with_capacity(selected.len());
    for field in selected {
        match field.field_path.as_slice() {
            [] => {
                return Err(ApiError::bad_request(format!(
                    "Selected field path cannot be empty for stream:  {name}."
                )));
            }
            [only] => fields.push(only.as_str()),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "Nested field selection not supported for stream {name}."
                )));
            }
        }
    }
    let unique: HashSet<&str> = fields.iter().copied().collect();
    if unique.len() != fields.len() {
        return Err(ApiError::bad_request(format!(
            "Duplicate fields selected in configuration for stream: {name}."
        )));
    }
    if !fields.iter().all(|f| top_level.contains(f)) {
        return Err(ApiError::bad_request(format!(
            "Invalid fields selected for stream {name}. The list of valid field names includes: {}.",
            list(&top_level)
        )));
    }
    let Some(mode) = config.sync_mode else {
        return Ok(());
    };
    let key_modes = [
        SyncMode::IncrementalDedupedHistory,
        SyncMode::FullRefreshOverwriteDeduped,
        SyncMode::IncrementalUpdate,
        SyncMode::FullRefreshUpdate,
    ];
    if key_modes.contains(&mode)
        && !primary_key(stream, config)
            .iter()
            .filter_map(|key| key.first())
            .all(|f| unique.contains(f.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "Primary key fields are not selected properly for stream: {name}. Please include \
             primary key(s) in the configuration for this stream."
        )));
    }
    if mode.is_incremental() {
        if let Some(first) = cursor(stream, config).first() {
            if !unique.contains(first.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "Cursor field is not selected properly for stream: {name}. Please include the \
                     cursor field in selected fields for this stream."
                )));
            }
        }
    }
    Ok(())
}

/// The mode must be one the source and destination support together; then the cursor and key
/// the mode needs must make sense. Omitted and `full_refresh_overwrite` skip all of it, as on
/// the real server.
fn check_sync_mode(
    config: &StreamConfiguration,
    stream: &CatalogStream,
    destination: &[DestinationSyncMode],
) -> Result<(), ApiError> {
    let mode = match config.sync_mode {
        None | Some(SyncMode::FullRefreshOverwrite) => return Ok(()),
        Some(mode) => mode,
    };
    let valid = stream.valid_sync_modes(destination);
    if !valid.contains(&mode) {
        let valid: Vec<&str> = valid.iter().map(|m| m.as_str()).collect();
        return Err(ApiError::bad_request(format!(
            "Cannot set sync mode to {mode} for stream {}. Valid sync modes are: {}",
            config.name,
            list(&valid)
        )));
    }
    match mode {
        SyncMode::IncrementalAppend => check_cursor(config.cursor_field.as_deref(), stream),
        SyncMode::IncrementalDedupedHistory => {
            check_cursor(config.cursor_field.as_deref(), stream)?;
            check_primary_key(config.primary_key.as_deref(), stream)
        }
        SyncMode::FullRefreshUpdate | SyncMode::IncrementalUpdate => {
            check_primary_key(config.primary_key.as_deref(), stream)
        }
        _ => Ok(()),
    }
}

fn check_cursor(cursor: Option<&[String]>, stream: &CatalogStream) -> Result<(), ApiError> {
    let name = &stream.name;
    let cursor = cursor.unwrap_or_default();
    if stream.source_defined_cursor {
        let given: HashSet<&String> = cursor.iter().collect();
        let defined: HashSet<&String> = stream.default_cursor_field.iter().collect();
        if !cursor.is_empty() && given != defined {
            return Err(ApiError::bad_request(format!(
                "Cursor Field {} is already defined by source for stream: {name}. Do not include a \
                 cursor field configuration for this stream.",
                list(cursor)
            )));
        }
    } else if !cursor.is_empty() {
        if !stream.has_field(cursor) {
            return Err(ApiError::bad_request(format!(
                "Invalid cursor field for stream: {name}. The list of valid cursor fields include: \
                 {}.",
                paths(&stream.fields)
            )));
        }
    } else if stream.default_cursor_field.is_empty() {
        return Err(ApiError::bad_request(format!(
            "No default cursor field for stream: {name}. Please include a cursor field \
             configuration for this stream."
        )));
    }
    Ok(())
}

fn check_primary_key(key: Option<&[Vec<String>]>, stream: &CatalogStream) -> Result<(), ApiError> {
    let name = &stream.name;
    let key = key.unwrap_or_default();
    let defined = &stream.source_defined_primary_key;
    if !defined.is_empty() && !key.is_empty() && defined.as_slice() != key {
        return Err(ApiError::bad_request(format!(
            "Primary key for stream: {name} is already pre-defined. Please remove the primaryKey \
             or provide the value as {}.",
            paths(defined)
        )));
    }
    if defined.is_empty() && key.is_empty() {
        return Err(ApiError::bad_request(format!(
            "No default primary key for stream: {name}. Please include a primary key configuration \
             for this stream."
        )));
    }
    for part in key {
        if !stream.has_field(part) {
            return Err(ApiError::bad_request(format!(
                "Invalid primary key for stream: {name}. The list of valid primary keys fields: {}.",
                paths(&stream.fields)
            )));
        }
        let unique: HashSet<&String> = part.iter().collect();
        if unique.len() != part.len() {
            return Err(ApiError::bad_request(format!(
                "Duplicate primary key detected for stream: {name}, please don't provide the same \
                 column more than once. Key: {}",
                paths(key)
            )));
        }
    }
    Ok(())
}

/// The cursor a stream ends up with: the source's when it defines one, else the request's,
/// else the discovered default.
fn cursor(stream: &CatalogStream, config: &StreamConfiguration) -> Vec<String> {
    match &config.cursor_field {
        Some(given) if !stream.source_defined_cursor && !given.is_empty() => given.clone(),
        _ => stream.default_cursor_field.clone(),
    }
}

/// The key a stream ends up with: the source's when it defines one, else the request's.
fn primary_key(stream: &CatalogStream, config: &StreamConfiguration) -> Vec<Vec<String>> {
    if stream.source_defined_primary_key.is_empty() {
        config.primary_key.clone().unwrap_or_default()
    } else {
        stream.source_defined_primary_key.clone()
    }
}

fn stored_stream(config: &StreamConfiguration, stream: &CatalogStream) -> StreamConfiguration {
    let mode = config.sync_mode.unwrap_or(SyncMode::FullRefreshOverwrite);
    let cursor_field = if mode.is_incremental() {
        cursor(stream, config)
    } else {
        stream.default_cursor_field.clone()
    };
    let primary_key = match mode {
        SyncMode::FullRefreshOverwrite | SyncMode::FullRefreshAppend => {
            stream.source_defined_primary_key.clone()
        }
        _ => primary_key(stream, config),
    };
    StreamConfiguration {
        name: stream.name.clone(),
        // Airbyte stores the stream as discovered: a namespace spelled otherwise in the request
        // reads back as the source's.
        namespace: stream.namespace.clone(),
        sync_mode: Some(mode),
        cursor_field: non_empty(cursor_field),
        primary_key: non_empty(primary_key),
        include_files: config.include_files,
        destination_object_name: config.destination_object_name.clone(),
        selected_fields: config.selected_fields.clone(),
        mappers: config.mappers.clone(),
    }
}

/// Gives a mapper its id (kept when it names one of the connection's mappers, new otherwise)
/// and refuses a masked secret that no stored secret stands behind.
fn settle_mapper(
    stream: &str,
    mapper: &mut ConfiguredStreamMapper,
    known: &HashMap<Uuid, &ConfiguredStreamMapper>,
    new_id: &mut dyn FnMut() -> Uuid,
) -> Result<(), ApiError> {
    let previous = mapper
        .id
        .and_then(|id| known.get(&id))
        .filter(|p| p.mapper_type == mapper.mapper_type);
    mapper.id = Some(previous.and_then(|p| p.id).unwrap_or_else(new_id));
    if mapper.mapper_type != StreamMapperType::Encryption {
        return Ok(());
    }
    if mapper
        .mapper_configuration
        .get("key")
        .and_then(Value::as_str)
        != Some(MASK)
    {
        return Ok(());
    }
    let stored = previous
        .and_then(|p| p.mapper_configuration.get("key"))
        .filter(|k| k.as_str() != Some(MASK));
    match stored {
        Some(key) => {
            mapper
                .mapper_configuration
                .insert("key".to_string(), key.clone());
            Ok(())
        }
        None => Err(ApiError::mapper_secret_not_found(format!(
            "The encryption mapper on stream {stream} has a masked `key` ({MASK}) and no stored \
             secret matches it. Send the real key."
        ))),
    }
}

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

/// A list as Kotlin prints it: `[a, b]`.
fn list<T: Display>(items: &[T]) -> String {
    let parts: Vec<String> = items.iter().map(ToString::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// A list of field paths as Kotlin prints it: `[[id], [address, city]]`.
fn paths(items: &[Vec<String>]) -> String {
    let parts: Vec<String> = items.iter().map(|p| list(p)).collect();
    format!("[{}]", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::catalog::SourceSyncMode;
    use serde_json::json;

    fn catalog() -> Catalog {
        let fields = |names: &[&str]| names.iter().map(|n| vec![(*n).to_string()]).collect();
        Catalog::new(vec![
            CatalogStream {
                name: "orders".into(),
                namespace: Some("public".into()),
                fields: fields(&["id", "status", "updated_at"]),
                sync_modes: vec![SourceSyncMode::FullRefresh, SourceSyncMode::Incremental],
                default_cursor_field: vec![],
                source_defined_cursor: false,
                source_defined_primary_key: vec![],
            },
            CatalogStream {
                name: "products".into(),
                namespace: Some("public".into()),
                fields: fields(&["id", "updated_at"]),
                sync_modes: vec![SourceSyncMode::FullRefresh, SourceSyncMode::Incremental],
                default_cursor_field: vec!["updated_at".into()],
                source_defined_cursor: true,
                source_defined_primary_key: vec![vec!["id".into()]],
            },
        ])
    }

    fn run(streams: serde_json::Value) -> Result<Vec<StreamConfiguration>, String> {
        let requested: Vec<StreamConfiguration> = serde_json::from_value(streams).unwrap();
        let dest = [
            DestinationSyncMode::Overwrite,
            DestinationSyncMode::Append,
            DestinationSyncMode::AppendDedup,
        ];
        configure_streams(&catalog(), &dest, &requested, &[], &mut Uuid::new_v4)
            .map_err(|e| e.0.message().to_string())
    }

    #[test]
    fn each_rule_has_its_message() {
        let cases = [
            (
                json!([{"name": "x"}]),
                "No streams found with name [x] and namespace [null]",
            ),
            (
                json!([{"name": "orders", "selectedFields": []}]),
                "No fields selected for stream orders. The list of valid field names includes: [id, status, updated_at].",
            ),
            (
                json!([{"name": "orders", "syncMode": "incremental_append"}]),
                "No default cursor field for stream: orders",
            ),
            (
                json!([{"name": "orders", "syncMode": "incremental_deduped_history", "cursorField": ["updated_at"]}]),
                "No default primary key for stream: orders",
            ),
            (
                json!([{"name": "orders", "syncMode": "full_refresh_update"}]),
                "Cannot set sync mode to full_refresh_update for stream orders. Valid sync modes are: [full_refresh_overwrite, full_refresh_append, incremental_append, incremental_deduped_history]",
            ),
            (
                json!([{"name": "products", "syncMode": "incremental_append", "cursorField": ["id"]}]),
                "Cursor Field [id] is already defined by source for stream: products.",
            ),
            (
                json!([{"name": "products", "syncMode": "incremental_deduped_history", "primaryKey": [["updated_at"]]}]),
                "Primary key for stream: products is already pre-defined. Please remove the primaryKey or provide the value as [[id]].",
            ),
            (
                json!([{"name": "orders"}, {"name": "orders"}]),
                "Duplicate stream found in configuration for stream name [orders] in namespace [null].",
            ),
        ];
        for (streams, expected) in cases {
            let err = run(streams.clone()).unwrap_err();
            assert!(err.starts_with(expected), "{streams}: {err}");
        }
    }

    #[test]
    fn source_defined_cursor_and_key_are_filled_in() {
        let stored =
            run(json!([{"name": "products", "syncMode": "incremental_deduped_history"}])).unwrap();
        assert_eq!(stored[0].cursor_field, Some(vec!["updated_at".to_string()]));
        assert_eq!(stored[0].primary_key, Some(vec![vec!["id".to_string()]]));
        assert_eq!(stored[0].namespace.as_deref(), Some("public"));
    }

    #[test]
    fn schedules_are_normalised() {
        let cron = |e: &str| ConnectionSchedule {
            schedule_type: ScheduleType::Cron,
            cron_expression: Some(e.into()),
        };
        assert_eq!(
            check_schedule(&cron("0 0 2 * * ? UTC"))
                .unwrap()
                .cron_expression
                .as_deref(),
            Some("0 0 2 * * ?")
        );
        assert!(check_schedule(&cron("0 * * * * ?")).is_err());
        let missing = ConnectionSchedule {
            schedule_type: ScheduleType::Cron,
            cron_expression: None,
        };
        assert_eq!(
            check_schedule(&missing).unwrap_err().0.message(),
            "Missing cron expression in the schedule."
        );
    }
}
