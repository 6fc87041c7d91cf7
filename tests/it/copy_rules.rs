//! The client's copy rules (`src/copy/streams.rs`) and the sandbox's create rules
//! (`src/sandbox/validate.rs`) are two implementations of Airbyte's checks (DIGEST §7): this
//! table holds them together. Each case puts a set of streams in the default seed's template,
//! read from the sandbox, and builds shop-eu's copy with `copy::build_copy` against shop-eu's
//! catalog, also read from the sandbox. The client must refuse exactly when the sandbox refuses
//! what the client would send: its body when it builds one, else the streams as they stand.

use crate::support::Api;
use crate::support::seed::{self, SHOP_EU, TEMPLATE, WAREHOUSE};
use replicate::copy::{Blueprint, build_copy};
use replicate::plan::{MissingStreamsPolicy, Names, Overrides};
use replicate::wire::{ConnectionResponse, StreamProperties};
use serde_json::{Value, json};

/// What a case must come to.
#[derive(Debug)]
enum Expect {
    /// The client builds a body, and the sandbox creates it.
    Accepted,
    /// The client builds a body the sandbox creates, though the streams as the template has them
    /// would be refused, for this reason: the client fits them to the target's catalog.
    Fitted(&'static str),
    /// The client refuses, saying `client`; the sandbox refuses the streams, saying `sandbox`.
    Refused {
        client: &'static str,
        sandbox: &'static str,
    },
}

/// The cases: a name, the template's streams (`None`: the seed's own), the outcome.
#[allow(clippy::too_many_lines)] // a table
fn cases() -> Vec<(&'static str, Option<Value>, Expect)> {
    let field = |name: &str| json!({"fieldPath": [name]});
    vec![
        (
            "the seed template as it is",
            None,
            Expect::Fitted("No fields selected for stream orders."),
        ),
        (
            "streams that need no fitting",
            Some(json!([
                {"name": "orders", "syncMode": "incremental_deduped_history",
                 "cursorField": ["updated_at"], "primaryKey": [["id"]]},
                {"name": "customers", "syncMode": "full_refresh_overwrite",
                 "selectedFields": [field("id"), field("name")]},
            ])),
            Expect::Accepted,
        ),
        (
            "a stream the source lacks",
            Some(json!([{"name": "orders"}, {"name": "refunds"}])),
            Expect::Refused {
                client: "stream \"refunds\" does not exist in source \"shop-eu\"",
                sandbox: "No streams found with name [refunds] and namespace [null].",
            },
        ),
        (
            "a stream named twice",
            Some(json!([{"name": "orders"}, {"name": "customers"}, {"name": "orders"}])),
            Expect::Refused {
                client: "lists stream \"orders\" twice",
                sandbox: "Duplicate stream found in configuration for stream name [orders]",
            },
        ),
        (
            "empty selectedFields",
            Some(json!([{"name": "customers", "selectedFields": []}])),
            Expect::Fitted("No fields selected for stream customers."),
        ),
        (
            "a nested selected field",
            Some(json!([{"name": "orders", "selectedFields": [{"fieldPath": ["id", "x"]}]}])),
            Expect::Refused {
                client: "selects a nested field on stream \"orders\"",
                sandbox: "Nested field selection not supported for stream orders.",
            },
        ),
        (
            "a field selected twice",
            Some(json!([{"name": "orders", "selectedFields": [field("id"), field("id")]}])),
            Expect::Refused {
                client: "selects \"id\" more than once on stream \"orders\"",
                sandbox: "Duplicate fields selected in configuration for stream: orders.",
            },
        ),
        (
            "a selected field the source lacks",
            Some(json!([{"name": "orders", "selectedFields": [field("id"), field("discount")]}])),
            Expect::Refused {
                client: "selects field \"discount\" that source \"shop-eu\" does not have",
                sandbox: "Invalid fields selected for stream orders.",
            },
        ),
        (
            "a cursor other than the source-defined one",
            Some(
                json!([{"name": "products", "syncMode": "incremental_append",
                         "cursorField": ["id"]}]),
            ),
            Expect::Fitted("Cursor Field [id] is already defined by source for stream: products."),
        ),
        (
            "a primary key other than the source-defined one",
            Some(
                json!([{"name": "customers", "syncMode": "incremental_deduped_history",
                         "primaryKey": [["email"]]}]),
            ),
            Expect::Fitted("Primary key for stream: customers is already pre-defined."),
        ),
        (
            "a sync mode the pair does not support",
            Some(json!([{"name": "orders", "syncMode": "full_refresh_update",
                         "primaryKey": [["id"]]}])),
            Expect::Refused {
                client: "cannot use sync mode full_refresh_update with source \"shop-eu\"",
                sandbox: "Cannot set sync mode to full_refresh_update for stream orders.",
            },
        ),
        (
            "incremental without any cursor",
            Some(json!([{"name": "orders", "syncMode": "incremental_append"}])),
            Expect::Refused {
                client: "stream \"orders\" needs a cursor for incremental_append",
                sandbox: "No default cursor field for stream: orders.",
            },
        ),
        (
            "a cursor the source lacks",
            Some(json!([{"name": "orders", "syncMode": "incremental_append",
                         "cursorField": ["modified"]}])),
            Expect::Refused {
                client: "stream \"orders\" has no field \"modified\" in source \"shop-eu\" to use as its cursor",
                sandbox: "Invalid cursor field for stream: orders.",
            },
        ),
        (
            "dedup without any primary key",
            Some(
                json!([{"name": "orders", "syncMode": "incremental_deduped_history",
                         "cursorField": ["updated_at"]}]),
            ),
            Expect::Refused {
                client: "stream \"orders\" needs a primary key for incremental_deduped_history",
                sandbox: "No default primary key for stream: orders.",
            },
        ),
        (
            "a primary key the source lacks",
            Some(
                json!([{"name": "orders", "syncMode": "incremental_deduped_history",
                         "cursorField": ["updated_at"], "primaryKey": [["order_id"]]}]),
            ),
            Expect::Refused {
                client: "stream \"orders\" has no field \"order_id\" in source \"shop-eu\" for its primary key",
                sandbox: "Invalid primary key for stream: orders.",
            },
        ),
        (
            "selected fields without the cursor",
            Some(
                json!([{"name": "products", "syncMode": "incremental_append",
                         "selectedFields": [field("id")]}]),
            ),
            Expect::Refused {
                client: "stream \"products\" leaves its cursor field \"updated_at\" out of its selected fields",
                sandbox: "Cursor field is not selected properly for stream: products.",
            },
        ),
        (
            "selected fields without the primary key",
            Some(
                json!([{"name": "orders", "syncMode": "incremental_deduped_history",
                         "cursorField": ["updated_at"], "primaryKey": [["id"]],
                         "selectedFields": [field("updated_at"), field("status")]}]),
            ),
            Expect::Refused {
                client: "stream \"orders\" leaves its primary key field \"id\" out of its selected fields",
                sandbox: "Primary key fields are not selected properly for stream: orders.",
            },
        ),
        (
            "selected fields without the source-defined primary key",
            Some(
                json!([{"name": "customers", "syncMode": "incremental_deduped_history",
                         "selectedFields": [field("name"), field("updated_at")]}]),
            ),
            Expect::Refused {
                client: "stream \"customers\" leaves its primary key field \"id\" out of its selected fields",
                sandbox: "Primary key fields are not selected properly for stream: customers.",
            },
        ),
    ]
}

/// `POST /connections`: the status, and the 400's `data.message` (empty otherwise).
async fn create(api: &Api, body: &Value) -> (u16, String) {
    let (status, answer) = api.post("/connections", body).await;
    let message = answer["data"]["message"].as_str().unwrap_or_default();
    (status.as_u16(), message.to_string())
}

#[tokio::test]
async fn the_client_refuses_a_copy_exactly_when_the_sandbox_would() {
    let api = Api::start().await;
    let (status, template) = api.get(&format!("/connections/{TEMPLATE}")).await;
    assert_eq!(status, 200, "{template}");
    let (status, catalog) = api
        .get(&format!(
            "/streams?sourceId={SHOP_EU}&destinationId={WAREHOUSE}"
        ))
        .await;
    assert_eq!(status, 200, "{catalog}");
    let catalog: Vec<StreamProperties> = serde_json::from_value(catalog).unwrap();
    let names = Names {
        source_name: "shop-eu",
        source_id: seed::id(SHOP_EU),
        source_type: "postgres",
        destination_name: "Warehouse",
        destination_id: seed::id(WAREHOUSE),
        template_name: seed::TEMPLATE_NAME,
    };

    let mut disagreements = Vec::new();
    for (case, streams, expect) in cases() {
        let mut template = template.clone();
        if let Some(streams) = streams {
            template["configurations"]["streams"] = streams;
        }
        let as_read: ConnectionResponse =
            serde_json::from_value(template.clone()).unwrap_or_else(|e| panic!("{case}: {e}"));
        let built = Blueprint::new(&as_read).and_then(|blueprint| {
            build_copy(
                &blueprint,
                &names,
                &Overrides::default(),
                &catalog,
                MissingStreamsPolicy::Fail,
            )
        });
        let raw = json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE,
                         "configurations": template["configurations"]});
        let (raw_status, raw_message) = create(&api, &raw).await;
        let sent = match &built {
            Ok(plan) => create(&api, &serde_json::to_value(&plan.body).unwrap()).await,
            Err(_) => (raw_status, raw_message.clone()),
        };

