// Tables of cases are long by nature.
#![allow(clippy::too_many_lines)]

use super::*;
use serde_json::json;

/// A copy of the default seed's template onto `shop-eu`, as `GET /connections` returns it.
fn actual_json() -> Value {
    json!({
        "connectionId": "c0000000-0000-4000-8000-0000000000e1",
        "name": "shop-eu → Warehouse",
        "sourceId": "5e0a1c8e-0000-4000-8000-0000000000e1",
        "destinationId": "de571000-0000-4000-8000-000000000001",
        "workspaceId": "a0000000-0000-4000-8000-000000000001",
        "status": "active",
        "schedule": {"scheduleType": "cron", "cronExpression": "0 0 2 * * ? UTC"},
        "nonBreakingSchemaUpdatesBehavior": "propagate_columns",
        "namespaceDefinition": "destination",
        "prefix": "shop_eu_",
        "configurations": {"streams": [
            {"name": "customers", "namespace": "public", "syncMode": "full_refresh_overwrite",
             "cursorField": [], "primaryKey": [["id"]],
             "selectedFields": [{"fieldPath": ["email"]}, {"fieldPath": ["id"]},
                                {"fieldPath": ["name"]}],
             "mappers": []},
            {"name": "orders", "namespace": "public", "syncMode": "incremental_deduped_history",
             "cursorField": ["updated_at"], "primaryKey": [["id"]], "selectedFields": [],
             "mappers": [{"id": "3a000000-0000-4000-8000-000000000009", "type": "hashing",
                          "mapperConfiguration": {"targetField": "email", "method": "SHA-256",
                                                  "fieldNameSuffix": "_h"}}]},
            {"name": "products", "namespace": "public", "syncMode": "incremental_append",
             "cursorField": ["updated_at"], "primaryKey": [], "selectedFields": [],
             "mappers": []}
        ]},
        "createdAt": 1_717_000_000,
        "tags": [{"tagId": "7a900000-0000-4000-8000-000000000001",
                  "workspaceId": "a0000000-0000-4000-8000-000000000001",
                  "name": "tenant", "color": "1f77b4"},
                 {"tagId": "7a900000-0000-4000-8000-000000000077",
                  "workspaceId": "a0000000-0000-4000-8000-000000000001",
                  "name": "hand-made", "color": "aaaaaa"}]
    })
}

/// What the plan wants for the same copy: the create body `copy` builds with the catalog
/// (`customers`' key and `products`' cursor are the source's, so they are left out).
fn desired_json() -> Value {
    json!({
        "name": "shop-eu → Warehouse",
        "sourceId": "5e0a1c8e-0000-4000-8000-0000000000e1",
        "destinationId": "de571000-0000-4000-8000-000000000001",
        "configurations": {"streams": [
            {"name": "orders", "namespace": "public", "syncMode": "incremental_deduped_history",
             "cursorField": ["updated_at"], "primaryKey": [["id"]],
             "mappers": [{"type": "hashing",
                          "mapperConfiguration": {"targetField": "email", "method": "SHA-256",
                                                  "fieldNameSuffix": "_h"}}]},
            {"name": "customers", "namespace": "public", "syncMode": "full_refresh_overwrite",
             "selectedFields": [{"fieldPath": ["id"]}, {"fieldPath": ["name"]},
                                {"fieldPath": ["email"]}]},
            {"name": "products", "namespace": "public", "syncMode": "incremental_append"}
        ]},
        "schedule": {"scheduleType": "cron", "cronExpression": "0 0 2 * * ?"},
        "namespaceDefinition": "destination",
        "prefix": "shop_eu_",
        "nonBreakingSchemaUpdatesBehavior": "propagate_columns",
        "status": "active",
        "tags": [{"tagId": "7a900000-0000-4000-8000-000000000001",
                  "workspaceId": "a0000000-0000-4000-8000-000000000001",
                  "name": "tenant", "color": "1f77b4"}]
    })
}

fn parse<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap_or_else(|e| panic!("fixture does not parse: {e}"))
}

/// Sets `value` at a JSON pointer, creating nothing: the fixture must have the parent.
fn set(value: &mut Value, pointer: &str, new: Value) {
    *value
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer} in the fixture")) = new;
}

