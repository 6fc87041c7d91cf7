// Tables of cases are long by nature, and one-line `|t| set(..)` closures read better without
// braces.
#![allow(clippy::too_many_lines, clippy::semicolon_if_nothing_returned)]

use super::*;
use crate::plan::Template;
use serde_json::{Value, json};
use std::collections::BTreeSet;

const SOURCE_ID: &str = "5e0a1c8e-0000-4000-8000-0000000000e1";
const DESTINATION_ID: &str = "de571000-0000-4000-8000-000000000001";

/// A template shaped like the sandbox's default seed template (`shop-template → Warehouse`: its
/// schedule, prefix and three streams, as `GET /connections/{id}` returns them), but not that
/// template: the ids, the workspace, a tag and some catalog fields are this fixture's own. The
/// real seed is built on in `tests/it/copy_rules.rs`, against the sandbox.
fn template_json() -> Value {
    json!({
        "connectionId": "c0000000-0000-4000-8000-000000000001",
        "name": "shop-template → Warehouse",
        "sourceId": "5e0a1c8e-0000-4000-8000-000000000001",
        "destinationId": DESTINATION_ID,
        "workspaceId": "a0000000-0000-4000-8000-000000000001",
        "status": "active",
        "schedule": {"scheduleType": "cron", "cronExpression": "0 0 2 * * ? UTC"},
        "nonBreakingSchemaUpdatesBehavior": "propagate_columns",
        "namespaceDefinition": "destination",
        "prefix": "shop_template_",
        "configurations": {"streams": [
            {"name": "orders", "namespace": "public", "syncMode": "incremental_deduped_history",
             "cursorField": ["updated_at"], "primaryKey": [["id"]], "selectedFields": [],
             "mappers": []},
            {"name": "customers", "namespace": "public", "syncMode": "full_refresh_overwrite",
             "cursorField": [], "primaryKey": [["id"]],
             "selectedFields": [{"fieldPath": ["id"]}, {"fieldPath": ["name"]},
                                {"fieldPath": ["email"]}],
             "mappers": []},
            {"name": "products", "namespace": "public", "syncMode": "incremental_append",
             "cursorField": ["updated_at"], "primaryKey": [], "selectedFields": [],
             "mappers": []}
        ]},
        "createdAt": 1_717_000_000,
        "tags": [{"tagId": "7a900000-0000-4000-8000-000000000001",
                  "workspaceId": "a0000000-0000-4000-8000-000000000001",
                  "name": "tenant", "color": "#1f77b4"}],
        "statusReason": "created for the tests"
    })
}

const ALL_BUT_OVERWRITE_DEDUPED: [&str; 8] = [
    "full_refresh_overwrite",
    "full_refresh_append",
    "full_refresh_update",
    "full_refresh_soft_delete",
    "incremental_append",
    "incremental_deduped_history",
    "incremental_update",
    "incremental_soft_delete",
];

/// `GET /streams?sourceId=…&destinationId=…` for a catalog like the seed's `shop` one, with fields
/// of its own (`amount`, a nested `address.city`, `title`).
fn catalog_json() -> Value {
    json!([
        {"streamName": "orders", "streamnamespace": "public",
         "syncModes": ALL_BUT_OVERWRITE_DEDUPED, "defaultCursorField": [],
         "sourceDefinedCursorField": false, "sourceDefinedPrimaryKey": [],
         "propertyFields": [["id"], ["customer_id"], ["amount"], ["status"], ["updated_at"]]},
        {"streamName": "customers", "streamnamespace": "public",
         "syncModes": ALL_BUT_OVERWRITE_DEDUPED, "defaultCursorField": [],
         "sourceDefinedCursorField": false, "sourceDefinedPrimaryKey": [["id"]],
         "propertyFields": [["id"], ["name"], ["email"], ["address"], ["address", "city"],
                            ["updated_at"]]},
        {"streamName": "products", "streamnamespace": "public",
         "syncModes": ALL_BUT_OVERWRITE_DEDUPED, "defaultCursorField": ["updated_at"],
         "sourceDefinedCursorField": true, "sourceDefinedPrimaryKey": [],
         "propertyFields": [["id"], ["title"], ["price"], ["updated_at"]]}
    ])
}

