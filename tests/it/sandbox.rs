//! The sandbox over real HTTP: each test starts its own sandbox on a free loopback port and
//! talks to it with reqwest, as `replicate` (or any Airbyte client) would.

use crate::support::Api;
use crate::support::seed::{
    CRM, MISSING, SHOP_EU, SHOP_LEGACY, SHOP_TEMPLATE, SHOP_US, TEMPLATE, WAREHOUSE, WORKSPACE,
};
use replicate::sandbox::seed::SeedJob;
use replicate::sandbox::{SandboxArgs, SandboxConfig, Seed};
use replicate::wire::{JobStatus, JobType};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

/// Asserts Airbyte's 400 body and returns its `data.message`.
fn bad_request(status: StatusCode, body: &Value) -> String {
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["type"],
        "https://reference.airbyte.com/reference/errors#bad-request"
    );
    assert_eq!(body["title"], "bad-request");
    assert_eq!(
        body["detail"],
        "The request could not be understood by the server due to malformed syntax."
    );
    assert_eq!(body["documentationUrl"], Value::Null);
    body["data"]["message"].as_str().unwrap().to_string()
}

/// Posts a create for shop-eu → Warehouse with these streams and expects a 400 containing `needle`.
async fn rejects_streams(streams: Value, needle: &str) {
    rejects_create(
        json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE, "configurations": {"streams": streams}}),
        needle,
    )
    .await;
}

async fn rejects_create(body: Value, needle: &str) {
    let api = Api::start().await;
    let (status, answer) = api.post("/connections", &body).await;
    let message = bad_request(status, &answer);
    assert!(
        message.contains(needle),
        "expected `{needle}` in `{message}`"
    );
    assert_eq!(api.stats().await["connections"], 1, "nothing was created");
}

async fn accepts_streams(streams: Value) -> Value {
    let api = Api::start().await;
    api.create(&json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE, "configurations": {"streams": streams}}))
        .await
}

fn stream<'a>(connection: &'a Value, name: &str) -> &'a Value {
    connection["configurations"]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no stream {name} in {connection}"))
}

// ---------------------------------------------------------------------------------------------
// Health, base paths, auth

#[tokio::test]
async fn health_needs_no_token_on_both_bases() {
    let mut api = Api::start().await;
    api.token = None;
    for base in ["/v1", "/api/public/v1"] {
        let url = format!("http://{}{base}/health", api.sandbox.addr());
        assert_eq!(api.http.get(url).send().await.unwrap().status(), 200);
    }
}

#[tokio::test]
async fn both_bases_serve_the_api() {
    let api = Api::start().await;
    let url = format!(
        "http://{}/api/public/v1/connections/{TEMPLATE}",
        api.sandbox.addr()
    );
    let (status, body) = api.send(api.http.get(url)).await;
    assert_eq!(status, 200);
    assert_eq!(body["name"], "shop-template → Warehouse");
    let url = format!(
        "http://{}/api/public/v1/connections?limit=1",
        api.sandbox.addr()
    );
    let (_, page) = api.send(api.http.get(url)).await;
    let next = page["next"].as_str().unwrap();
    assert!(next.contains("/api/public/v1/connections?"), "{next}");
}

#[tokio::test]
async fn requests_without_a_valid_token_are_401() {
    let mut api = Api::start().await;
    api.token = None;
    let (status, body) = api.get("/connections").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["title"], "invalid-api-key");
    assert_eq!(
        body["type"],
        "https://reference.airbyte.com/reference/errors#invalid-api-key"
    );
    api.token = Some("not-a-token".into());
    let (status, body) = api.get(&format!("/connections/{TEMPLATE}")).await;
    assert_eq!(status, 401);
    assert_eq!(body["data"]["message"], "The access token is not valid.");
    let (status, _) = api
        .send(
            api.http
                .get(api.url("/sources"))
                .header("Authorization", "Basic c2FuZGJveA=="),
        )
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn application_tokens_come_from_json_and_form_bodies() {
    let mut api = Api::start().await;
    api.token = None;
    let (status, json_token) = api
        .post(
            "/applications/token",
            &json!({"client_id": "sandbox-client", "client_secret": "sandbox-secret", "grant-type": "client_credentials"}),
        )
        .await;
    assert_eq!(status, 200, "{json_token}");
    assert_eq!(json_token["token_type"], "Bearer");
    assert_eq!(json_token["expires_in"], 900);
    let form = [
        ("client_id", "sandbox-client"),
        ("client_secret", "sandbox-secret"),
        ("grant-type", "client_credentials"),
    ];
    let (status, form_token) = api
        .send(api.http.post(api.url("/applications/token")).form(&form))
        .await;
    assert_eq!(status, 200, "{form_token}");
    assert_ne!(json_token["access_token"], form_token["access_token"]);
    for token in [&json_token, &form_token] {
        api.token = Some(token["access_token"].as_str().unwrap().to_string());
        assert_eq!(api.get(&format!("/connections/{TEMPLATE}")).await.0, 200);
    }
}

#[tokio::test]
async fn wrong_client_credentials_and_grants_are_refused() {
    let mut api = Api::start().await;
    api.token = None;
    let (status, body) = api
        .post(
            "/applications/token",
            &json!({"client_id": "sandbox-client", "client_secret": "nope"}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["title"], "forbidden");
    let (status, body) = api
        .post(
            "/applications/token",
            &json!({"client_id": "sandbox-client", "client_secret": "sandbox-secret", "grant-type": "password"}),
        )
        .await;
    assert!(bad_request(status, &body).contains("grant-type"));
    let (status, body) = api
        .post(
            "/applications/token",
            &json!({"client_id": "sandbox-client"}),
        )
        .await;
    assert!(bad_request(status, &body).contains("client_secret"));
}

#[tokio::test]
async fn application_tokens_expire() {
    let mut api = Api::from_config(SandboxConfig {
        token_ttl: Duration::from_millis(300),
        ..SandboxConfig::default_on_free_port()
    })
    .await;
    api.token = None;
    let (_, token) = api.send(api.token_request()).await;
    assert_eq!(token["expires_in"], 1, "rounded up to whole seconds");
    api.token = Some(token["access_token"].as_str().unwrap().to_string());
    assert_eq!(api.get("/workspaces").await.0, 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, body) = api.get("/workspaces").await;
    assert_eq!(status, 401);
    assert_eq!(body["data"]["message"], "The access token has expired.");
}

// ---------------------------------------------------------------------------------------------
// The default seed

#[tokio::test]
async fn the_template_reads_back_as_airbyte_returns_it() {
    let api = Api::start().await;
    let (status, t) = api.get(&format!("/connections/{TEMPLATE}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        t["schedule"],
        json!({"scheduleType": "cron", "cronExpression": "0 0 2 * * ? UTC"})
    );
    assert_eq!(t["status"], "active");
    assert_eq!(t["prefix"], "shop_template_");
    assert_eq!(t["nonBreakingSchemaUpdatesBehavior"], "propagate_columns");
    assert_eq!(t["workspaceId"], WORKSPACE);
    assert_eq!(t["sourceId"], SHOP_TEMPLATE);
    assert_eq!(t["destinationId"], WAREHOUSE);
    let orders = stream(&t, "orders");
    assert_eq!(orders["syncMode"], "incremental_deduped_history");
    assert_eq!(orders["cursorField"], json!(["updated_at"]));
    assert_eq!(orders["primaryKey"], json!([["id"]]));
    assert_eq!(orders["selectedFields"], json!([]));
    let customers = stream(&t, "customers");
    assert_eq!(customers["syncMode"], "full_refresh_overwrite");
    assert_eq!(customers["selectedFields"].as_array().unwrap().len(), 3);
    assert_eq!(
        customers["primaryKey"],
        json!([["id"]]),
        "source-defined key filled in"
    );
    let products = stream(&t, "products");
    assert_eq!(products["syncMode"], "incremental_append");
    assert_eq!(
        products["cursorField"],
        json!(["updated_at"]),
        "source-defined cursor filled in"
    );
}

#[tokio::test]
async fn the_default_seed_has_its_sources_destination_and_workspace() {
    let api = Api::start().await;
    let (_, sources) = api.get("/sources?limit=100").await;
    let names: Vec<&str> = sources["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "shop-template",
            "shop-eu",
            "shop-us",
            "shop-apac",
            "shop-latam",
            "shop-legacy",
            "crm"
        ]
    );
    let (_, crm) = api.get(&format!("/sources/{CRM}")).await;
    assert_eq!(crm["sourceType"], "hubspot");
    let (_, warehouse) = api.get(&format!("/destinations/{WAREHOUSE}")).await;
    assert_eq!(warehouse["destinationType"], "bigquery");
    assert_eq!(warehouse["workspaceId"], WORKSPACE);
    let (_, workspace) = api.get(&format!("/workspaces/{WORKSPACE}")).await;
    assert_eq!(workspace["name"], "Sandbox");
    let (_, workspaces) = api.get("/workspaces").await;
    assert_eq!(workspaces["data"].as_array().unwrap().len(), 1);
    let (status, tags) = api.get(&format!("/tags?workspaceIds={WORKSPACE}")).await;
    assert_eq!((status, tags), (StatusCode::OK, json!({"data": []})));
}

#[tokio::test]
async fn streams_are_a_bare_array_with_sync_modes_only_for_a_pair() {
    let api = Api::start().await;
    let (status, alone) = api.get(&format!("/streams?sourceId={SHOP_EU}")).await;
    assert_eq!(status, 200);
    let alone = alone.as_array().expect("a bare array");
    assert_eq!(alone.len(), 3);
    assert!(alone.iter().all(|s| s.get("syncModes").is_none()));
    let (_, paired) = api
        .get(&format!(
            "/streams?sourceId={SHOP_EU}&destinationId={WAREHOUSE}"
        ))
        .await;
    let products = paired
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["streamName"] == "products")
        .unwrap();
    assert_eq!(
        products["syncModes"],
        json!([
            "full_refresh_overwrite",
            "full_refresh_append",
            "incremental_append",
            "incremental_deduped_history"
        ])
    );
    assert_eq!(products["sourceDefinedCursorField"], true);
    assert_eq!(products["defaultCursorField"], json!(["updated_at"]));
    assert_eq!(products["streamnamespace"], "public");
    let (_, legacy) = api.get(&format!("/streams?sourceId={SHOP_LEGACY}")).await;
    let legacy: Vec<&Value> = legacy
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["streamName"])
        .collect();
    assert_eq!(legacy, [&json!("orders"), &json!("customers")]);
    let (_, crm) = api.get(&format!("/streams?sourceId={CRM}")).await;
    let contacts = &crm[0];
    assert!(
        contacts["propertyFields"]
            .as_array()
            .unwrap()
            .contains(&json!(["properties", "lifecyclestage"])),
        "nested paths are listed: {contacts}"
    );
}