/// Removes the member at a JSON pointer.
fn remove(value: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    let parent = value
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no {parent} in the fixture"));
    match parent {
        Value::Object(map) => {
            map.remove(key);
        }
        Value::Array(items) => {
            items.remove(
                key.parse::<usize>()
                    .unwrap_or_else(|e| panic!("{key}: {e}")),
            );
        }
        _ => panic!("{pointer}: parent is neither object nor array"),
    }
}

struct Case {
    what: &'static str,
    desired: fn(&mut Value),
    actual: fn(&mut Value),
    /// `(field, from, to, resetsState)` of every change, in order.
    changes: Vec<(&'static str, Value, Value, bool)>,
    warnings: usize,
}

fn same(_: &mut Value) {}

#[test]
fn each_difference_is_one_change_and_what_is_not_drift_is_none() {
    let cases = vec![
        Case {
            what: "in line: ` UTC`, stream order, `selectedFields: []`, selection order, mapper \
                   ids, source-filled cursor and key, extra tags on the copy",
            desired: same,
            actual: same,
            changes: vec![],
            warnings: 0,
        },
        Case {
            what: "renamed in the plan",
            desired: |d| set(d, "/name", json!("EU shop")),
            actual: same,
            changes: vec![(
                "name",
                json!("shop-eu → Warehouse"),
                json!("EU shop"),
                false,
            )],
            warnings: 0,
        },
        Case {
            what: "cron changed",
            desired: |d| set(d, "/schedule/cronExpression", json!("0 0 6 * * ?")),
            actual: same,
            changes: vec![(
                "schedule.cronExpression",
                json!("0 0 2 * * ?"),
                json!("0 0 6 * * ?"),
                false,
            )],
            warnings: 0,
        },
        Case {
            what: "made manual by hand",
            desired: same,
            actual: |a| set(a, "/schedule", json!({"scheduleType": "manual"})),
            changes: vec![(
                "schedule",
                json!({"scheduleType": "manual"}),
                json!({"scheduleType": "cron", "cronExpression": "0 0 2 * * ?"}),
                false,
            )],
            warnings: 0,
        },
        Case {
            what: "manual on both sides",
            desired: |d| set(d, "/schedule", json!({"scheduleType": "manual"})),
            actual: |a| set(a, "/schedule", json!({"scheduleType": "manual"})),
            changes: vec![],
            warnings: 0,
        },
        Case {
            what: "status",
            desired: same,
            actual: |a| set(a, "/status", json!("inactive")),
            changes: vec![("status", json!("inactive"), json!("active"), false)],
            warnings: 0,
        },
        Case {
            what: "namespaceFormat outside custom_format is the server's",
            desired: |d| {
                d["namespaceFormat"] = json!("${SOURCE_NAMESPACE}");
            },
            actual: |a| a["namespaceFormat"] = json!("whatever"),
            changes: vec![],
            warnings: 0,
        },
        Case {
            what: "namespaceFormat under custom_format",
            desired: |d| {
                d["namespaceDefinition"] = json!("custom_format");
                d["namespaceFormat"] = json!("shop_eu");
            },
            actual: |a| {
                a["namespaceDefinition"] = json!("custom_format");
                a["namespaceFormat"] = json!("shop_us");
            },
            changes: vec![("namespaceFormat", json!("shop_us"), json!("shop_eu"), false)],
            warnings: 0,
        },
        Case {
            what: "namespaceDefinition",
            desired: |d| d["namespaceDefinition"] = json!("source"),
            actual: same,
            changes: vec![(
                "namespaceDefinition",
                json!("destination"),
                json!("source"),
                false,
            )],
            warnings: 0,
        },
        Case {
            what: "prefix, with an absent prefix read as empty",
            desired: same,
            actual: |a| remove(a, "/prefix"),
            changes: vec![("prefix", json!(""), json!("shop_eu_"), false)],
            warnings: 0,
        },
        Case {
            what: "nonBreakingSchemaUpdatesBehavior",
            desired: |d| d["nonBreakingSchemaUpdatesBehavior"] = json!("ignore"),
            actual: same,
            changes: vec![(
                "nonBreakingSchemaUpdatesBehavior",
                json!("propagate_columns"),
                json!("ignore"),
                false,
            )],
            warnings: 0,
        },
        Case {
            what: "a stream added to the template",
            desired: same,
            actual: |a| remove(a, "/configurations/streams/2"),
            changes: vec![(
                "streams.products",
                Value::Null,
                json!({"name": "products", "namespace": "public",
                       "syncMode": "incremental_append"}),
                false,
            )],
            warnings: 0,
        },
        Case {
            what: "a stream removed from the template",
            desired: |d| remove(d, "/configurations/streams/2"),
            actual: same,
            changes: vec![(
                "streams.products",
                json!({"name": "products", "namespace": "public",
                       "syncMode": "incremental_append"}),
                Value::Null,
                false,
            )],
            warnings: 0,
        },
        Case {
            what: "sync mode: resets the stream's state",
            desired: |d| {
                set(
                    d,
                    "/configurations/streams/0/syncMode",
                    json!("incremental_append"),
                );
            },
            actual: same,
            changes: vec![(
                "streams.orders.syncMode",
                json!("incremental_deduped_history"),
                json!("incremental_append"),
                true,
            )],
            warnings: 0,
        },
        Case {
            what: "cursor and key chosen by the user",
            desired: |d| {
                set(d, "/configurations/streams/0/cursorField", json!(["id"]));
                set(
                    d,
                    "/configurations/streams/0/primaryKey",
                    json!([["id"], ["email"]]),
                );
            },
            actual: same,
            changes: vec![
                (
                    "streams.orders.cursorField",
                    json!(["updated_at"]),
                    json!(["id"]),
                    true,
                ),
                (
                    "streams.orders.primaryKey",
                    json!([["id"]]),
                    json!([["id"], ["email"]]),
                    true,
                ),
            ],
            warnings: 0,
        },
        Case {
            what: "selected fields: a set, empty = absent = all",
            desired: |d| {
                set(
                    d,
                    "/configurations/streams/1/selectedFields",
                    json!([{"fieldPath": ["id"]}]),
                );
            },
            actual: same,
            changes: vec![(
                "streams.customers.selectedFields",
                json!(["email", "id", "name"]),
                json!(["id"]),
                false,
            )],
            warnings: 0,
        },
        Case {
            what: "selected fields dropped in the template: all fields",
            desired: |d| remove(d, "/configurations/streams/1/selectedFields"),
            actual: same,
            changes: vec![(
                "streams.customers.selectedFields",
                json!(["email", "id", "name"]),
                json!([]),
                false,
            )],
            warnings: 0,
        },
        Case {
            what: "a mapper's configuration",
            desired: |d| {
                set(
                    d,
                    "/configurations/streams/0/mappers/0/mapperConfiguration/method",
                    json!("MD5"),
                );
            },
            actual: same,
            changes: vec![(
                "streams.orders.mappers",
                json!([{"type": "hashing", "mapperConfiguration":
                        {"targetField": "email", "method": "SHA-256", "fieldNameSuffix": "_h"}}]),
                json!([{"type": "hashing", "mapperConfiguration":
                        {"targetField": "email", "method": "MD5", "fieldNameSuffix": "_h"}}]),
                false,
            )],
            warnings: 0,
        },
        Case {
            what: "a masked mapper secret cannot be compared: a warning, not drift",
            desired: |d| {
                set(
                    d,
                    "/configurations/streams/0/mappers/0/mapperConfiguration/fieldNameSuffix",
                    json!("real-secret"),
                );
            },
            actual: |a| {
                set(
                    a,
                    "/configurations/streams/1/mappers/0/mapperConfiguration/fieldNameSuffix",
                    json!("**********"),
                );
            },
            changes: vec![],
            warnings: 1,
        },
        Case {
            what: "a desired tag the copy lacks",
            desired: |d| {
                d["tags"]
                    .as_array_mut()
                    .unwrap_or_else(|| panic!("tags"))
                    .push(json!({"tagId": "7a900000-0000-4000-8000-0000000000aa",
                                 "workspaceId": "a0000000-0000-4000-8000-000000000001",
                                 "name": "replicate:shops", "color": "00aa00"}));
            },
            actual: same,
            changes: vec![(
                "tags",
                json!(["tenant", "hand-made"]),
                json!(["tenant", "hand-made", "replicate:shops"]),
                false,
            )],
            warnings: 0,
        },
    ];

    let mut failures = Vec::new();
    for case in cases {
        let mut desired = desired_json();
        let mut actual = actual_json();
        (case.desired)(&mut desired);
        (case.actual)(&mut actual);
        let drift = diff(&parse(desired), &parse(actual));
        let got: Vec<(String, Value, Value, bool)> = drift
            .changes
            .iter()
            .map(|c| {
                (
                    c.field.clone(),
                    c.from.clone(),
                    c.to.clone(),
                    c.resets_state,
                )
            })
            .collect();
        let want: Vec<(String, Value, Value, bool)> = case
            .changes
            .into_iter()
            .map(|(f, from, to, r)| (f.to_string(), from, to, r))
            .collect();
        if got != want || drift.warnings.len() != case.warnings {
            failures.push(format!(
                "{}:\n  changes {got:?}\n  wanted  {want:?}\n  warnings {:?} (wanted {})",
                case.what, drift.warnings, case.warnings
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn streams_sharing_a_name_are_told_apart_by_namespace() {
    let mut desired = desired_json();
    let mut actual = actual_json();
    let mut other = desired["configurations"]["streams"][2].clone();
    other["namespace"] = json!("archive");
    desired["configurations"]["streams"]
        .as_array_mut()
        .unwrap_or_else(|| panic!("streams"))
        .push(other);
    let mut other = actual["configurations"]["streams"][2].clone();
    other["namespace"] = json!("archive");
    other["syncMode"] = json!("full_refresh_append");
    actual["configurations"]["streams"]
        .as_array_mut()
        .unwrap_or_else(|| panic!("streams"))
        .push(other);
    let drift = diff(&parse(desired), &parse(actual));
    let fields: Vec<&str> = drift.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["streams.archive.products.syncMode"]);
}

#[test]
fn the_patch_carries_only_what_differs_with_streams_whole_and_tags_merged() {
    let mut desired = desired_json();
    desired["prefix"] = json!("eu_");
    set(
        &mut desired,
        "/configurations/streams/2/syncMode",
        json!("full_refresh_append"),
    );
    desired["tags"]
        .as_array_mut()
        .unwrap_or_else(|| panic!("tags"))
        .push(json!({"tagId": "7a900000-0000-4000-8000-0000000000aa",
                     "workspaceId": "a0000000-0000-4000-8000-000000000001",
                     "name": "replicate:shops", "color": "00aa00"}));
    let desired: ConnectionCreateRequest = parse(desired);
    let actual: ConnectionResponse = parse(actual_json());
    let drift = diff(&desired, &actual);
    assert!(drift.streams_differ());
    assert!(drift.resets_state());
    assert_eq!(drift.fields(), ["prefix", "configurations", "tags"]);

    let patch = serde_json::to_value(drift.patch(&desired, &actual)).unwrap_or_default();
    let keys: BTreeSet<&str> = patch
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        keys,
        BTreeSet::from(["prefix", "configurations", "tags"]),
        "{patch}"
    );
    assert_eq!(patch["prefix"], json!("eu_"));
    assert_eq!(
        patch["configurations"]["streams"].as_array().map(Vec::len),
        Some(3),
        "streams go whole"
    );
    let tags: Vec<&str> = patch["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(tags, ["tenant", "hand-made", "replicate:shops"]);
}

#[test]
fn a_copy_in_line_needs_no_patch_and_no_catalog() {
    let drift = diff(&parse(desired_json()), &parse(actual_json()));
    assert!(drift.is_empty());
    assert!(!drift.streams_differ());
    assert_eq!(
        drift.patch(&parse(desired_json()), &parse(actual_json())),
        ConnectionPatchRequest::default()
    );
}

#[test]
fn a_switch_to_custom_format_sends_its_format_along() {
    let mut desired = desired_json();
    desired["namespaceDefinition"] = json!("custom_format");
    desired["namespaceFormat"] = json!("shop_eu");
    let mut actual = actual_json();
    actual["namespaceFormat"] = json!("shop_eu");
    let desired: ConnectionCreateRequest = parse(desired);
    let actual: ConnectionResponse = parse(actual);
    let drift = diff(&desired, &actual);
    assert_eq!(drift.fields(), ["namespaceDefinition"]);
    let patch = drift.patch(&desired, &actual);
    assert_eq!(patch.namespace_format.as_deref(), Some("shop_eu"));
}