fn names() -> Names<'static> {
    Names {
        source_name: "shop-eu",
        source_id: SOURCE_ID.parse().unwrap(),
        source_type: "postgres",
        destination_name: "Warehouse",
        destination_id: DESTINATION_ID.parse().unwrap(),
        template_name: "shop-template → Warehouse",
    }
}

fn text(s: &str) -> Template {
    Template::parse(s).unwrap()
}

/// What the plan hands over when it sets only a name and a per-source prefix.
fn plan_overrides() -> Overrides {
    Overrides {
        name: Some(text("shop-eu copy")),
        prefix: Some(text("shop_eu_")),
        ..Overrides::default()
    }
}

fn set(value: &mut Value, pointer: &str, new: Value) {
    *value
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer} in fixture")) = new;
}

fn remove(value: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    match value.pointer_mut(parent).unwrap() {
        Value::Object(map) => {
            map.remove(key).unwrap();
        }
        Value::Array(items) => {
            items.remove(key.parse().unwrap());
        }
        _ => panic!("{parent} is not a container"),
    }
}

/// A variation on the base fixture: what changes in the template, the catalog and the overrides.
struct Case {
    label: &'static str,
    template: fn(&mut Value),
    catalog: fn(&mut Value),
    overrides: fn(&mut Overrides),
    missing: MissingStreamsPolicy,
}

const BASE: Case = Case {
    label: "base",
    template: |_| {},
    catalog: |_| {},
    overrides: |_| {},
    missing: MissingStreamsPolicy::Fail,
};

fn blueprint(mutate: fn(&mut Value)) -> Result<Blueprint, Vec<String>> {
    let mut template = template_json();
    mutate(&mut template);
    Blueprint::new(&serde_json::from_value(template).unwrap())
}

fn build(case: &Case) -> Result<CopyPlan, Vec<String>> {
    let blueprint = blueprint(case.template)
        .unwrap_or_else(|e| panic!("{}: template refused: {e:#?}", case.label));
    let mut catalog = catalog_json();
    (case.catalog)(&mut catalog);
    let catalog: Vec<StreamProperties> = serde_json::from_value(catalog).unwrap();
    let mut overrides = plan_overrides();
    (case.overrides)(&mut overrides);
    build_copy(&blueprint, &names(), &overrides, &catalog, case.missing)
}

fn body_json(plan: &CopyPlan) -> Value {
    serde_json::to_value(&plan.body).unwrap()
}

#[test]
fn the_base_template_builds_the_expected_body() {
    let plan = build(&BASE).unwrap();
    assert_eq!(plan.warnings, Vec::<String>::new());
    insta::assert_snapshot!(serde_json::to_string_pretty(&plan.body).unwrap());
}

#[test]
fn the_body_carries_only_whitelisted_keys() {
    let case = Case {
        template: |t| {
            set(t, "/namespaceDefinition", json!("custom_format"));
            t["namespaceFormat"] = json!("${SOURCE_NAMESPACE}");
            set(
                t,
                "/schedule",
                json!({"scheduleType": "basic", "basicTiming": "Every 24 HOURS"}),
            );
        },
        overrides: |o| {
            o.schedule = Some(ConnectionSchedule {
                schedule_type: ScheduleType::Manual,
                cron_expression: None,
            });
        },
        ..BASE
    };
    let body = body_json(&build(&case).unwrap());
    let keys: BTreeSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let allowed = BTreeSet::from([
        "name",
        "sourceId",
        "destinationId",
        "configurations",
        "schedule",
        "namespaceDefinition",
        "namespaceFormat",
        "prefix",
        "nonBreakingSchemaUpdatesBehavior",
        "status",
        "tags",
    ]);
    assert_eq!(keys, allowed);
    assert_eq!(body["schedule"], json!({"scheduleType": "manual"}));
    let text = body.to_string();
    for forbidden in [
        "connectionId",
        "createdAt",
        "basicTiming",
        "statusReason",
        "dataResidency",
    ] {
        assert!(!text.contains(forbidden), "{forbidden} leaked into {text}");
    }
}