#[tokio::test]
async fn streams_need_a_known_source_id() {
    let api = Api::start().await;
    let (status, body) = api.get("/streams").await;
    assert!(bad_request(status, &body).contains("sourceId"));
    let (status, body) = api.get(&format!("/streams?sourceId={MISSING}")).await;
    assert_eq!(status, 404);
    assert_eq!(
        body["data"],
        json!({"resourceType": "source", "resourceId": MISSING})
    );
    let (status, _) = api
        .get(&format!(
            "/streams?sourceId={SHOP_EU}&destinationId={MISSING}"
        ))
        .await;
    assert_eq!(status, 404);
}

// ---------------------------------------------------------------------------------------------
// Create: defaults and round trips

#[tokio::test]
async fn create_applies_the_server_defaults() {
    let api = Api::start().await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let c = api
        .create(&json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE}))
        .await;
    assert_eq!(c["name"], "shop-eu <> Warehouse", "Airbyte's default name");
    assert_eq!(c["status"], "active");
    assert_eq!(c["schedule"], json!({"scheduleType": "manual"}));
    assert_eq!(c["namespaceDefinition"], "destination");
    assert_eq!(c["nonBreakingSchemaUpdatesBehavior"], "ignore");
    assert_eq!(c["prefix"], "");
    assert_eq!(c["workspaceId"], WORKSPACE);
    assert_eq!(c["tags"], json!([]));
    assert!(c["createdAt"].as_u64().unwrap() >= before);
    let streams = c["configurations"]["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 3, "every discovered stream");
    assert!(
        streams
            .iter()
            .all(|s| s["syncMode"] == "full_refresh_overwrite")
    );
    let (_, again) = api
        .get(&format!(
            "/connections/{}",
            c["connectionId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(again, c, "GET returns what create returned");
    let empty = api
        .create(&json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE, "configurations": {"streams": []}}))
        .await;
    assert_eq!(
        empty["configurations"]["streams"].as_array().unwrap().len(),
        3
    );
}

#[tokio::test]
async fn a_copy_of_the_template_round_trips() {
    let api = Api::start().await;
    let c = api
        .create(&json!({
            "name": "shop-eu copy",
            "sourceId": SHOP_EU,
            "destinationId": WAREHOUSE,
            "schedule": {"scheduleType": "cron", "cronExpression": "0 0 3 * * ? UTC"},
            "status": "inactive",
            "prefix": "shop_eu_",
            "namespaceDefinition": "custom_format",
            "namespaceFormat": "${SOURCE_NAMESPACE}",
            "configurations": {"streams": [
                {"name": "orders", "syncMode": "incremental_deduped_history", "cursorField": ["updated_at"], "primaryKey": [["id"]]},
                {"name": "customers", "syncMode": "full_refresh_overwrite", "selectedFields": [{"fieldPath": ["id"]}, {"fieldPath": ["name"]}, {"fieldPath": ["email"]}]},
                {"name": "products", "syncMode": "incremental_append"}
            ]}
        }))
        .await;
    let (_, read) = api
        .get(&format!(
            "/connections/{}",
            c["connectionId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(read["schedule"]["cronExpression"], "0 0 3 * * ? UTC");
    assert_eq!(read["status"], "inactive");
    assert_eq!(read["namespaceFormat"], "${SOURCE_NAMESPACE}");
    assert_eq!(stream(&read, "orders")["selectedFields"], json!([]));
    assert_eq!(
        stream(&read, "customers")["selectedFields"],
        json!([{"fieldPath": ["id"]}, {"fieldPath": ["name"]}, {"fieldPath": ["email"]}])
    );
    let (_, template) = api.get(&format!("/connections/{TEMPLATE}")).await;
    assert_eq!(
        read["configurations"]["streams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (
                &s["name"],
                &s["syncMode"],
                &s["cursorField"],
                &s["primaryKey"]
            ))
            .collect::<Vec<_>>(),
        template["configurations"]["streams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (
                &s["name"],
                &s["syncMode"],
                &s["cursorField"],
                &s["primaryKey"]
            ))
            .collect::<Vec<_>>(),
        "the copy's streams match the template's"
    );
}

#[tokio::test]
async fn posting_the_template_get_body_back_fails_on_selected_fields() {
    let api = Api::start().await;
    let (_, template) = api.get(&format!("/connections/{TEMPLATE}")).await;
    let body = json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE, "configurations": template["configurations"]});
    let (status, answer) = api.post("/connections", &body).await;
    assert!(bad_request(status, &answer).starts_with("No fields selected for stream orders."));
}

// ---------------------------------------------------------------------------------------------
// Create: one test per validation rule

#[tokio::test]
async fn malformed_json_is_400() {
    let api = Api::start().await;
    let (status, body) = api
        .send(
            api.http
                .post(api.url("/connections"))
                .header("Content-Type", "application/json")
                .body("{\"sourceId\": "),
        )
        .await;
    assert!(bad_request(status, &body).starts_with("Malformed JSON"));
}

#[tokio::test]
async fn missing_required_fields_are_400() {
    rejects_create(
        json!({"sourceId": SHOP_EU}),
        "missing field `destinationId`",
    )
    .await;
}

#[tokio::test]
async fn unknown_enum_values_are_400() {
    rejects_create(
        json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE, "status": "paused"}),
        "status",
    )
    .await;
    rejects_streams(
        json!([{"name": "orders", "syncMode": "incremental"}]),
        "configurations.streams[0].syncMode",
    )
    .await;
}

#[tokio::test]
async fn a_basic_schedule_cannot_be_created_or_patched() {
    rejects_create(
        json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE, "schedule": {"scheduleType": "basic"}}),
        "unknown variant `basic`",
    )
    .await;
    let api = Api::start().await;
    let (status, body) = api
        .patch(
            &format!("/connections/{TEMPLATE}"),
            &json!({"schedule": {"scheduleType": "basic", "basicTiming": "Every 24 HOURS"}}),
        )
        .await;
    assert!(bad_request(status, &body).contains("schedule.scheduleType"));
}

#[tokio::test]
async fn malformed_uuids_are_400() {
    rejects_create(
        json!({"sourceId": "shop-eu", "destinationId": WAREHOUSE}),
        "sourceId",
    )
    .await;
    let api = Api::start().await;
    let (status, body) = api.get("/connections/shop-eu").await;
    assert!(bad_request(status, &body).contains("not a valid UUID"));
}

#[tokio::test]
async fn empty_selected_fields_are_400() {
    rejects_streams(
        json!([{"name": "orders", "selectedFields": []}]),
        "No fields selected for stream orders. The list of valid field names includes: [id, customer_id, status, total, updated_at, created_at].",
    )
    .await;
}

#[tokio::test]
async fn nested_selected_fields_are_400() {
    rejects_streams(
        json!([{"name": "orders", "selectedFields": [{"fieldPath": ["id", "x"]}]}]),
        "Nested field selection not supported for stream orders.",
    )
    .await;
}

#[tokio::test]
async fn duplicate_selected_fields_are_400() {
    rejects_streams(
        json!([{"name": "orders", "selectedFields": [{"fieldPath": ["id"]}, {"fieldPath": ["id"]}]}]),
        "Duplicate fields selected in configuration for stream: orders.",
    )
    .await;
}

#[tokio::test]
async fn selected_fields_the_source_lacks_are_400() {
    rejects_streams(
        json!([{"name": "orders", "selectedFields": [{"fieldPath": ["discount"]}]}]),
        "Invalid fields selected for stream orders.",
    )
    .await;
}

#[tokio::test]
async fn dedup_modes_must_select_the_primary_key() {
    rejects_streams(
        json!([{"name": "orders", "syncMode": "incremental_deduped_history", "cursorField": ["updated_at"],
                "primaryKey": [["id"]], "selectedFields": [{"fieldPath": ["updated_at"]}, {"fieldPath": ["status"]}]}]),
        "Primary key fields are not selected properly for stream: orders.",
    )
    .await;
}

#[tokio::test]
async fn incremental_modes_must_select_the_cursor() {
    rejects_streams(
        json!([{"name": "products", "syncMode": "incremental_append", "selectedFields": [{"fieldPath": ["id"]}]}]),
        "Cursor field is not selected properly for stream: products.",
    )
    .await;
}

#[tokio::test]
async fn a_stream_the_source_lacks_is_400() {
    rejects_create(
        json!({"sourceId": SHOP_LEGACY, "destinationId": WAREHOUSE,
               "configurations": {"streams": [{"name": "products", "syncMode": "incremental_append"}]}}),
        "No streams found with name [products] and namespace [null].",
    )
    .await;
}

#[tokio::test]
async fn a_stream_named_twice_is_400() {
    rejects_streams(
        json!([{"name": "orders"}, {"name": "customers"}, {"name": "orders"}]),
        "Duplicate stream found in configuration for stream name [orders] in namespace [null].",
    )
    .await;
}

#[tokio::test]
async fn streams_match_by_name_first_and_by_namespace_only_when_names_collide() {
    let api = Api::seeded(
        "workspaces: [{name: W}]\n\
         destinations: [{name: D, type: bigquery}]\n\
         catalogs:\n  c:\n\
         \x20   - {name: events, namespace: a, fields: [id]}\n\
         \x20   - {name: events, namespace: b, fields: [id, extra]}\n\
         \x20   - {name: users, namespace: a, fields: [id]}\n\
         sources: [{name: S, type: postgres, catalog: c}]\n\
         tokens: [sandbox-token]\n",
    )
    .await;
    let (_, sources) = api.get("/sources").await;
    let (_, destinations) = api.get("/destinations").await;
    let body = |streams: Value| {
        json!({"sourceId": sources["data"][0]["sourceId"], "destinationId": destinations["data"][0]["destinationId"],
               "configurations": {"streams": streams}})
    };
    let (status, answer) = api
        .post("/connections", &body(json!([{"name": "events"}])))
        .await;
    assert!(
        bad_request(status, &answer)
            .starts_with("No streams found with name [events] and namespace [null]."),
        "two streams share the name, so the (absent) namespace must match one"
    );
    let (status, answer) = api
        .post(
            "/connections",
            &body(json!([{"name": "events", "namespace": "c"}])),
        )
        .await;
    assert!(
        bad_request(status, &answer)
            .starts_with("No streams found with name [events] and namespace [c].")
    );
    let (status, created) = api
        .post(
            "/connections",
            &body(json!([{"name": "events", "namespace": "b", "selectedFields": [{"fieldPath": ["extra"]}]},
                         {"name": "users", "namespace": "elsewhere"}])),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["configurations"]["streams"][0]["namespace"], "b");
    assert_eq!(
        created["configurations"]["streams"][1]["namespace"], "a",
        "a unique name matches whatever namespace is sent, and reads back as discovered"
    );
}