        // The agreement: the client refuses iff the sandbox refuses what it would send.
        if built.is_err() != (sent.0 == 400) {
            disagreements.push(format!(
                "{case}: the client says {built:?}, the sandbox {} {}",
                sent.0, sent.1
            ));
            continue;
        }
        // And each case comes to what the table says, for the same reason on both sides.
        match (&expect, &built) {
            (Expect::Accepted, Ok(_)) => {
                assert_eq!(sent.0, 200, "{case}: {}", sent.1);
                assert_eq!(
                    raw_status, 200,
                    "{case}: the streams as they stand: {raw_message}"
                );
            }
            (Expect::Fitted(reason), Ok(_)) => {
                assert_eq!(sent.0, 200, "{case}: {}", sent.1);
                assert_eq!(
                    raw_status, 400,
                    "{case}: the streams as they stand were taken"
                );
                assert!(
                    raw_message.contains(reason),
                    "{case}: the sandbox says {raw_message:?}, not {reason:?}"
                );
            }
            (Expect::Refused { client, sandbox }, Err(errors)) => {
                assert!(
                    errors.iter().any(|e| e.contains(client)),
                    "{case}: the client says {errors:#?}, not {client:?}"
                );
                assert!(
                    raw_message.contains(sandbox),
                    "{case}: the sandbox says {raw_message:?}, not {sandbox:?}"
                );
            }
            _ => panic!("{case}: expected {expect:?}, the client says {built:?}"),
        }
    }
    assert!(
        disagreements.is_empty(),
        "the client and the sandbox disagree:\n{}",
        disagreements.join("\n")
    );
}