/// A change to the template, and one fragment per error `Blueprint::new` must return.
type TemplateCase = (&'static str, fn(&mut Value), &'static [&'static str]);

#[test]
fn template_problems_no_plan_key_can_fix() {
    let cases: [TemplateCase; 7] = [
        (
            "deleted",
            |t| set(t, "/status", json!("deprecated")),
            &[
                "the template connection \"shop-template → Warehouse\" (c0000000-0000-4000-8000-000000000001) is deleted (status deprecated)",
            ],
        ),
        (
            "masked AES key",
            |t| {
                set(
                    t,
                    "/configurations/streams/1/mappers",
                    json!([
                        {"id": "3a000000-0000-4000-8000-000000000001", "type": "hashing",
                         "mapperConfiguration": {"targetField": "name", "method": "SHA-256", "fieldNameSuffix": "_h"}},
                        {"id": "3a000000-0000-4000-8000-000000000002", "type": "encryption",
                         "mapperConfiguration": {"algorithm": "AES", "key": "**********", "mode": "CBC",
                                                 "padding": "PKCS5Padding", "targetField": "email", "fieldNameSuffix": "_enc"}}
                    ]),
                )
            },
            &[
                "the template \"shop-template → Warehouse\" has mapper 2 (encryption) on stream \"customers\" (namespace \"public\") whose secret \"key\" Airbyte returns masked",
            ],
        ),
        (
            "masked secret nested in a mapper",
            |t| {
                set(
                    t,
                    "/configurations/streams/0/mappers",
                    json!([
                        {"type": "row-filtering", "mapperConfiguration": {"conditions": {"type": "NOT", "conditions": [
                            {"type": "EQUAL", "fieldName": "status", "comparisonValue": "**********"}]}}}
                    ]),
                )
            },
            &["secret \"conditions.conditions[0].comparisonValue\""],
        ),
        (
            "duplicate stream",
            |t| {
                let orders = t["configurations"]["streams"][0].clone();
                t["configurations"]["streams"]
                    .as_array_mut()
                    .unwrap()
                    .push(orders);
            },
            &["lists stream \"orders\" (namespace \"public\") twice"],
        ),
        (
            "no streams",
            |t| set(t, "/configurations/streams", json!([])),
            &["has no streams, and a create without streams would sync every stream"],
        ),
        (
            "nested selected field",
            |t| {
                set(
                    t,
                    "/configurations/streams/1/selectedFields",
                    json!([{"fieldPath": ["id"]}, {"fieldPath": ["address", "city"]}]),
                )
            },
            &["selects a nested field on stream \"customers\""],
        ),
        (
            "deleted and a duplicate selected field, both reported",
            |t| {
                set(t, "/status", json!("deprecated"));
                set(
                    t,
                    "/configurations/streams/1/selectedFields",
                    json!([{"fieldPath": ["id"]}, {"fieldPath": ["name"]}, {"fieldPath": ["id"]}]),
                );
            },
            &[
                "is deleted",
                "selects \"id\" more than once on stream \"customers\"",
            ],
        ),
    ];
    for (label, mutate, expected) in cases {
        let errors = blueprint(mutate).map(|_| ()).unwrap_err();
        assert_eq!(errors.len(), expected.len(), "{label}: {errors:#?}");
        for (error, want) in errors.iter().zip(expected) {
            assert!(error.contains(want), "{label}: {error:?} lacks {want:?}");
            assert!(
                error.contains("shop-template → Warehouse"),
                "{label}: {error:?} names no template"
            );
        }
    }
}

#[test]
fn problems_a_target_reports_before_anything_is_written() {
    let cases: Vec<(Case, &[&str])> = vec![
        (
            Case {
                label: "basic schedule, no plan schedule",
                template: |t| {
                    set(
                        t,
                        "/schedule",
                        json!({"scheduleType": "basic", "basicTiming": "Every 6 HOURS"}),
                    )
                },
                ..BASE
            },
            &[
                "runs on a basic schedule (\"Every 6 HOURS\"), which Airbyte's API cannot create; set `defaults.schedule` in the plan, e.g. { scheduleType: cron, cronExpression: \"0 0 */6 * * ?\" }",
            ],
        ),
        (
            Case {
                label: "cron in another time zone",
                template: |t| {
                    set(
                        t,
                        "/schedule/cronExpression",
                        json!("0 0 2 * * ? Europe/Paris"),
                    )
                },
                ..BASE
            },
            &[
                "runs on cron \"0 0 2 * * ? Europe/Paris\" in time zone \"Europe/Paris\", but Airbyte's API only creates UTC schedules; set `schedule` in the plan",
            ],
        ),
        (
            Case {
                label: "cron a create would refuse",
                template: |t| set(t, "/schedule/cronExpression", json!("0 */5 * * * ? UTC")),
                ..BASE
            },
            &[
                "runs on cron \"0 */5 * * * ? UTC\", which a create would refuse (The cron expression 0 */5 * * * ? is not valid: cron executions must be more than 1 hour apart, so seconds and minutes must be single numbers); set `schedule` in the plan",
            ],
        ),
        (
            Case {
                label: "locked, no plan status",
                template: |t| set(t, "/status", json!("locked")),
                ..BASE
            },
            &[
                "is locked (Airbyte disabled it, e.g. for billing), and a copy must not start locked; set `status` in the plan",
            ],
        ),
        (
            Case {
                label: "missing stream, fail",
                catalog: |c| remove(c, "/2"),
                ..BASE
            },
            &[
                "stream \"products\" does not exist in source \"shop-eu\" (set missing_streams: skip to leave it out)",
            ],
        ),
        (
            Case {
                label: "missing stream with a near name",
                catalog: |c| set(c, "/2/streamName", json!("product")),
                ..BASE
            },
            &[
                "stream \"products\" does not exist in source \"shop-eu\", did you mean \"product\"? (set missing_streams: skip",
            ],
        ),
        (
            Case {
                label: "every stream skipped",
                catalog: |c| *c = json!([{"streamName": "deals", "streamnamespace": "public"}]),
                missing: MissingStreamsPolicy::Skip,
                ..BASE
            },
            &[
                "none of the template's streams exist in source \"shop-eu\", and a create without streams would sync every stream",
            ],
        ),
        (
            Case {
                label: "name shared across namespaces, none the template's",
                catalog: |c| {
                    set(c, "/0/streamnamespace", json!("archive"));
                    let mut other = c[0].clone();
                    other["streamnamespace"] = json!("sales");
                    c.as_array_mut().unwrap().push(other);
                },
                ..BASE
            },
            &[
                "stream \"orders\" in namespace \"public\" does not exist in source \"shop-eu\" (it has \"orders\" in namespace \"archive\", \"sales\") (set missing_streams: skip",
            ],
        ),
        (
            Case {
                label: "same name and namespace twice in the catalog",
                catalog: |c| {
                    let orders = c[0].clone();
                    c.as_array_mut().unwrap().push(orders);
                },
                ..BASE
            },
            &["source \"shop-eu\" has several streams named \"orders\" in namespace \"public\""],
        ),
        (
            Case {
                label: "two template streams, one catalog stream",
                template: |t| {
                    let mut orders = t["configurations"]["streams"][0].clone();
                    orders["namespace"] = json!("archive");
                    t["configurations"]["streams"]
                        .as_array_mut()
                        .unwrap()
                        .push(orders);
                },
                ..BASE
            },
            &[
                "the template's stream \"orders\" (namespace \"public\") and stream \"orders\" (namespace \"archive\") both match stream \"orders\" of source \"shop-eu\"",
            ],
        ),
        (
            Case {
                label: "unsupported sync mode",
                catalog: |c| {
                    set(
                        c,
                        "/0/syncModes",
                        json!([
                            "full_refresh_overwrite",
                            "full_refresh_append",
                            "incremental_append"
                        ]),
                    )
                },
                ..BASE
            },
            &[
                "stream \"orders\" cannot use sync mode incremental_deduped_history with source \"shop-eu\" and this destination (they support full_refresh_overwrite, full_refresh_append, incremental_append)",
            ],
        ),
        (
            Case {
                label: "unknown cursor",
                catalog: |c| {
                    set(
                        c,
                        "/0/propertyFields",
                        json!([["id"], ["amount"], ["modified"]]),
                    )
                },
                ..BASE
            },
            &[
                "stream \"orders\" has no field \"updated_at\" in source \"shop-eu\" to use as its cursor",
            ],
        ),
        (
            Case {
                label: "unknown primary key",
                catalog: |c| {
                    set(
                        c,
                        "/0/propertyFields",
                        json!([["order_id"], ["updated_at"]]),
                    )
                },
                ..BASE
            },
            &["stream \"orders\" has no field \"id\" in source \"shop-eu\" for its primary key"],
        ),
        (
            Case {
                label: "unknown selected fields",
                catalog: |c| set(c, "/1/propertyFields", json!([["id"], ["full_name"]])),
                ..BASE
            },
            &[
                "stream \"customers\" selects fields \"name\", \"email\" that source \"shop-eu\" does not have",
            ],
        ),
        (
            Case {
                label: "dedup without a primary key",
                template: |t| set(t, "/configurations/streams/0/primaryKey", json!([])),
                ..BASE
            },
            &[
                "stream \"orders\" needs a primary key for incremental_deduped_history, but the template sets none and source \"shop-eu\" defines none",
            ],
        ),
        (
            Case {
                label: "update without a primary key",
                template: |t| {
                    set(
                        t,
                        "/configurations/streams/0/syncMode",
                        json!("full_refresh_update"),
                    );
                    remove(t, "/configurations/streams/0/primaryKey");
                },
                ..BASE
            },
            &["stream \"orders\" needs a primary key for full_refresh_update"],
        ),
        (
            Case {
                label: "incremental without a cursor",
                template: |t| set(t, "/configurations/streams/0/cursorField", json!([])),
                ..BASE
            },
            &[
                "stream \"orders\" needs a cursor for incremental_deduped_history, but the template sets none and source \"shop-eu\" has no default cursor",
            ],
        ),
        (
            Case {
                label: "selected fields without the primary key",
                template: |t| {
                    set(
                        t,
                        "/configurations/streams/0/selectedFields",
                        json!([{"fieldPath": ["amount"]}, {"fieldPath": ["updated_at"]}]),
                    )
                },
                ..BASE
            },
            &[
                "stream \"orders\" leaves its primary key field \"id\" out of its selected fields, which incremental_deduped_history needs",
            ],
        ),
        (
            Case {
                label: "selected fields without the cursor",
                template: |t| {
                    set(
                        t,
                        "/configurations/streams/0/selectedFields",
                        json!([{"fieldPath": ["id"]}, {"fieldPath": ["amount"]}]),
                    )
                },
                ..BASE
            },
            &[
                "stream \"orders\" leaves its cursor field \"updated_at\" out of its selected fields",
            ],
        ),
        (
            Case {
                label: "selected fields without the source-defined cursor",
                template: |t| {
                    set(
                        t,
                        "/configurations/streams/2/selectedFields",
                        json!([{"fieldPath": ["id"]}, {"fieldPath": ["price"]}]),
                    )
                },
                ..BASE
            },
            &["stream \"products\" leaves its cursor field \"updated_at\" out"],
        ),
        (
            Case {
                label: "every problem of the target, in order",
                template: |t| {
                    set(t, "/status", json!("locked"));
                    set(
                        t,
                        "/schedule",
                        json!({"scheduleType": "basic", "basicTiming": "Every 24 HOURS"}),
                    );
                },
                catalog: |c| {
                    remove(c, "/2");
                    set(c, "/0/syncModes", json!(["full_refresh_overwrite"]));
                },
                ..BASE
            },
            &[
                "basic schedule (\"Every 24 HOURS\"), which Airbyte's API cannot create; set `defaults.schedule` in the plan, e.g. { scheduleType: cron, cronExpression: \"0 0 0 * * ?\" }",
                "is locked",
                "cannot use sync mode incremental_deduped_history",
                "stream \"products\" does not exist",
            ],
        ),
    ];
    for (case, expected) in cases {
        let errors = build(&case).map(|_| ()).unwrap_err();
        // One fragment per error, in the order the errors come.
        assert_eq!(errors.len(), expected.len(), "{}: {errors:#?}", case.label);
        for (error, want) in errors.iter().zip(expected) {
            assert!(
                error.contains(want),
                "{}: {error:?} lacks {want:?}",
                case.label
            );
        }
    }
}

/// A JSON pointer into the body and what must be there (`None`: the key is absent).
type Expect = (&'static str, Option<Value>);

#[test]
fn copies_that_build() {
    let cases: Vec<(Case, Vec<Expect>, &[&str])> = vec![
        (
            BASE,
            vec![
                ("/name", Some(json!("shop-eu copy"))),
                ("/sourceId", Some(json!(SOURCE_ID))),
                ("/destinationId", Some(json!(DESTINATION_ID))),
                (
                    "/schedule",
                    Some(json!({"scheduleType": "cron", "cronExpression": "0 0 2 * * ?"})),
                ),
                ("/status", Some(json!("active"))),
                ("/prefix", Some(json!("shop_eu_"))),
                ("/namespaceDefinition", Some(json!("destination"))),
                (
                    "/nonBreakingSchemaUpdatesBehavior",
                    Some(json!("propagate_columns")),
                ),
                // Empty selections are dropped, real ones kept.
                ("/configurations/streams/0/selectedFields", None),
                (
                    "/configurations/streams/1/selectedFields",
                    Some(
                        json!([{"fieldPath": ["id"]}, {"fieldPath": ["name"]}, {"fieldPath": ["email"]}]),
                    ),
                ),
                ("/configurations/streams/2/selectedFields", None),
                // A user-chosen cursor and key stay; source-defined ones go.
                (
                    "/configurations/streams/0/cursorField",
                    Some(json!(["updated_at"])),
                ),
                (
                    "/configurations/streams/0/primaryKey",
                    Some(json!([["id"]])),
                ),
                ("/configurations/streams/1/primaryKey", None),
                ("/configurations/streams/2/cursorField", None),
                (
                    "/tags",
                    Some(json!([{"tagId": "7a900000-0000-4000-8000-000000000001",
                                   "workspaceId": "a0000000-0000-4000-8000-000000000001",
                                   "name": "tenant", "color": "#1f77b4"}])),
                ),
            ],
            &[],
        ),
        (
            Case {
                label: "mapper ids dropped, configuration kept",
                template: |t| {
                    set(
                        t,
                        "/configurations/streams/1/mappers",
                        json!([
                    {"id": "3a000000-0000-4000-8000-000000000001", "type": "hashing",
                     "mapperConfiguration": {"targetField": "email", "method": "SHA-256", "fieldNameSuffix": "_hashed"}}]),
                    )
                },
                ..BASE
            },
            vec![(
                "/configurations/streams/1/mappers",
                Some(json!([{"type": "hashing", "mapperConfiguration":
                   {"targetField": "email", "method": "SHA-256", "fieldNameSuffix": "_hashed"}}])),
            )],
            &[],
        ),
        (
            Case {
                label: "a value of asterisks that is not Airbyte's mask",
                template: |t| {
                    set(
                        t,
                        "/configurations/streams/0/mappers",
                        json!([{"type": "row-filtering", "mapperConfiguration": {"conditions":
                            {"type": "EQUAL", "fieldName": "status", "comparisonValue": "***"}}}]),
                    )
                },
                ..BASE
            },
            vec![(
                "/configurations/streams/0/mappers/0/mapperConfiguration/conditions/comparisonValue",
                Some(json!("***")),
            )],
            &[],
        ),
        (
            Case {
                label: "manual stays manual",
                template: |t| set(t, "/schedule", json!({"scheduleType": "manual"})),
                ..BASE
            },
            vec![("/schedule", Some(json!({"scheduleType": "manual"})))],
            &[],
        ),
        (
            Case {
                label: "basic with a plan schedule",
                template: |t| {
                    set(
                        t,
                        "/schedule",
                        json!({"scheduleType": "basic", "basicTiming": "Every 24 HOURS"}),
                    )
                },
                overrides: |o| {
                    o.schedule = Some(ConnectionSchedule {
                        schedule_type: ScheduleType::Cron,
                        cron_expression: Some("0 0 3 * * ? UTC".into()),
                    })
                },
                ..BASE
            },
            vec![(
                "/schedule",
                Some(json!({"scheduleType": "cron", "cronExpression": "0 0 3 * * ?"})),
            )],
            &[],
        ),
        (
            Case {
                label: "non-UTC template with a plan schedule",
                template: |t| {
                    set(
                        t,
                        "/schedule/cronExpression",
                        json!("0 0 2 * * ? Europe/Paris"),
                    )
                },
                overrides: |o| {
                    o.schedule = Some(ConnectionSchedule {
                        schedule_type: ScheduleType::Manual,
                        cron_expression: None,
                    })
                },
                ..BASE
            },
            vec![("/schedule", Some(json!({"scheduleType": "manual"})))],
            &[],
        ),
        (
            Case {
                label: "inactive copied",
                template: |t| set(t, "/status", json!("inactive")),
                ..BASE
            },
            vec![("/status", Some(json!("inactive")))],
            &[],
        ),
        (
            Case {
                label: "locked with a plan status",
                template: |t| set(t, "/status", json!("locked")),
                overrides: |o| o.status = Some(ConnectionStatus::Active),
                ..BASE
            },
            vec![("/status", Some(json!("active")))],
            &[],
        ),
        (
            Case {
                label: "plan keys win over the template's",
                overrides: |o| {
                    o.status = Some(ConnectionStatus::Inactive);
                    o.schedule = Some(ConnectionSchedule {
                        schedule_type: ScheduleType::Cron,
                        cron_expression: Some("0 0 4 * * ?".into()),
                    });
                    o.namespace_definition = Some(NamespaceDefinition::CustomFormat);
                    o.namespace_format = Some(text("tenant_eu"));
                    o.non_breaking_schema_updates_behavior =
                        Some(NonBreakingSchemaUpdatesBehavior::Ignore);
                },
                ..BASE
            },
            vec![
                ("/status", Some(json!("inactive"))),
                (
                    "/schedule",
                    Some(json!({"scheduleType": "cron", "cronExpression": "0 0 4 * * ?"})),
                ),
                ("/namespaceDefinition", Some(json!("custom_format"))),
                ("/namespaceFormat", Some(json!("tenant_eu"))),
                ("/nonBreakingSchemaUpdatesBehavior", Some(json!("ignore"))),
                ("/prefix", Some(json!("shop_eu_"))),
            ],
            &[],
        ),
        (
            Case {
                label: "template values when the plan sets none",
                template: |t| {
                    set(t, "/namespaceDefinition", json!("custom_format"));
                    t["namespaceFormat"] = json!("${SOURCE_NAMESPACE}");
                },
                overrides: |o| o.prefix = None,
                ..BASE
            },
            vec![
                ("/prefix", Some(json!("shop_template_"))),
                ("/namespaceDefinition", Some(json!("custom_format"))),
                ("/namespaceFormat", Some(json!("${SOURCE_NAMESPACE}"))),
            ],
            &[],
        ),
        (
            Case {
                label: "no plan name falls back to the UI's pattern",
                overrides: |o| o.name = None,
                ..BASE
            },
            vec![("/name", Some(json!("shop-eu → Warehouse")))],
            &[],
        ),
        (
            // Writing the template's own tables is found by the build stage's collision check
            // (`collisions`), which sees every target at once.
            Case {
                label: "the template's own prefix",
                overrides: |o| o.prefix = None,
                ..BASE
            },
            vec![("/prefix", Some(json!("shop_template_")))],
            &[],
        ),
        (
            Case {
                label: "missing stream, skip",
                catalog: |c| remove(c, "/2"),
                missing: MissingStreamsPolicy::Skip,
                ..BASE
            },
            vec![
                ("/configurations/streams/1/name", Some(json!("customers"))),
                ("/configurations/streams/2", None),
            ],
            &[
                "stream \"products\" does not exist in source \"shop-eu\"; the copy leaves it out (missing_streams: skip)",
            ],
        ),
        (
            Case {
                label: "namespace picks between streams sharing a name",
                catalog: |c| {
                    // The other `orders` lacks the cursor: matching it would be an error.
                    let mut archive = c[0].clone();
                    archive["streamnamespace"] = json!("archive");
                    archive["propertyFields"] = json!([["id"]]);
                    c.as_array_mut().unwrap().insert(0, archive);
                },
                ..BASE
            },
            vec![
                ("/configurations/streams/0/namespace", Some(json!("public"))),
                (
                    "/configurations/streams/0/cursorField",
                    Some(json!(["updated_at"])),
                ),
            ],
            &[],
        ),
        (
            Case {
                label: "a lone stream matches by name in another namespace",
                catalog: |c| set(c, "/0/streamnamespace", json!("sales")),
                ..BASE
            },
            vec![("/configurations/streams/0/namespace", Some(json!("sales")))],
            &[
                "stream \"orders\" is in namespace \"sales\" in source \"shop-eu\", not \"public\" as in the template; the copy uses the source's",
            ],
        ),
        (
            Case {
                label: "full_refresh_overwrite_deduped, never listed by /streams",
                template: |t| {
                    set(
                        t,
                        "/configurations/streams/1/syncMode",
                        json!("full_refresh_overwrite_deduped"),
                    )
                },
                ..BASE
            },
            vec![
                (
                    "/configurations/streams/1/syncMode",
                    Some(json!("full_refresh_overwrite_deduped")),
                ),
                ("/configurations/streams/1/primaryKey", None),
            ],
            &[],
        ),
        (
            Case {
                label: "omitted or overwrite modes are never checked",
                template: |t| remove(t, "/configurations/streams/0/syncMode"),
                catalog: |c| {
                    set(c, "/0/syncModes", json!(["incremental_append"]));
                    set(c, "/1/syncModes", json!(["incremental_append"]));
                },
                ..BASE
            },
            vec![
                ("/configurations/streams/0/syncMode", None),
                (
                    "/configurations/streams/1/syncMode",
                    Some(json!("full_refresh_overwrite")),
                ),
            ],
            &[],
        ),
        (
            Case {
                label: "full refresh drops a cursor and key it ignores",
                template: |t| {
                    set(
                        t,
                        "/configurations/streams/0/syncMode",
                        json!("full_refresh_append"),
                    );
                    set(
                        t,
                        "/configurations/streams/0/cursorField",
                        json!(["modified_at"]),
                    );
                    set(
                        t,
                        "/configurations/streams/0/primaryKey",
                        json!([["order_no"]]),
                    );
                },
                ..BASE
            },
            vec![
                ("/configurations/streams/0/cursorField", None),
                ("/configurations/streams/0/primaryKey", None),
            ],
            &[],
        ),
        (
            Case {
                label: "incremental without a cursor takes the source's default",
                template: |t| set(t, "/configurations/streams/0/cursorField", json!([])),
                catalog: |c| set(c, "/0/defaultCursorField", json!(["updated_at"])),
                ..BASE
            },
            vec![("/configurations/streams/0/cursorField", None)],
            &[],
        ),
        (
            Case {
                label: "selected fields holding the key and cursor",
                template: |t| {
                    set(
                        t,
                        "/configurations/streams/0/selectedFields",
                        json!([{"fieldPath": ["id"]}, {"fieldPath": ["updated_at"]}]),
                    )
                },
                ..BASE
            },
            vec![(
                "/configurations/streams/0/selectedFields",
                Some(json!([{"fieldPath": ["id"]}, {"fieldPath": ["updated_at"]}])),
            )],
            &[],
        ),
    ];
    for (case, expects, warnings) in cases {
        let plan = build(&case).unwrap_or_else(|e| panic!("{}: {e:#?}", case.label));
        let body = body_json(&plan);
        for (pointer, want) in expects {
            assert_eq!(
                body.pointer(pointer),
                want.as_ref(),
                "{}: {pointer}",
                case.label
            );
        }
        assert_eq!(plan.warnings, *warnings, "{}", case.label);
    }
}

#[test]
fn blueprint_shows_the_template() {
    let blueprint = blueprint(|_| {}).unwrap();
    assert_eq!(
        serde_json::to_value(blueprint.template()).unwrap(),
        json!({
            "connectionId": "c0000000-0000-4000-8000-000000000001",
            "name": "shop-template → Warehouse",
            "sourceId": "5e0a1c8e-0000-4000-8000-000000000001",
            "destinationId": DESTINATION_ID,
            "workspaceId": "a0000000-0000-4000-8000-000000000001",
        })
    );
}

#[test]
fn every_copy_carries_the_owner_tag_after_the_templates_own() {
    let owner: Tag = serde_json::from_value(json!({
        "tagId": "7a900000-0000-4000-8000-0000000000ff",
        "workspaceId": "a0000000-0000-4000-8000-000000000001",
        "name": "replicate:shops", "color": "4F46E5"
    }))
    .unwrap();
    let tenant: Tag = serde_json::from_value(template_json()["tags"][0].clone()).unwrap();
    let with_owner = blueprint(|_| {}).unwrap().with_owner(owner.clone());
    let plan = build_desired(&with_owner, &names(), &plan_overrides()).unwrap();
    assert_eq!(plan.body.tags, Some(vec![tenant.clone(), owner.clone()]));
    // A template that carries the owner tag itself: the copy carries it once.
    let again = with_owner.with_owner(owner.clone());
    let plan = build_desired(&again, &names(), &plan_overrides()).unwrap();
    assert_eq!(plan.body.tags, Some(vec![tenant, owner]));
}