/// Airbyte's body for a failure inside its connection handler.
fn unexpected_problem(status: StatusCode, body: &Value) {
    assert_eq!(status, 500, "{body}");
    assert_eq!(
        body["type"],
        "https://reference.airbyte.com/reference/errors"
    );
    assert_eq!(body["title"], "unexpected-problem");
    assert_eq!(
        body["detail"],
        "An unexpected problem has occurred. If this is an error that needs to be addressed, \
         please submit a pull request or github issue."
    );
}

#[tokio::test]
async fn one_stream_under_two_namespace_spellings_is_airbytes_500() {
    let api = Api::start().await;
    let streams = json!([{"name": "orders"}, {"name": "orders", "namespace": "public"}]);
    let (status, body) = api
        .post(
            "/connections",
            &json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE, "configurations": {"streams": streams}}),
        )
        .await;
    unexpected_problem(status, &body);
    assert!(
        body.get("data").is_none(),
        "a create's 500 carries no data: {body}"
    );
    assert_eq!(api.stats().await["connections"], 1, "nothing was created");
    let (status, body) = api
        .patch(
            &format!("/connections/{TEMPLATE}"),
            &json!({"configurations": {"streams": streams}}),
        )
        .await;
    unexpected_problem(status, &body);
    assert_eq!(
        body["data"]["message"],
        "Catalog contains duplicate stream names: public.orders"
    );
    let (_, template) = api.get(&format!("/connections/{TEMPLATE}")).await;
    assert_eq!(
        template["configurations"]["streams"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn bodies_that_are_not_json_are_415() {
    let api = Api::start().await;
    let body = json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE}).to_string();
    for (method, path) in [
        (reqwest::Method::POST, "/connections".to_string()),
        (reqwest::Method::PATCH, format!("/connections/{TEMPLATE}")),
        (reqwest::Method::POST, "/tags".to_string()),
        (reqwest::Method::POST, "/jobs".to_string()),
    ] {
        let request = api
            .http
            .request(method.clone(), api.url(&path))
            .header("content-type", "text/plain")
            .body(body.clone());
        let (status, answer) = api.send(request).await;
        assert_eq!(status, 415, "{method} {path}: {answer}");
        assert_eq!(answer["status"], 415);
        assert_eq!(answer["title"], "unsupported-media-type");
        assert_eq!(
            answer["data"]["message"],
            "Content Type [text/plain] not allowed. Allowed types: [application/json]"
        );
    }
    assert_eq!(api.stats().await["connections"], 1, "nothing was created");
    let charset = api
        .http
        .post(api.url("/connections"))
        .header("content-type", "application/json; charset=utf-8")
        .body(body.clone());
    assert_eq!(api.send(charset).await.0, 200);
    let untyped = api.http.post(api.url("/connections")).body(body);
    assert_eq!(
        api.send(untyped).await.0,
        200,
        "no content type is read as JSON"
    );
}

#[tokio::test]
async fn a_cursor_other_than_the_source_defined_one_is_400() {
    rejects_streams(
        json!([{"name": "products", "syncMode": "incremental_append", "cursorField": ["id"]}]),
        "Cursor Field [id] is already defined by source for stream: products. Do not include a cursor field configuration for this stream.",
    )
    .await;
    let same = accepts_streams(json!([{"name": "products", "syncMode": "incremental_append", "cursorField": ["updated_at"]}])).await;
    assert_eq!(
        stream(&same, "products")["cursorField"],
        json!(["updated_at"])
    );
}

#[tokio::test]
async fn a_key_other_than_the_source_defined_one_is_400() {
    rejects_streams(
        json!([{"name": "customers", "syncMode": "incremental_deduped_history", "primaryKey": [["email"]]}]),
        "Primary key for stream: customers is already pre-defined. Please remove the primaryKey or provide the value as [[id]].",
    )
    .await;
    let filled =
        accepts_streams(json!([{"name": "customers", "syncMode": "incremental_deduped_history"}]))
            .await;
    assert_eq!(stream(&filled, "customers")["primaryKey"], json!([["id"]]));
    assert_eq!(
        stream(&filled, "customers")["cursorField"],
        json!(["updated_at"]),
        "default cursor"
    );
}

#[tokio::test]
async fn cursor_and_key_must_be_fields_of_the_stream() {
    rejects_streams(
        json!([{"name": "orders", "syncMode": "incremental_append", "cursorField": ["modified"]}]),
        "Invalid cursor field for stream: orders. The list of valid cursor fields include: [[id], [customer_id], [status], [total], [updated_at], [created_at]].",
    )
    .await;
    rejects_streams(
        json!([{"name": "orders", "syncMode": "incremental_deduped_history", "cursorField": ["updated_at"], "primaryKey": [["order_id"]]}]),
        "Invalid primary key for stream: orders.",
    )
    .await;
}

#[tokio::test]
async fn incremental_without_any_cursor_is_400() {
    rejects_streams(
        json!([{"name": "orders", "syncMode": "incremental_append"}]),
        "No default cursor field for stream: orders. Please include a cursor field configuration for this stream.",
    )
    .await;
}

#[tokio::test]
async fn dedup_without_any_primary_key_is_400() {
    rejects_streams(
        json!([{"name": "orders", "syncMode": "incremental_deduped_history", "cursorField": ["updated_at"]}]),
        "No default primary key for stream: orders. Please include a primary key configuration for this stream.",
    )
    .await;
}

#[tokio::test]
async fn a_sync_mode_the_pair_does_not_support_is_400() {
    rejects_streams(
        json!([{"name": "orders", "syncMode": "full_refresh_update", "primaryKey": [["id"]]}]),
        "Cannot set sync mode to full_refresh_update for stream orders. Valid sync modes are: [full_refresh_overwrite, full_refresh_append, incremental_append, incremental_deduped_history]",
    )
    .await;
    rejects_create(
        json!({"sourceId": CRM, "destinationId": WAREHOUSE,
               "configurations": {"streams": [{"name": "owners", "syncMode": "full_refresh_append"}, {"name": "contacts", "syncMode": "incremental_append"}, {"name": "owners", "syncMode": "incremental_append"}]}}),
        "Cannot set sync mode to incremental_append for stream owners. Valid sync modes are: [full_refresh_overwrite, full_refresh_append]",
    )
    .await;
}

#[tokio::test]
async fn cron_expressions_are_checked() {
    let quartz = ". Please check the cron expression format at \
                  https://www.quartz-scheduler.org/documentation/quartz-2.3.0/tutorials/crontrigger.html";
    let hourly = " is not valid or is less than the one hour minimum. The seconds and minutes \
                  values cannot be `*`.";
    for (cron, expected) in [
        (
            "0 0 2 * *",
            format!(
                "The cron expression 0 0 2 * * is not valid. Error: Cron expression contains 5 parts but we expect one of [6, 7]{quartz}"
            ),
        ),
        (
            "0 0 2 * * ? 2030 Europe/Paris",
            format!(
                "The cron expression 0 0 2 * * ? 2030 Europe/Paris is not valid. Error: Cron expression contains 8 parts but we expect one of [6, 7]{quartz}"
            ),
        ),
        (
            "0 * 2 * * ?",
            format!("The cron expression 0 * 2 * * ?{hourly}"),
        ),
        (
            "* 0 2 * * ? UTC",
            format!("The cron expression * 0 2 * * ? UTC{hourly}"),
        ),
        (
            "* 0 2 * * MON",
            format!(
                "The cron expression * 0 2 * * MON is not valid. Error: Both, a day-of-week AND a day-of-month parameter, are not supported.{quartz}"
            ),
        ),
    ] {
        let api = Api::start().await;
        let (status, answer) = api
            .post(
                "/connections",
                &json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE, "schedule": {"scheduleType": "cron", "cronExpression": cron}}),
            )
            .await;
        assert_eq!(bad_request(status, &answer), expected, "{cron}");
    }
    rejects_create(
        json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE, "schedule": {"scheduleType": "cron", "cronExpression": "0 0 2 * * ? Europe/Paris"}}),
        "The cron expression 0 0 2 * * ? Europe/Paris is not valid. Error: 'Europe/Paris' is not a valid year",
    )
    .await;
    rejects_create(
        json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE, "schedule": {"scheduleType": "cron", "cronExpression": "0 75 2 * * ?"}}),
        "The cron expression 0 75 2 * * ? is not valid. Error: ",
    )
    .await;
    rejects_create(
        json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE, "schedule": {"scheduleType": "cron"}}),
        "Missing cron expression in the schedule.",
    )
    .await;
}

#[tokio::test]
async fn masked_mapper_secrets_are_refused_and_fresh_ones_masked_on_read() {
    let api = Api::start().await;
    let mapper = |key: &str, id: Option<&Value>| {
        let mut m = json!({"type": "encryption", "mapperConfiguration": {
            "algorithm": "AES", "key": key, "mode": "CBC", "padding": "PKCS5Padding",
            "targetField": "email", "fieldNameSuffix": "_enc"}});
        if let Some(id) = id {
            m["id"] = id.clone();
        }
        m
    };
    let template_mapper_id = json!("11111111-1111-4111-8111-111111111111");
    let created = api
        .create(&json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE, "configurations": {"streams": [
            {"name": "customers", "mappers": [mapper("00112233445566778899aabbccddeeff", Some(&template_mapper_id))]}]}}))
        .await;
    let read = &stream(&created, "customers")["mappers"][0];
    assert_eq!(read["mapperConfiguration"]["key"], "**********");
    assert_ne!(
        read["id"], template_mapper_id,
        "mappers get new ids on create"
    );
    let id = created["connectionId"].as_str().unwrap();

    // The GET body re-posted (without its empty selectedFields) for another source.
    let mut configurations = created["configurations"].clone();
    for s in configurations["streams"].as_array_mut().unwrap() {
        s.as_object_mut().unwrap().remove("selectedFields");
    }
    let (status, body) = api
        .post(
            "/connections",
            &json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE, "configurations": configurations}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["type"], "error:mapper-validation/secret-not-found");
    assert!(
        body["data"]["message"]
            .as_str()
            .unwrap()
            .contains("customers")
    );

    // On the same connection, the masked value stands for the stored secret of that mapper.
    let streams =
        json!([{"name": "customers", "mappers": [mapper("**********", Some(&read["id"]))]}]);
    let (status, patched) = api
        .patch(
            &format!("/connections/{id}"),
            &json!({"configurations": {"streams": streams}}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        stream(&patched, "customers")["mappers"][0]["id"],
        read["id"]
    );
}

#[tokio::test]
async fn unknown_sources_and_destinations_are_404() {
    let api = Api::start().await;
    let (status, body) = api
        .post(
            "/connections",
            &json!({"sourceId": MISSING, "destinationId": WAREHOUSE}),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["title"], "resource-not-found");
    assert_eq!(
        body["data"],
        json!({"resourceType": "source", "resourceId": MISSING})
    );
    let (status, body) = api
        .post(
            "/connections",
            &json!({"sourceId": SHOP_EU, "destinationId": MISSING}),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["data"]["resourceType"], "destination");
}

#[tokio::test]
async fn source_and_destination_must_share_a_workspace() {
    let mut seed = Seed::default_seed();
    seed.workspaces
        .push(replicate::sandbox::seed::SeedWorkspace {
            name: "Other".into(),
            id: None,
            data_residency: None,
        });
    let mut stray = seed.sources[1].clone();
    stray.name = "stray".into();
    stray.id = None;
    stray.workspace = Some("Other".into());
    seed.sources.push(stray);
    let api = Api::from_config(SandboxConfig {
        seed,
        ..SandboxConfig::default_on_free_port()
    })
    .await;
    let (_, sources) = api.get("/sources?limit=100").await;
    let stray = sources["data"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(stray["name"], "stray");
    assert_ne!(stray["workspaceId"], WORKSPACE);
    let (status, body) = api
        .post(
            "/connections",
            &json!({"sourceId": stray["sourceId"], "destinationId": WAREHOUSE}),
        )
        .await;
    unexpected_problem(status, &body);
    assert!(body.get("data").is_none(), "{body}");
    let (status, body) = api
        .post(
            "/connections",
            &json!({"sourceId": stray["sourceId"], "destinationId": WAREHOUSE,
                    "configurations": {"streams": [{"name": "nope"}]}}),
        )
        .await;
    assert!(
        bad_request(status, &body).starts_with("No streams found"),
        "streams are checked before the workspaces, as on Airbyte"
    );
}

// ---------------------------------------------------------------------------------------------
// Patch and delete

#[tokio::test]
async fn patch_changes_only_what_is_sent() {
    let api = Api::start().await;
    let (status, patched) = api
        .patch(
            &format!("/connections/{TEMPLATE}"),
            &json!({"name": "renamed", "schedule": {"scheduleType": "cron", "cronExpression": "0 30 4 * * ? UTC"}}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["name"], "renamed");
    assert_eq!(patched["schedule"]["cronExpression"], "0 30 4 * * ? UTC");
    assert_eq!(patched["prefix"], "shop_template_", "untouched");
    assert_eq!(
        patched["configurations"]["streams"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let (_, streams_only) = api
        .patch(
            &format!("/connections/{TEMPLATE}"),
            &json!({"configurations": {"streams": [{"name": "orders"}]}}),
        )
        .await;
    assert_eq!(
        streams_only["configurations"]["streams"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(streams_only["name"], "renamed");
    let (status, body) = api
        .patch(
            &format!("/connections/{TEMPLATE}"),
            &json!({"configurations": {"streams": [{"name": "orders", "selectedFields": []}]}}),
        )
        .await;
    assert!(bad_request(status, &body).starts_with("No fields selected"));
}

#[tokio::test]
async fn a_locked_connection_refuses_patches() {
    let api = Api::start().await;
    let path = format!("/connections/{TEMPLATE}");
    assert_eq!(api.patch(&path, &json!({"status": "locked"})).await.0, 200);
    let (status, body) = api.patch(&path, &json!({"name": "x"})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["type"], "error:connection/locked");
    assert_eq!(api.get(&path).await.1["name"], "shop-template → Warehouse");
}

#[tokio::test]
async fn patched_streams_follow_the_create_rules_and_a_refusal_changes_nothing() {
    let api = Api::start().await;
    let path = format!("/connections/{TEMPLATE}");
    for (streams, needle) in [
        (
            json!([{"name": "nope"}]),
            "No streams found with name [nope]",
        ),
        (
            json!([{"name": "orders"}, {"name": "orders"}]),
            "Duplicate stream found",
        ),
        (
            json!([{"name": "products", "syncMode": "incremental_append", "cursorField": ["id"]}]),
            "is already defined by source for stream: products",
        ),
        (
            json!([{"name": "customers", "syncMode": "incremental_deduped_history", "primaryKey": [["name"]]}]),
            "Primary key for stream: customers is already pre-defined",
        ),
        (
            json!([{"name": "orders", "syncMode": "full_refresh_update"}]),
            "Cannot set sync mode to full_refresh_update for stream orders",
        ),
        (
            json!([{"name": "orders", "selectedFields": [{"fieldPath": ["nope"]}]}]),
            "Invalid fields selected for stream orders",
        ),
    ] {
        let body = json!({"name": "changed", "configurations": {"streams": streams}});
        let (status, answer) = api.patch(&path, &body).await;
        let message = bad_request(status, &answer);
        assert!(message.contains(needle), "{streams}: {message}");
    }
    let (_, after) = api.get(&path).await;
    assert_eq!(
        after["name"], "shop-template → Warehouse",
        "nothing changed"
    );
    assert_eq!(
        after["configurations"]["streams"].as_array().unwrap().len(),
        3
    );
}

#[tokio::test]
async fn a_seeded_locked_connection_answers_airbyte_409_to_every_patch() {
    let api = Api::seeded(
        "workspaces: [{name: W}]\ndestinations: [{name: D, type: bigquery}]\n\
         catalogs: {c: [{name: s, fields: [id]}]}\nsources: [{name: S, type: pg, catalog: c}]\n\
         connections: [{source: S, destination: D, name: frozen, status: locked}]\n\
         tokens: [sandbox-token]\n",
    )
    .await;
    let (_, page) = api.get("/connections").await;
    let connection = &page["data"][0];
    assert_eq!(connection["status"], "locked");
    let id = connection["connectionId"].as_str().unwrap();
    let path = format!("/connections/{id}");
    for body in [
        json!({"name": "thawed"}),
        json!({"status": "active"}),
        json!({"configurations": {"streams": [{"name": "s"}]}}),
    ] {
        let (status, answer) = api.patch(&path, &body).await;
        assert_eq!(status, 409, "{answer}");
        assert_eq!(answer["status"], 409);
        assert_eq!(answer["type"], "error:connection/locked");
        assert_eq!(answer["title"], "Connection is locked");
        assert_eq!(
            answer["detail"],
            "The connection is locked and cannot be modified."
        );
        assert_eq!(answer["documentationUrl"], Value::Null);
        assert!(
            answer["data"]["message"].as_str().unwrap().contains(id),
            "{answer}"
        );
    }
    let (_, after) = api.get(&path).await;
    assert_eq!(
        (after["name"].as_str(), after["status"].as_str()),
        (Some("frozen"), Some("locked"))
    );
}

#[tokio::test]
async fn a_seed_holds_copies_in_states_the_api_cannot_create() {
    let api = Api::seeded(
        "workspaces: [{name: W}]\ndestinations: [{name: D, type: bigquery}]\n\
         catalogs: {c: [{name: s, fields: [id, updated_at]}]}\n\
         sources: [{name: A, type: pg, catalog: c}, {name: B, type: pg, catalog: c}]\n\
         tags: [{name: team, color: 00FF00}]\n\
         connections:\n\
         - {source: A, destination: D, name: ui-made, schedule: {scheduleType: basic, basicTiming: Every 6 HOURS}, tags: [team]}\n\
         - {source: B, destination: D, name: gone, status: deprecated, prefix: old_, schedule: {scheduleType: cron, cronExpression: 0 0 1 * * ?}}\n\
         tokens: [sandbox-token]\n",
    )
    .await;
    let (_, live) = api.get("/connections").await;
    let live = live["data"].as_array().unwrap();
    assert_eq!(live.len(), 1, "a deprecated copy is deleted: {live:?}");
    assert_eq!(
        live[0]["schedule"],
        json!({"scheduleType": "basic", "basicTiming": "Every 6 HOURS"})
    );
    assert_eq!(live[0]["tags"][0]["name"], "team");
    let (_, all) = api.get("/connections?includeDeleted=true").await;
    let gone = &all["data"][1];
    assert_eq!(gone["status"], "deprecated");
    assert_eq!(gone["prefix"], "old_");
    assert_eq!(gone["schedule"]["cronExpression"], "0 0 1 * * ? UTC");
    let id = live[0]["connectionId"].as_str().unwrap();
    let (status, patched) = api
        .patch(
            &format!("/connections/{id}"),
            &json!({"prefix": "behind_the_plans_back_"}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        patched["schedule"]["scheduleType"], "basic",
        "a patch without a schedule keeps the basic one"
    );
}

#[tokio::test]
async fn unknown_connections_are_404_everywhere() {
    let api = Api::start().await;
    let path = format!("/connections/{MISSING}");
    for (status, body) in [
        api.get(&path).await,
        api.patch(&path, &json!({"name": "x"})).await,
        api.delete(&path).await,
    ] {
        assert_eq!(status, 404);
        assert_eq!(
            body["data"],
            json!({"resourceType": "connection", "resourceId": MISSING})
        );
    }
    for path in [
        format!("/sources/{MISSING}"),
        format!("/destinations/{MISSING}"),
        format!("/workspaces/{MISSING}"),
    ] {
        assert_eq!(api.get(&path).await.0, 404, "{path}");
    }
}

#[tokio::test]
async fn delete_is_a_soft_delete() {
    let api = Api::start().await;
    let path = format!("/connections/{TEMPLATE}");
    let (status, body) = api.delete(&path).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    assert_eq!(api.get(&path).await.1["status"], "deprecated");
    let (_, live) = api.get("/connections").await;
    assert_eq!(live["data"], json!([]));
    let (_, all) = api.get("/connections?includeDeleted=true").await;
    assert_eq!(all["data"][0]["connectionId"], TEMPLATE);
    assert_eq!(api.stats().await["connections"], 0);
    assert_eq!(api.delete(&path).await.0, 204, "deleting twice is fine");
}

// ---------------------------------------------------------------------------------------------
// Tags

/// Asserts one of Airbyte's tag problems: its status and type, and no `data` (the server throws
/// them without arguments).
fn tag_problem(status: StatusCode, body: &Value, code: u16, kind: &str) {
    assert_eq!(status, code, "{body}");
    assert_eq!(body["status"], code);
    assert_eq!(body["type"], kind, "{body}");
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    assert_eq!(body.get("data"), None, "{body}");
}

fn tag_body(name: &str, color: &str) -> Value {
    json!({"name": name, "color": color, "workspaceId": WORKSPACE})
}

#[tokio::test]
async fn tags_are_created_read_and_refused_by_airbytes_rules() {
    let api = Api::start().await;
    let (status, tag) = api
        .post("/tags", &tag_body("replicate:shops", "4f46E5"))
        .await;
    assert_eq!(status, 200, "{tag}");
    assert_eq!(tag["name"], "replicate:shops");
    assert_eq!(tag["color"], "4f46E5");
    assert_eq!(tag["workspaceId"], WORKSPACE);
    let id = tag["tagId"].as_str().unwrap();
    assert_eq!(
        api.get(&format!("/tags/{id}")).await,
        (StatusCode::OK, tag.clone())
    );

    let (status, body) = api
        .post("/tags", &tag_body("replicate:shops", "000000"))
        .await;
    tag_problem(status, &body, 409, "error:tag-already-exists");
    assert_eq!(
        body["detail"],
        "A tag with this name already exists in this workspace."
    );
    let (status, body) = api
        .post("/tags", &tag_body(&"n".repeat(31), "000000"))
        .await;
    tag_problem(status, &body, 400, "error:tag-name-too-long");
    assert_eq!(body["detail"], "The tag name can be maximum 30 characters.");
    assert_eq!(
        api.post("/tags", &tag_body(&"n".repeat(30), "000000"))
            .await
            .0,
        200
    );
    for color in ["#4F46E5", "4F46E", "4F46E5F", "blue!!"] {
        let (status, body) = api.post("/tags", &tag_body("colourful", color)).await;
        tag_problem(status, &body, 400, "error:tag-invalid-hex-color");
    }
    let (status, body) = api
        .post(
            "/tags",
            &json!({"name": "x", "color": "000000", "workspaceId": MISSING}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["data"]["resourceType"], "workspace");
    let (status, body) = api
        .post("/tags", &json!({"name": "x", "workspaceId": WORKSPACE}))
        .await;
    assert!(bad_request(status, &body).contains("color"), "{body}");
    let (status, body) = api.get(&format!("/tags/{MISSING}")).await;
    assert_eq!(status, 404);
    assert_eq!(
        body["data"],
        json!({"resourceType": "tag", "resourceId": MISSING})
    );

    let (_, listed) = api.get(&format!("/tags?workspaceIds={WORKSPACE}")).await;
    let names: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["replicate:shops", "n".repeat(30).as_str()]);
}

#[tokio::test]
async fn a_workspace_holds_at_most_100_tags() {
    let api = Api::start().await;
    for n in 0..100 {
        let (status, body) = api
            .post("/tags", &tag_body(&format!("t{n}"), "000000"))
            .await;
        assert_eq!(status, 200, "{n}: {body}");
    }
    let (status, body) = api.post("/tags", &tag_body("t100", "000000")).await;
    tag_problem(status, &body, 400, "error:tag-limit-for-workspace-reached");
    let (_, listed) = api.get("/tags").await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn tags_on_connections_are_full_objects_of_the_same_workspace() {
    let api = Api::seeded(
        "workspaces: [{name: A}, {name: B}]\n\
         destinations: [{name: D, type: bigquery, workspace: A}]\n\
         catalogs: {c: [{name: s, fields: [id]}]}\n\
         sources: [{name: S, type: pg, catalog: c, workspace: A}, {name: T, type: pg, catalog: c, workspace: A}]\n\
         tags: [{name: mine, color: 111111, workspace: A}, {name: theirs, color: 222222, workspace: B}]\n\
         tokens: [sandbox-token]\n",
    )
    .await;
    let (_, tags) = api.get("/tags").await;
    let mine = tags["data"][0].clone();
    let theirs = tags["data"][1].clone();
    let (_, sources) = api.get("/sources").await;
    let (_, destinations) = api.get("/destinations").await;
    let body = |tags: Value| {
        json!({"sourceId": sources["data"][0]["sourceId"],
               "destinationId": destinations["data"][0]["destinationId"], "tags": tags})
    };
    let mut stale = mine.clone();
    stale["name"] = json!("renamed by the client");
    let created = api.create(&body(json!([stale, mine]))).await;
    assert_eq!(created["tags"], json!([mine]), "the stored tag wins, once");
    let mut unknown = mine.clone();
    unknown["tagId"] = json!(MISSING);
    let (status, answer) = api.post("/connections", &body(json!([unknown]))).await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(
        answer["data"],
        json!({"resourceType": "tag", "resourceId": MISSING})
    );
    let (status, answer) = api.post("/connections", &body(json!([theirs]))).await;
    assert!(bad_request(status, &answer).contains("belongs to workspace"));
    let path = format!("/connections/{}", created["connectionId"].as_str().unwrap());
    let (status, answer) = api.patch(&path, &json!({"tags": [theirs]})).await;
    assert!(bad_request(status, &answer).contains("belongs to workspace"));
    let (status, patched) = api.patch(&path, &json!({"tags": []})).await;
    assert_eq!((status, &patched["tags"]), (StatusCode::OK, &json!([])));
}

#[tokio::test]
async fn renamed_and_deleted_tags_follow_on_their_connections() {
    let api = Api::start().await;
    let (_, tag) = api.post("/tags", &tag_body("owner", "000000")).await;
    let (_, other) = api.post("/tags", &tag_body("other", "000000")).await;
    let id = tag["tagId"].as_str().unwrap().to_string();
    let path = format!("/connections/{TEMPLATE}");
    api.patch(&path, &json!({"tags": [tag]})).await;
    let (status, renamed) = api
        .patch(
            &format!("/tags/{id}"),
            &json!({"name": "owner:shops", "color": "ABCDEF"}),
        )
        .await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(api.get(&path).await.1["tags"], json!([renamed]));
    let (status, body) = api
        .patch(
            &format!("/tags/{id}"),
            &json!({"name": "other", "color": "ABCDEF"}),
        )
        .await;
    tag_problem(status, &body, 409, "error:tag-already-exists");
    let (status, body) = api
        .patch(
            &format!("/tags/{id}"),
            &json!({"name": "x".repeat(31), "color": "ABCDEF"}),
        )
        .await;
    tag_problem(status, &body, 400, "error:tag-name-too-long");
    let (status, body) = api
        .patch(&format!("/tags/{id}"), &json!({"name": "x"}))
        .await;
    assert!(bad_request(status, &body).contains("color"));
    let (status, body) = api
        .patch(
            &format!("/tags/{MISSING}"),
            &json!({"name": "x", "color": "000000"}),
        )
        .await;
    assert_eq!(
        (status, &body["data"]["resourceType"]),
        (StatusCode::NOT_FOUND, &json!("tag"))
    );

    assert_eq!(api.delete(&format!("/tags/{id}")).await.0, 204);
    assert_eq!(api.get(&format!("/tags/{id}")).await.0, 404);
    assert_eq!(api.delete(&format!("/tags/{id}")).await.0, 404);
    assert_eq!(
        api.get(&path).await.1["tags"],
        json!([]),
        "the tag left the connection"
    );
    let (_, listed) = api.get("/tags").await;
    assert_eq!(listed["data"], json!([other]));
    let (status, _) = api.post("/tags", &tag_body("owner:shops", "000000")).await;
    assert_eq!(status, 200, "a deleted tag's name is free again");
}

#[tokio::test]
async fn connections_filter_by_any_of_their_tags_and_links_drop_the_filter() {
    let api = Api::start().await;
    let (_, red) = api.post("/tags", &tag_body("red", "FF0000")).await;
    let (_, blue) = api.post("/tags", &tag_body("blue", "0000FF")).await;
    let (_, green) = api.post("/tags", &tag_body("green", "00FF00")).await;
    let tagged =
        |tags: Value| json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE, "tags": tags});
    let a = api.create(&tagged(json!([red]))).await;
    let b = api.create(&tagged(json!([blue, red]))).await;
    api.create(&tagged(json!([green]))).await;
    let c = api.create(&tagged(json!([blue]))).await;
    let ids = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["connectionId"].as_str().unwrap().to_string())
            .collect()
    };
    let id = |c: &Value| c["connectionId"].as_str().unwrap().to_string();
    let query = format!(
        "tagIds={},{}",
        red["tagId"].as_str().unwrap(),
        blue["tagId"].as_str().unwrap()
    );
    let (_, page) = api.get(&format!("/connections?{query}")).await;
    assert_eq!(ids(&page), [id(&a), id(&b), id(&c)]);
    let (_, second) = api
        .get(&format!("/connections?{query}&limit=2&offset=2"))
        .await;
    assert_eq!(ids(&second), [id(&c)], "offsets count filtered connections");
    let next = second["next"].as_str().unwrap();
    assert!(!next.contains("tagIds"), "{next}");
    assert!(
        next.ends_with("includeDeleted=false&limit=2&offset=4"),
        "{next}"
    );
    let (status, body) = api.get("/connections?tagIds=red").await;
    assert!(bad_request(status, &body).contains("[tagIds]"));
}

#[tokio::test]
async fn stats_count_the_tag_routes_by_template() {
    let api = Api::start().await;
    let (_, tag) = api.post("/tags", &tag_body("a", "000000")).await;
    let path = format!("/tags/{}", tag["tagId"].as_str().unwrap());
    api.get(&path).await;
    api.get(&path).await;
    api.patch(&path, &json!({"name": "b", "color": "000000"}))
        .await;
    api.delete(&path).await;
    api.get("/tags").await;
    let stats = api.stats().await;
    assert_eq!(
        stats["requests"],
        json!({"POST /tags": 1, "GET /tags/{tagId}": 2, "PATCH /tags/{tagId}": 1,
               "DELETE /tags/{tagId}": 1, "GET /tags": 1})
    );
}

// ---------------------------------------------------------------------------------------------
// Paging

#[tokio::test]
async fn pages_link_like_airbyte() {
    let api = Api::start().await;
    let mut ids = vec![TEMPLATE.to_string()];
    for _ in 0..4 {
        let c = api
            .create(&json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE}))
            .await;
        ids.push(c["connectionId"].as_str().unwrap().to_string());
    }
    let base = format!("http://{}/v1/connections", api.sandbox.addr());
    let (_, first) = api.get("/connections?limit=2").await;
    assert_eq!(first["previous"], "");
    assert_eq!(
        first["next"],
        format!("{base}?includeDeleted=false&limit=2&offset=2")
    );
    let mut seen = Vec::new();
    for offset in [0, 2, 4] {
        let (_, page) = api
            .get(&format!("/connections?limit=2&offset={offset}"))
            .await;
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["connectionId"].as_str().unwrap().to_string()),
        );
    }
    assert_eq!(seen, ids, "every connection once, in creation order");
    let (_, last) = api.get("/connections?limit=2&offset=4").await;
    assert_eq!(last["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        last["next"],
        format!("{base}?includeDeleted=false&limit=2&offset=6"),
        "even on the last page"
    );
    assert_eq!(
        last["previous"],
        format!("{base}?includeDeleted=false&limit=2&offset=2")
    );
    let (_, empty) = api.get("/connections?limit=2&offset=6").await;
    assert_eq!(empty["data"], json!([]));
    assert_eq!(empty["next"], "");
    let (_, default) = api.get("/connections").await;
    assert_eq!(
        default["data"].as_array().unwrap().len(),
        5,
        "default limit 20"
    );
}

#[tokio::test]
async fn paging_parameters_out_of_range_are_400() {
    let api = Api::start().await;
    for (query, needle) in [
        ("limit=0", "limit: must be greater than or equal to 1"),
        ("limit=101", "limit: must be less than or equal to 100"),
        ("offset=-1", "offset: must be greater than or equal to 0"),
        ("limit=ten", "[limit]"),
        ("includeDeleted=maybe", "[includeDeleted]"),
        ("workspaceIds=Sandbox", "[workspaceIds]"),
    ] {
        let (status, body) = api.get(&format!("/connections?{query}")).await;
        let message = bad_request(status, &body);
        assert!(message.contains(needle), "{query}: {message}");
    }
    assert_eq!(api.get("/sources?limit=100").await.0, 200);
    assert_eq!(api.get("/sources?limit=101").await.0, 400);
}

#[tokio::test]
async fn workspace_filters_take_lists_and_repeats() {
    let api = Api::seeded(
        "workspaces: [{name: A}, {name: B}, {name: C}]\n\
         destinations: [{name: DA, type: bigquery, workspace: A}, {name: DB, type: bigquery, workspace: B}]\n\
         catalogs: {c: [{name: s, fields: [id]}]}\n\
         sources: [{name: SA, type: pg, catalog: c, workspace: A}, {name: SB, type: pg, catalog: c, workspace: B}]\n\
         connections: [{source: SA, destination: DA}, {source: SB, destination: DB}, {source: SA, destination: DA, name: second}]\n\
         tokens: [sandbox-token]\n",
    )
    .await;
    let (_, workspaces) = api.get("/workspaces").await;
    let ws: Vec<String> = workspaces["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["workspaceId"].as_str().unwrap().to_string())
        .collect();
    let names = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, a) = api
        .get(&format!("/connections?workspaceIds={}", ws[0]))
        .await;
    assert_eq!(names(&a), ["SA → DA", "second"]);
    let (_, both) = api
        .get(&format!("/connections?workspaceIds={},{}", ws[1], ws[0]))
        .await;
    assert_eq!(names(&both), ["SA → DA", "SB → DB", "second"]);
    assert!(
        both["next"]
            .as_str()
            .unwrap()
            .contains(&format!("workspaceIds={},{}", ws[1], ws[0]))
    );
    let (_, repeated) = api
        .get(&format!(
            "/connections?workspaceIds={}&workspaceIds={}&limit=2&offset=1",
            ws[0], ws[1]
        ))
        .await;
    assert_eq!(names(&repeated), ["SB → DB", "second"]);
    let (_, empty) = api
        .get(&format!("/connections?workspaceIds={}", ws[2]))
        .await;
    assert_eq!(names(&empty), Vec::<String>::new());
    let (_, b_sources) = api.get(&format!("/sources?workspaceIds={}", ws[1])).await;
    assert_eq!(b_sources["data"][0]["name"], "SB");
    let (status, body) = api
        .get(&format!("/connections?workspaceIds={MISSING}"))
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["data"]["resourceType"], "workspace");
}

#[tokio::test]
async fn extra_sources_copy_the_template_source() {
    let args = SandboxArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        seed: None,
        sources: 250,
        latency: Duration::ZERO,
        fail_rate: 0.0,
        lost_response_rate: 0.0,
        rate_limit: None,
        token_ttl: Duration::from_secs(900),
        create_delay: Duration::ZERO,
        churn_rate: 0.0,
        job_duration: Duration::from_secs(2),
        job_fail_rate: 0.0,
        fault_seed: None,
        refuse_conflicting_streams: false,
    };
    let api = Api::from_config(SandboxConfig::from_args(&args).unwrap()).await;
    let mut names = Vec::new();
    for offset in (0..).step_by(100) {
        let (_, page) = api
            .get(&format!("/sources?limit=100&offset={offset}"))
            .await;
        let data = page["data"].as_array().unwrap();
        if data.is_empty() {
            break;
        }
        names.extend(data.iter().map(|s| s["name"].as_str().unwrap().to_string()));
    }
    assert_eq!(names.len(), 257);
    assert_eq!(names[7], "bulk-000001");
    assert_eq!(names[256], "bulk-000250");
    let (_, page) = api.get("/sources?limit=1&offset=7").await;
    let bulk = &page["data"][0];
    assert_eq!(bulk["sourceType"], "postgres");
    assert_eq!(bulk["workspaceId"], WORKSPACE);
    let (_, streams) = api
        .get(&format!(
            "/streams?sourceId={}",
            bulk["sourceId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        streams.as_array().unwrap().len(),
        3,
        "the template's catalog"
    );
    let c = api
        .create(&json!({"sourceId": bulk["sourceId"], "destinationId": WAREHOUSE}))
        .await;
    assert_eq!(c["name"], "bulk-000001 <> Warehouse");
}

// ---------------------------------------------------------------------------------------------
// Seeds

fn seed_error(yaml: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seed.yaml");
    std::fs::write(&path, yaml).unwrap();
    let args = SandboxArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        seed: Some(path.clone()),
        sources: 0,
        latency: Duration::ZERO,
        fail_rate: 0.0,
        lost_response_rate: 0.0,
        rate_limit: None,
        token_ttl: Duration::from_secs(900),
        create_delay: Duration::ZERO,
        churn_rate: 0.0,
        job_duration: Duration::from_secs(2),
        job_fail_rate: 0.0,
        fault_seed: None,
        refuse_conflicting_streams: false,
    };
    SandboxConfig::from_args(&args)
        .unwrap_err()
        .to_string()
        .replace(&path.display().to_string(), "seed.yaml")
}

#[test]
fn seed_syntax_and_type_errors_name_line_and_column() {
    assert_eq!(
        seed_error("workspaces:\n  - name: W\n    nmae: X\n"),
        "invalid seed: seed.yaml:3:5: workspaces[0]: unknown key `nmae` (did you mean `name`?)"
    );
    assert_eq!(
        seed_error(
            "workspaces: [{name: W}]\ndestinations: [{name: D, type: bigquery, syncModes: [sideways]}]\n"
        ),
        "invalid seed: seed.yaml:2:54: destinations[0].syncModes[0]: unknown variant `sideways`, expected one of `overwrite`, `append`, `append_dedup`, `overwrite_dedup`, `update`, `soft_delete`"
    );
}

#[test]
fn seed_reference_errors_name_the_yaml_path() {
    let base = "workspaces: [{name: W}]\ndestinations: [{name: D, type: bigquery}]\n\
                catalogs: {c: [{name: s, fields: [id, updated_at]}]}\n";
    assert_eq!(
        seed_error(&format!(
            "{base}sources: [{{name: S, type: pg, catalog: nope}}]\n"
        )),
        "invalid seed: seed.yaml: sources[0].catalog: no catalog named `nope`"
    );
    assert_eq!(
        seed_error(&format!(
            "{base}sources: [{{name: S, type: pg, catalog: c}}]\nconnections: [{{source: S, destination: D, streams: [{{name: s, syncMode: incremental_append}}]}}]\n"
        )),
        "invalid seed: seed.yaml: connections[0]: No default cursor field for stream: s. Please include a cursor field configuration for this stream."
    );
    assert_eq!(
        seed_error(&format!(
            "{base}sources: [{{name: S, type: pg, catalog: c}}, {{name: S, type: pg, catalog: c}}]\n"
        )),
        "invalid seed: seed.yaml: sources[1].name: another source is already named `S`; names are how the seed refers to objects"
    );
}

#[test]
fn seed_schedules_may_be_basic_but_stay_consistent() {
    let base = "workspaces: [{name: W}]\ndestinations: [{name: D, type: bigquery}]\n\
                catalogs: {c: [{name: s, fields: [id]}]}\nsources: [{name: S, type: pg, catalog: c}]\n";
    assert_eq!(
        seed_error(&format!(
            "{base}connections: [{{source: S, destination: D, schedule: {{scheduleType: basic, cronExpression: 0 0 1 * * ?}}}}]\n"
        )),
        "invalid seed: seed.yaml: connections[0].schedule.cronExpression: a basic schedule has a basicTiming, not a cron expression"
    );
    assert_eq!(
        seed_error(&format!(
            "{base}connections: [{{source: S, destination: D, schedule: {{scheduleType: manual, basicTiming: Every 1 HOURS}}}}]\n"
        )),
        "invalid seed: seed.yaml: connections[0].schedule.basicTiming: only a basic schedule has a basicTiming"
    );
}

#[tokio::test]
async fn a_seed_built_in_code_serves_its_objects_with_derived_ids() {
    let seed = Seed::from_yaml(
        Path::new("inline"),
        b"workspaces: [{name: W}]\ndestinations: [{name: D, type: snowflake}]\n\
          catalogs: {c: [{name: s, fields: [id]}]}\nsources: [{name: S, type: mysql, catalog: c}]\n\
          connections: [{source: S, destination: D}]\napplications: [{clientId: me, clientSecret: pw}]\n",
    )
    .unwrap();
    let first = Api::from_config(SandboxConfig {
        seed: seed.clone(),
        ..SandboxConfig::default_on_free_port()
    })
    .await;
    let mut first = first;
    first.token = None;
    let (_, token) = first
        .post(
            "/applications/token",
            &json!({"client_id": "me", "client_secret": "pw", "grant-type": "client_credentials"}),
        )
        .await;
    first.token = Some(token["access_token"].as_str().unwrap().to_string());
    let (_, a) = first.get("/connections").await;
    assert_eq!(a["data"][0]["name"], "S → D");
    let mut second = Api::from_config(SandboxConfig {
        seed,
        ..SandboxConfig::default_on_free_port()
    })
    .await;
    second.token = first.token.clone();
    assert_eq!(
        second.get("/connections").await.0,
        401,
        "tokens belong to one sandbox"
    );
    second.token = None;
    let (_, token) = second
        .post(
            "/applications/token",
            &json!({"client_id": "me", "client_secret": "pw"}),
        )
        .await;
    second.token = Some(token["access_token"].as_str().unwrap().to_string());
    let (_, b) = second.get("/connections").await;
    assert_eq!(
        a["data"][0]["connectionId"], b["data"][0]["connectionId"],
        "same seed, same ids"
    );
}

// ---------------------------------------------------------------------------------------------
// Stats, concurrency, shutdown

#[tokio::test]
async fn stats_are_exact_under_concurrent_load() {
    let api = Api::from_config(SandboxConfig {
        latency: Duration::from_millis(20),
        ..SandboxConfig::default_on_free_port()
    })
    .await;
    let path = format!("/connections/{TEMPLATE}");
    let body = json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE});
    let gets = (0..250).map(|_| api.get(&path));
    let creates = (0..50).map(|_| api.post("/connections", &body));
    let (gets, creates) = tokio::join!(
        futures::future::join_all(gets),
        futures::future::join_all(creates)
    );
    assert!(gets.iter().chain(&creates).all(|(s, _)| *s == 200));
    let missing = api.get(&format!("/sources/{MISSING}")).await;
    assert_eq!(missing.0, 404);
    api.stats().await;
    let stats = api.stats().await;
    assert_eq!(stats["requests"]["GET /connections/{connectionId}"], 250);
    assert_eq!(stats["requests"]["POST /connections"], 50);
    assert_eq!(stats["requests"]["GET /sources/{sourceId}"], 1);
    assert_eq!(
        stats["requests"].as_object().unwrap().len(),
        3,
        "the stats route is not counted: {stats}"
    );
    assert_eq!(stats["responses"], json!({"200": 300, "404": 1}));
    assert_eq!(stats["in_flight"], 0);
    assert!(stats["max_in_flight"].as_u64().unwrap() > 1, "{stats}");
    assert_eq!(stats["connections"], 51);
    let (_, all) = api.get("/connections?limit=100").await;
    let ids: std::collections::HashSet<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["connectionId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 51, "every create made exactly one connection");
}

#[tokio::test]
async fn stats_name_routes_without_their_base_and_count_unknown_ones() {
    let mut api = Api::start().await;
    let url = format!("http://{}/api/public/v1/workspaces", api.sandbox.addr());
    api.send(api.http.get(url)).await;
    api.get("/workspaces").await;
    api.get("/nowhere").await;
    api.token = None;
    api.get("/workspaces").await;
    let stats = api.stats().await;
    assert_eq!(stats["requests"]["GET /workspaces"], 3);
    assert_eq!(stats["requests"]["GET (unmatched)"], 1);
    assert_eq!(stats["responses"], json!({"200": 2, "401": 1, "404": 1}));
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let api = Api::start().await;
    let url = api.url("/health");
    assert_eq!(api.http.get(&url).send().await.unwrap().status(), 200);
    api.sandbox.shutdown().await;
    assert!(reqwest::Client::new().get(&url).send().await.is_err());
}

#[tokio::test]
async fn unknown_routes_and_methods_get_airbyte_shaped_errors() {
    let api = Api::start().await;
    let (status, body) = api.get("/regions").await;
    assert_eq!(status, 404);
    assert_eq!(body["title"], "resource-not-found");
    let (status, body) = api
        .send(
            api.http
                .put(api.url(&format!("/connections/{TEMPLATE}")))
                .json(&json!({})),
        )
        .await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(body["title"], "method-not-allowed");
}

// ---- Jobs (SPEC §10) ----

/// The default seed plus these past jobs of the template connection.
fn with_jobs(jobs: Vec<SeedJob>) -> SandboxConfig {
    let mut config = SandboxConfig::default_on_free_port();
    config.seed.jobs = jobs;
    config
}

fn seed_job(id: i64, status: JobStatus, created_at: i64, updated_at: i64) -> SeedJob {
    SeedJob {
        connection: "shop-template → Warehouse".into(),
        id: Some(id),
        job_type: None,
        status: Some(status),
        created_at: Some(created_at),
        updated_at: Some(updated_at),
        rows_synced: None,
        bytes_synced: None,
    }
}

/// Asserts one of Airbyte's problem bodies and returns its `data.message`.
fn problem(status: StatusCode, body: &Value, code: u16, title: &str) -> String {
    assert_eq!(status, code, "{body}");
    assert_eq!(body["status"], code);
    assert_eq!(body["title"], title, "{body}");
    assert!(body["type"].as_str().unwrap().ends_with(title), "{body}");
    body["data"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn a_sync_goes_pending_then_running_then_succeeded_with_its_numbers() {
    let api = Api::from_config(SandboxConfig {
        job_duration: Duration::from_millis(300),
        ..SandboxConfig::default_on_free_port()
    })
    .await;
    let (status, started) = api
        .post(
            "/jobs",
            &json!({"connectionId": TEMPLATE, "jobType": "sync"}),
        )
        .await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["status"], "pending");
    assert_eq!(started["jobType"], "sync");
    assert_eq!(started["connectionId"], TEMPLATE);
    assert!(
        started.get("duration").is_none(),
        "no duration while pending"
    );
    assert!(started.get("lastUpdatedAt").is_none());
    let start_time = started["startTime"].as_str().unwrap();
    assert!(
        start_time.ends_with('Z') && start_time.contains('T'),
        "{start_time}"
    );
    let id = started["jobId"].as_i64().unwrap();
    let mut seen = vec![];
    let mut job = Value::Null;
    for _ in 0..1000 {
        let (status, read) = api.get(&format!("/jobs/{id}")).await;
        assert_eq!(status, 200);
        let state = read["status"].as_str().unwrap().to_string();
        if seen.last() != Some(&state) {
            seen.push(state.clone());
        }
        job = read;
        if state == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        seen.last().map(String::as_str),
        Some("succeeded"),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .all(|s| ["pending", "running", "succeeded"].contains(&s.as_str())),
        "{seen:?}"
    );
    assert_eq!(job["startTime"], started["startTime"]);
    assert!(job["duration"].as_str().unwrap().starts_with("PT"), "{job}");
    assert!(job["lastUpdatedAt"].is_string(), "{job}");
    assert!(job["rowsSynced"].as_i64().unwrap() > 0);
    assert!(job["bytesSynced"].as_i64().unwrap() > job["rowsSynced"].as_i64().unwrap());
    let (_, again) = api.get(&format!("/jobs/{id}")).await;
    assert_eq!(again, job, "an ended job reads the same every time");
    let (status, next) = api
        .post(
            "/jobs",
            &json!({"connectionId": TEMPLATE, "jobType": "sync"}),
        )
        .await;
    assert_eq!(status, 200, "a finished sync frees the connection: {next}");
    assert_eq!(next["jobId"], id + 1);
}

#[tokio::test]
async fn job_starts_are_refused_as_airbyte_refuses_them() {
    let api = Api::from_config(with_jobs(vec![seed_job(
        7,
        JobStatus::Running,
        1_767_225_600,
        1_767_225_660,
    )]))
    .await;
    let sync = |id: &str| json!({"connectionId": id, "jobType": "sync"});
    let (status, body) = api.post("/jobs", &sync(TEMPLATE)).await;
    let message = problem(status, &body, 409, "try-again-later");
    assert_eq!(
        message,
        format!("A sync is already running for: {TEMPLATE}")
    );
    assert_eq!(body["detail"], "Please try again later.");

    let (status, body) = api.post("/jobs", &sync(MISSING)).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["data"]["resourceType"], "connection");

    let inactive = api
        .create(&json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE, "status": "inactive"}))
        .await;
    let inactive = inactive["connectionId"].as_str().unwrap();
    let (status, body) = api.post("/jobs", &sync(inactive)).await;
    let message = problem(status, &body, 409, "state-conflict");
    assert_eq!(message, "Could not fulfill request");
    let deleted = api
        .create(&json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE}))
        .await;
    let deleted = deleted["connectionId"].as_str().unwrap();
    api.delete(&format!("/connections/{deleted}")).await;
    let (status, body) = api.post("/jobs", &sync(deleted)).await;
    problem(status, &body, 409, "state-conflict");

    let (status, body) = api
        .post(
            "/jobs",
            &json!({"connectionId": TEMPLATE, "jobType": "refresh"}),
        )
        .await;
    let message = problem(status, &body, 422, "unprocessable-entity");
    assert_eq!(message, "Refreshes are not supported in the public API");
    let (status, body) = api.post("/jobs", &json!({"connectionId": TEMPLATE})).await;
    assert!(bad_request(status, &body).contains("jobType"), "{body}");
    let (status, body) = api
        .post(
            "/jobs",
            &json!({"connectionId": TEMPLATE, "jobType": "backfill"}),
        )
        .await;
    bad_request(status, &body);

    // A reset cancels the running sync and starts at once, even on an inactive connection.
    let (status, reset) = api
        .post(
            "/jobs",
            &json!({"connectionId": TEMPLATE, "jobType": "reset"}),
        )
        .await;
    assert_eq!(status, 200, "{reset}");
    assert_eq!(reset["jobType"], "reset");
    assert_eq!(reset["jobId"], 8, "ids continue after the seeded ones");
    let (_, old) = api.get("/jobs/7").await;
    assert_eq!(old["status"], "cancelled");
    let (status, clear) = api
        .post(
            "/jobs",
            &json!({"connectionId": inactive, "jobType": "clear"}),
        )
        .await;
    assert_eq!(status, 200, "{clear}");
    assert_eq!(clear["jobType"], "clear");
}

#[tokio::test]
async fn a_running_job_is_cancelled_once() {
    let api = Api::from_config(with_jobs(vec![seed_job(
        3,
        JobStatus::Running,
        1_767_225_600,
        1_767_225_601,
    )]))
    .await;
    let (status, running) = api.get("/jobs/3").await;
    assert_eq!(status, 200);
    assert_eq!(running["status"], "running");
    assert_eq!(running["startTime"], "2026-01-01T00:00Z");
    assert_eq!(running["duration"], "PT1S");
    assert!(running.get("lastUpdatedAt").is_none(), "{running}");
    let (status, cancelled) = api.delete("/jobs/3").await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["lastUpdatedAt"].is_string());
    let (status, body) = api.delete("/jobs/3").await;
    let message = problem(status, &body, 409, "state-conflict");
    assert_eq!(message, "Job is not currently running");
    let (status, body) = api.delete("/jobs/99").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["data"]["resourceType"], "job");
    let (status, body) = api.get("/jobs/x1").await;
    bad_request(status, &body);
    let (status, _) = api
        .post(
            "/jobs",
            &json!({"connectionId": TEMPLATE, "jobType": "sync"}),
        )
        .await;
    assert_eq!(status, 200, "a cancelled job frees the connection");
}

#[tokio::test]
async fn jobs_list_filters_orders_and_pages_like_airbyte() {
    let day = 86_400;
    let t0 = 1_767_225_600;
    let mut jobs = vec![
        seed_job(1, JobStatus::Succeeded, t0, t0 + 95),
        seed_job(2, JobStatus::Failed, t0 + day, t0 + day + 30),
        seed_job(3, JobStatus::Succeeded, t0 + 2 * day, t0 + 2 * day + 29_172),
    ];
    jobs.push(SeedJob {
        job_type: Some(JobType::Reset),
        ..seed_job(4, JobStatus::Succeeded, t0 + 3 * day, t0 + 3 * day)
    });
    let api = Api::from_config(with_jobs(jobs)).await;
    let ids = |page: &Value| -> Vec<i64> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["jobId"].as_i64().unwrap())
            .collect()
    };
    let (status, all) = api.get("/jobs").await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(ids(&all), [1, 2, 3, 4], "createdAt|ASC by default");
    let third = &all["data"][2];
    assert_eq!(third["duration"], "PT8H6M12S");
    assert_eq!(third["startTime"], "2026-01-03T00:00Z");
    assert_eq!(third["lastUpdatedAt"], "2026-01-03T08:06:12Z");
    assert!(
        third["rowsSynced"].as_i64().unwrap() > 0,
        "made up for a success"
    );
    assert!(
        all["data"][1].get("rowsSynced").is_none(),
        "none for a seeded failure"
    );

    let path = format!("/jobs?connectionId={TEMPLATE}&orderBy=createdAt|DESC");
    let (_, newest) = api.get(&path).await;
    assert_eq!(ids(&newest), [4, 3, 2, 1]);
    let (_, by_updated) = api.get("/jobs?orderBy=updatedAt|DESC").await;
    assert_eq!(ids(&by_updated), [4, 3, 2, 1]);
    let (_, failed) = api.get("/jobs?status=failed").await;
    assert_eq!(ids(&failed), [2]);
    let (_, resets) = api.get("/jobs?jobType=reset").await;
    assert_eq!(ids(&resets), [4]);
    let (_, in_workspace) = api.get(&format!("/jobs?workspaceIds={WORKSPACE}")).await;
    assert_eq!(ids(&in_workspace), [1, 2, 3, 4]);

    let (_, page) = api
        .get(&format!(
            "/jobs?connectionId={TEMPLATE}&jobType=sync&limit=2&offset=2"
        ))
        .await;
    assert_eq!(ids(&page), [3]);
    let base = api.sandbox.url();
    assert_eq!(
        page["next"],
        format!("{base}/jobs?jobType=sync&connectionId={TEMPLATE}&limit=2&offset=4")
    );
    assert_eq!(
        page["previous"],
        format!("{base}/jobs?jobType=sync&connectionId={TEMPLATE}&limit=2&offset=0")
    );
    let (_, empty) = api.get("/jobs?offset=10").await;
    assert_eq!(empty["data"], json!([]));
    assert_eq!(empty["next"], "");

    let (status, body) = api.get("/jobs?orderBy=createdAt").await;
    assert_eq!(
        bad_request(status, &body),
        "Invalid order by clause provided: createdAt"
    );
    let (status, body) = api.get("/jobs?orderBy=name|ASC").await;
    bad_request(status, &body);
    let (status, body) = api.get("/jobs?status=done").await;
    bad_request(status, &body);
    let (status, body) = api.get("/jobs?limit=101").await;
    bad_request(status, &body);
    let (status, body) = api.get(&format!("/jobs?connectionId={MISSING}")).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = api.get(&format!("/jobs?workspaceIds={MISSING}")).await;
    assert_eq!(status, 404);
}

#[test]
fn seeded_jobs_name_their_connection_and_keep_their_ids_apart() {
    let base = "workspaces: [{name: W}]\ndestinations: [{name: D, type: bigquery}]\n\
                catalogs: {c: [{name: s, fields: [id]}]}\nsources: [{name: S, type: pg, catalog: c}]\n\
                connections: [{name: C, source: S, destination: D}]\n";
    let ok = format!("{base}jobs: [{{connection: C}}, {{connection: C, status: running}}]\n");
    let seed = Seed::from_yaml(Path::new("seed.yaml"), ok.as_bytes()).unwrap();
    assert_eq!(seed.jobs.len(), 2);
    assert_eq!(
        seed_error(&format!("{base}jobs: [{{connection: Nope}}]\n")),
        "invalid seed: seed.yaml: jobs[0].connection: no connection named `Nope`"
    );
    assert_eq!(
        seed_error(&format!(
            "{base}jobs: [{{connection: C, id: 1}}, {{connection: C, id: 1}}]\n"
        )),
        "invalid seed: seed.yaml: jobs[1].id: job id 1 is used twice"
    );
    assert!(
        seed_error(&format!("{base}jobs: [{{connection: C, status: done}}]\n")).contains("status")
    );
    assert!(
        seed_error(&format!(
            "{base}jobs: [{{connection: C, id: 9223372036854775807}}]\n"
        ))
        .contains("a job id is a number from 1 to")
    );
}

#[tokio::test]
async fn stats_show_the_most_requests_of_each_route_in_flight_at_once() {
    let api = Api::from_config(SandboxConfig {
        latency: Duration::from_millis(300),
        job_duration: Duration::ZERO,
        ..SandboxConfig::default_on_free_port()
    })
    .await;
    let mut copies = vec![];
    for _ in 0..3 {
        let created = api
            .create(&json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE}))
            .await;
        copies.push(created["connectionId"].as_str().unwrap().to_string());
    }
    let bodies: Vec<Value> = copies
        .iter()
        .map(|id| json!({"connectionId": id, "jobType": "sync"}))
        .collect();
    let requests = bodies.iter().map(|body| api.post("/jobs", body));
    let started = futures::future::join_all(requests).await;
    assert!(started.iter().all(|(s, _)| *s == 200), "{started:?}");
    for (_, job) in &started {
        api.get(&format!("/jobs/{}", job["jobId"])).await;
    }
    let stats = api.stats().await;
    let by_route = &stats["max_in_flight_by_route"];
    assert_eq!(by_route["POST /jobs"], 3, "{stats}");
    assert_eq!(
        by_route["POST /connections"], 1,
        "sequential creates never overlap"
    );
    assert_eq!(by_route["GET /jobs/{jobId}"], 1);
    assert_eq!(stats["requests"]["POST /jobs"], 3);
    assert_eq!(stats["requests"]["GET /jobs/{jobId}"], 3);
}

// ---- --refuse-conflicting-streams ----

#[tokio::test]
async fn conflicting_destination_streams_are_refused_only_with_the_knob() {
    let api = Api::from_config(SandboxConfig {
        refuse_conflicting_streams: true,
        ..SandboxConfig::default_on_free_port()
    })
    .await;
    let copy =
        |source: &str| json!({"sourceId": source, "destinationId": WAREHOUSE, "prefix": "eu_"});
    let first = api.create(&copy(SHOP_EU)).await;
    let first_id = first["connectionId"].as_str().unwrap();
    // The same tables again: Airbyte's public create answers any handler problem with a bare 500.
    let (status, body) = api.post("/connections", &copy(SHOP_US)).await;
    unexpected_problem(status, &body);
    assert!(body.get("data").is_none(), "{body}");
    assert_eq!(api.stats().await["connections"], 2, "nothing was created");
    let other_prefix = json!({"sourceId": SHOP_US, "destinationId": WAREHOUSE, "prefix": "us_"});
    let (status, _) = api.post("/connections", &other_prefix).await;
    assert_eq!(status, 200, "another prefix, other tables");

    // A patch shows Airbyte's problem, naming the streams and who holds them.
    let template = format!("/connections/{TEMPLATE}");
    let (status, body) = api.patch(&template, &json!({"prefix": "eu_"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["type"],
        "error:connection-conflicting-destination-stream"
    );
    let streams = body["data"]["streams"].as_array().unwrap();
    let names: Vec<&str> = streams
        .iter()
        .map(|s| s["streamName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["orders", "customers", "products"]);
    assert_eq!(streams[0]["streamNamespace"], "public");
    assert_eq!(streams[0]["connectionIds"], json!([first_id]));
    let (_, unchanged) = api.get(&template).await;
    assert_eq!(
        unchanged["prefix"], "shop_template_",
        "a refused patch changes nothing"
    );
    let (status, _) = api.patch(&template, &json!({"name": "renamed"})).await;
    assert_eq!(
        status, 200,
        "a patch that does not touch the tables is not checked"
    );
    let (status, body) = api
        .patch(
            &template,
            &json!({"prefix": "eu_", "namespaceDefinition": "custom_format", "namespaceFormat": "eu"}),
        )
        .await;
    assert_eq!(
        status, 200,
        "another namespace setting, other tables: {body}"
    );

    // Only active connections hold their tables.
    api.patch(
        &format!("/connections/{first_id}"),
        &json!({"status": "inactive"}),
    )
    .await;
    let (status, _) = api.post("/connections", &copy(SHOP_US)).await;
    assert_eq!(status, 200, "the holder is inactive");

    let without = Api::start().await;
    without.create(&copy(SHOP_EU)).await;
    let (status, _) = without.post("/connections", &copy(SHOP_US)).await;
    assert_eq!(
        status, 200,
        "without the knob, Airbyte's default, nothing is checked"
    );
}
