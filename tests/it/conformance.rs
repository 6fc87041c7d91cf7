//! The sandbox against the official `OpenAPI` spec: every route it serves exists in the spec, its
//! responses match the spec's schemas, and the request bodies these tests send match the spec's
//! request schemas. Error bodies, for which the spec defines no schema, are checked against
//! Airbyte's problem shape (`api-problems.yaml` `BaseProblemFields`).
//!
//! The spec's path comes from `REPLICATE_OPENAPI_SPEC` (CI points it at
//! `../shared/airbyte-api/public-api.patched.openapi.yaml`); without it the tests say on stderr
//! that they skipped, and fail when `CI` is set.

use crate::support::Api;
use crate::support::seed::{MISSING, SHOP_EU, TEMPLATE, TOKEN, WAREHOUSE, WORKSPACE};
use replicate::sandbox::SandboxConfig;
use replicate::sandbox::seed::SeedTag;
use serde_json::{Value, json};
use std::io::Write as _;

/// A tag added to the default seed, so the tag routes have a known id to work on.
const TAG: &str = "7a900000-0000-4000-8000-000000000001";

/// Whether this is a CI run: `CI` set to anything but empty, `false` or `0`.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "false" | "0"))
}

/// A small `OpenAPI` 3.0/3.1 schema validator: `type` (also as a list), `nullable`, `required`,
/// `properties`, `additionalProperties`, `items`, `enum`, `$ref` to `#/components/schemas`,
/// `oneOf` (honouring a `discriminator` mapping), `anyOf`, `allOf`, `minimum`/`maximum`, and
/// `format: uuid`/`UUID`.
struct Spec {
    root: Value,
}

/// `oneOf`s whose branches overlap because the spec leaves `additionalProperties` open and gives
/// no discriminator: a field-filtering configuration (`{targetField}`) also matches every other
/// mapper configuration that has a `targetField`. For these, "at least one branch" is checked.
const AMBIGUOUS_ONE_OF: &[&str] = &["MapperConfiguration"];

impl Spec {
    /// The spec at `REPLICATE_OPENAPI_SPEC`. Without it, the test `test_name` is skipped, said on stderr past
    /// the test harness's capture so that a passing run shows it; under CI (`CI` set, as CI
    /// services set it) the test fails instead, since a conformance test that checks nothing
    /// must not pass there.
    fn load(test_name: &str) -> Option<Spec> {
        let Some(path) = std::env::var_os("REPLICATE_OPENAPI_SPEC") else {
            assert!(
                !in_ci(),
                "REPLICATE_OPENAPI_SPEC is not set, but CI is: {test_name} would check nothing. Point \
                 it at the official spec (.ci/run sets it to \
                 ../shared/airbyte-api/public-api.patched.openapi.yaml)"
            );
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED conformance::{test_name}: REPLICATE_OPENAPI_SPEC is not set, so nothing was \
                 checked against the official spec"
            );
            return None;
        };
        let path = std::path::PathBuf::from(path);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("REPLICATE_OPENAPI_SPEC={}: {e}", path.display()));
        let mut root: Value = serde_yaml::from_str(&text).unwrap();
        // Spec defect: `ApplicationTokenRequestWithGrant.required` lists `grant_type`, but the
        // property (and the wire name the server reads) is `grant-type`. Taken literally, no body
        // could ever be valid; the server model treats the field as optional, so drop the
        // phantom name rather than require a field that does not exist.
        let required =
            &mut root["components"]["schemas"]["ApplicationTokenRequestWithGrant"]["required"];
        let names = required
            .as_array()
            .expect("the spec still has this list")
            .clone();
        assert!(
            names.contains(&json!("grant_type")),
            "the spec defect was fixed upstream: remove this workaround"
        );
        *required = Value::Array(names.into_iter().filter(|n| n != "grant_type").collect());
        Some(Spec { root })
    }

    fn schema(&self, name: &str) -> &Value {
        let schema = &self.root["components"]["schemas"][name];
        assert!(!schema.is_null(), "no schema {name} in the spec");
        schema
    }

    /// The operation object for `method` on the spec path `path` (e.g. `/connections/{connectionId}`).
    fn operation(&self, method: &str, path: &str) -> &Value {
        let op = &self.root["paths"][path][method.to_ascii_lowercase()];
        assert!(op.is_object(), "the spec has no {method} {path}");
        op
    }

    fn response_schema(&self, method: &str, path: &str, status: u16) -> Option<&Value> {
        let response = &self.operation(method, path)["responses"][status.to_string()];
        let schema = &response["content"]["application/json"]["schema"];
        (!schema.is_null()).then_some(schema)
    }

    fn request_schema(&self, method: &str, path: &str, content_type: &str) -> &Value {
        let schema =
            &self.operation(method, path)["requestBody"]["content"][content_type]["schema"];
        assert!(
            !schema.is_null(),
            "{method} {path} takes no {content_type} body"
        );
        schema
    }

    /// Every violation of `schema` by `value`, as `path: problem`.
    fn validate(&self, value: &Value, schema: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.check(value, schema, "$", None, &mut errors);
        errors
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> (&'a Value, Option<&'a str>) {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let name = reference
                    .strip_prefix("#/components/schemas/")
                    .unwrap_or_else(|| panic!("unsupported $ref {reference}"));
                let (target, _) = self.resolve(self.schema(name));
                (target, Some(name))
            }
            None => (schema, None),
        }
    }

    #[allow(clippy::too_many_lines)] // one keyword after another reads best in one place
    fn check(
        &self,
        value: &Value,
        schema: &Value,
        at: &str,
        name: Option<&str>,
        errors: &mut Vec<String>,
    ) {
        let (schema, ref_name) = self.resolve(schema);
        let name = ref_name.or(name);
        if value.is_null() && schema["nullable"] == true {
            return;
        }
        if let Some(types) = schema.get("type") {
            let allowed: Vec<&str> = match types {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            if !allowed.iter().any(|t| has_type(value, t)) {
                errors.push(format!("{at}: expected {allowed:?}, got {value}"));
                return;
            }
        }
        if let Some(options) = schema.get("enum").and_then(Value::as_array) {
            if !options.contains(value) {
                errors.push(format!("{at}: {value} is not one of {options:?}"));
            }
        }
        if let (Some(format), Some(text)) =
            (schema.get("format").and_then(Value::as_str), value.as_str())
        {
            if format.eq_ignore_ascii_case("uuid") && uuid::Uuid::parse_str(text).is_err() {
                errors.push(format!("{at}: `{text}` is not a UUID"));
            }
        }
        if let Some(n) = value.as_f64() {
            if schema
                .get("minimum")
                .and_then(Value::as_f64)
                .is_some_and(|m| n < m)
            {
                errors.push(format!("{at}: {n} is below the minimum"));
            }
            if schema
                .get("maximum")
                .and_then(Value::as_f64)
                .is_some_and(|m| n > m)
            {
                errors.push(format!("{at}: {n} is above the maximum"));
            }
        }
        if let Some(object) = value.as_object() {
            for required in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let key = required.as_str().unwrap();
                if !object.contains_key(key) {
                    errors.push(format!("{at}: missing required `{key}`"));
                }
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            for (key, item) in object {
                let at = format!("{at}.{key}");
                match properties.and_then(|p| p.get(key)) {
                    Some(property) => self.check(item, property, &at, None, errors),
                    None => match schema.get("additionalProperties") {
                        Some(Value::Bool(false)) => errors.push(format!("{at}: not allowed")),
                        Some(extra @ Value::Object(_)) => {
                            self.check(item, extra, &at, None, errors);
                        }
                        _ => {}
                    },
                }
            }
        }
        if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
            for (i, item) in array.iter().enumerate() {
                self.check(item, items, &format!("{at}[{i}]"), None, errors);
            }
        }
        for part in schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.check(value, part, at, None, errors);
        }
        if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
            if !any.iter().any(|s| self.validate(value, s).is_empty()) {
                errors.push(format!("{at}: matches none of anyOf"));
            }
        }
        if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
            if let Some(branch) = discriminated(value, schema) {
                let mut inner = Vec::new();
                self.check(value, branch, at, None, &mut inner);
                errors.extend(inner);
            } else {
                let matching = one
                    .iter()
                    .filter(|s| self.validate(value, s).is_empty())
                    .count();
                let ambiguous_ok = name.is_some_and(|n| AMBIGUOUS_ONE_OF.contains(&n));
                if matching == 0 || (matching > 1 && !ambiguous_ok) {
                    errors.push(format!(
                        "{at}: matches {matching} branches of oneOf, not one"
                    ));
                }
            }
        }
    }
}

/// The branch a `discriminator` mapping picks, when the schema has one and the value names it.
fn discriminated<'a>(value: &Value, schema: &'a Value) -> Option<&'a Value> {
    let discriminator = schema.get("discriminator")?;
    let property = discriminator["propertyName"].as_str()?;
    let tag = value.get(property)?.as_str()?;
    let reference = discriminator["mapping"][tag].as_str()?;
    schema["oneOf"]
        .as_array()?
        .iter()
        .find(|s| s["$ref"] == reference)
}

fn has_type(value: &Value, kind: &str) -> bool {
    match kind {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "null" => value.is_null(),
        _ => true,
    }
}

/// Airbyte's problem body (`api-problems.yaml` `BaseProblemFields`), with the two `data` shapes.
fn problem_schema() -> Value {
    json!({
        "type": "object",
        "required": ["status", "type", "title", "detail", "documentationUrl"],
        "properties": {
            "status": {"type": "integer"},
            "type": {"type": "string"},
            "title": {"type": "string"},
            "detail": {"type": "string"},
            "documentationUrl": {"type": "string", "nullable": true},
            "data": {"anyOf": [
                {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}},
                {"type": "object", "required": ["resourceType", "resourceId"],
                 "properties": {"resourceType": {"type": "string"}, "resourceId": {"type": "string"}}},
                {"type": "object", "required": ["streams"], "properties": {"streams": {
                    "type": "array", "items": {"type": "object", "required": ["streamName", "connectionIds"],
                    "properties": {"streamName": {"type": "string"}, "streamNamespace": {"type": "string"},
                                   "connectionIds": {"type": "array", "items": {"type": "string", "format": "uuid"}}}}}}}
            ]}
        }
    })
}

/// One exchange to check: the spec route it belongs to, what to send, and the status expected.
struct Call {
    method: &'static str,
    route: &'static str,
    url: String,
    body: Option<Value>,
    status: u16,
}

fn call(method: &'static str, route: &'static str, url: impl Into<String>, status: u16) -> Call {
    Call {
        method,
        route,
        url: url.into(),
        body: None,
        status,
    }
}

fn with_body(mut c: Call, body: Value) -> Call {
    c.body = Some(body);
    c
}

/// Every route the sandbox serves, with successes and the errors that have a documented status.
#[allow(clippy::too_many_lines)] // a table
fn calls(base: &str) -> Vec<Call> {
    let aes = json!({"type": "encryption", "mapperConfiguration": {"algorithm": "AES",
        "key": "00112233445566778899aabbccddeeff", "mode": "CBC", "padding": "PKCS5Padding",
        "targetField": "email", "fieldNameSuffix": "_enc"}});
    let hashing = json!({"type": "hashing", "mapperConfiguration": {"targetField": "name", "method": "SHA-256", "fieldNameSuffix": "_hash"}});
    let full_create = json!({
        "name": "shop-eu full", "sourceId": SHOP_EU, "destinationId": WAREHOUSE,
        "schedule": {"scheduleType": "cron", "cronExpression": "0 0 3 * * ?"},
        "status": "inactive", "prefix": "eu_", "namespaceDefinition": "custom_format",
        "namespaceFormat": "${SOURCE_NAMESPACE}", "nonBreakingSchemaUpdatesBehavior": "propagate_fully",
        "configurations": {"streams": [
            {"name": "orders", "syncMode": "incremental_deduped_history", "cursorField": ["updated_at"], "primaryKey": [["id"]]},
            {"name": "customers", "selectedFields": [{"fieldPath": ["id"]}, {"fieldPath": ["name"]}, {"fieldPath": ["email"]}],
             "mappers": [aes, hashing]},
            {"name": "products", "syncMode": "incremental_append"}]},
        "tags": []
    });

    vec![
        call("GET", "/health", format!("{base}/health"), 200),
        with_body(
            call(
                "POST",
                "/applications/token",
                format!("{base}/applications/token"),
                200,
            ),
            json!({"client_id": "sandbox-client", "client_secret": "sandbox-secret", "grant-type": "client_credentials"}),
        ),
        with_body(
            call(
                "POST",
                "/applications/token",
                format!("{base}/applications/token"),
                403,
            ),
            json!({"client_id": "sandbox-client", "client_secret": "wrong", "grant-type": "client_credentials"}),
        ),
        // Jobs first, while the template connection is still active (job 1 is its sync).
        with_body(
            call("POST", "/jobs", format!("{base}/jobs"), 200),
            json!({"connectionId": TEMPLATE, "jobType": "sync"}),
        ),
        with_body(
            call("POST", "/jobs", format!("{base}/jobs"), 409),
            json!({"connectionId": TEMPLATE, "jobType": "sync"}),
        ),
        with_body(
            call("POST", "/jobs", format!("{base}/jobs"), 422),
            json!({"connectionId": TEMPLATE, "jobType": "refresh"}),
        ),
        with_body(
            call("POST", "/jobs", format!("{base}/jobs"), 404),
            json!({"connectionId": MISSING, "jobType": "sync"}),
        ),
        call("GET", "/jobs", format!("{base}/jobs"), 200),
        call(
            "GET",
            "/jobs",
            format!(
                "{base}/jobs?connectionId={TEMPLATE}&jobType=sync&status=pending&orderBy=createdAt|DESC&limit=5&offset=0"
            ),
            200,
        ),
        call(
            "GET",
            "/jobs",
            format!("{base}/jobs?workspaceIds={WORKSPACE}&orderBy=updatedAt|ASC"),
            200,
        ),
        call("GET", "/jobs", format!("{base}/jobs?orderBy=oops"), 400),
        call("GET", "/jobs/{jobId}", format!("{base}/jobs/1"), 200),
        call("GET", "/jobs/{jobId}", format!("{base}/jobs/999"), 404),
        call("DELETE", "/jobs/{jobId}", format!("{base}/jobs/1"), 200),
        call("GET", "/jobs/{jobId}", format!("{base}/jobs/1"), 200),
        call("DELETE", "/jobs/{jobId}", format!("{base}/jobs/1"), 409),
        with_body(
            call("POST", "/jobs", format!("{base}/jobs"), 200),
            json!({"connectionId": TEMPLATE, "jobType": "reset"}),
        ),
        call("GET", "/connections", format!("{base}/connections"), 200),
        call(
            "GET",
            "/connections",
            format!(
                "{base}/connections?workspaceIds={WORKSPACE}&includeDeleted=true&limit=1&offset=0"
            ),
            200,
        ),
        call(
            "GET",
            "/connections",
            format!("{base}/connections?limit=1&offset=50"),
            200,
        ),
        call(
            "GET",
            "/connections",
            format!("{base}/connections?limit=500"),
            400,
        ),
        call(
            "GET",
            "/connections/{connectionId}",
            format!("{base}/connections/{TEMPLATE}"),
            200,
        ),
        call(
            "GET",
            "/connections/{connectionId}",
            format!("{base}/connections/{MISSING}"),
            404,
        ),
        with_body(
            call("POST", "/connections", format!("{base}/connections"), 200),
            json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE}),
        ),
        with_body(
            call("POST", "/connections", format!("{base}/connections"), 200),
            full_create,
        ),
        with_body(
            call("POST", "/connections", format!("{base}/connections"), 400),
            json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE, "configurations": {"streams": [{"name": "nope"}]}}),
        ),
        with_body(
            call("POST", "/connections", format!("{base}/connections"), 404),
            json!({"sourceId": MISSING, "destinationId": WAREHOUSE}),
        ),
        with_body(
            call("POST", "/connections", format!("{base}/connections"), 500),
            json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE, "configurations": {"streams": [
                {"name": "orders"}, {"name": "orders", "namespace": "public"}]}}),
        ),
        with_body(
            call(
                "PATCH",
                "/connections/{connectionId}",
                format!("{base}/connections/{TEMPLATE}"),
                500,
            ),
            json!({"configurations": {"streams": [{"name": "orders"}, {"name": "orders", "namespace": "public"}]}}),
        ),
        with_body(
            call(
                "PATCH",
                "/connections/{connectionId}",
                format!("{base}/connections/{TEMPLATE}"),
                200,
            ),
            json!({"name": "renamed", "schedule": {"scheduleType": "manual"}, "configurations": {"streams": [{"name": "orders"}]}}),
        ),
        with_body(
            call(
                "PATCH",
                "/connections/{connectionId}",
                format!("{base}/connections/{TEMPLATE}"),
                200,
            ),
            json!({"status": "locked"}),
        ),
        with_body(
            call(
                "PATCH",
                "/connections/{connectionId}",
                format!("{base}/connections/{TEMPLATE}"),
                409,
            ),
            json!({"name": "thawed"}),
        ),
        with_body(
            call(
                "PATCH",
                "/connections/{connectionId}",
                format!("{base}/connections/{MISSING}"),
                404,
            ),
            json!({"name": "x"}),
        ),
        call(
            "DELETE",
            "/connections/{connectionId}",
            format!("{base}/connections/{TEMPLATE}"),
            204,
        ),
        call(
            "DELETE",
            "/connections/{connectionId}",
            format!("{base}/connections/{MISSING}"),
            404,
        ),
        call("GET", "/sources", format!("{base}/sources?limit=3"), 200),
        call(
            "GET",
            "/sources/{sourceId}",
            format!("{base}/sources/{SHOP_EU}"),
            200,
        ),
        call(
            "GET",
            "/sources/{sourceId}",
            format!("{base}/sources/{MISSING}"),
            404,
        ),
        call("GET", "/destinations", format!("{base}/destinations"), 200),
        call(
            "GET",
            "/destinations/{destinationId}",
            format!("{base}/destinations/{WAREHOUSE}"),
            200,
        ),
        call(
            "GET",
            "/streams",
            format!("{base}/streams?sourceId={SHOP_EU}"),
            200,
        ),
        call(
            "GET",
            "/streams",
            format!("{base}/streams?sourceId={SHOP_EU}&destinationId={WAREHOUSE}&ignoreCache=true"),
            200,
        ),
        call("GET", "/streams", format!("{base}/streams"), 400),
        call("GET", "/workspaces", format!("{base}/workspaces"), 200),
        call(
            "GET",
            "/workspaces/{workspaceId}",
            format!("{base}/workspaces/{WORKSPACE}"),
            200,
        ),
        call(
            "GET",
            "/tags",
            format!("{base}/tags?workspaceIds={WORKSPACE}"),
            200,
        ),
        call("GET", "/tags", format!("{base}/tags"), 200),
        call("GET", "/tags/{tagId}", format!("{base}/tags/{TAG}"), 200),
        call(
            "GET",
            "/tags/{tagId}",
            format!("{base}/tags/{MISSING}"),
            404,
        ),
        with_body(
            call("POST", "/tags", format!("{base}/tags"), 200),
            json!({"name": "replicate:shops", "color": "4F46E5", "workspaceId": WORKSPACE}),
        ),
        with_body(
            call("POST", "/tags", format!("{base}/tags"), 409),
            json!({"name": "replicate:shops", "color": "4F46E5", "workspaceId": WORKSPACE}),
        ),
        with_body(
            call("POST", "/tags", format!("{base}/tags"), 400),
            json!({"name": "x".repeat(31), "color": "4F46E5", "workspaceId": WORKSPACE}),
        ),
        with_body(
            call("POST", "/tags", format!("{base}/tags"), 400),
            json!({"name": "red", "color": "#FF0000", "workspaceId": WORKSPACE}),
        ),
        with_body(
            call("PATCH", "/tags/{tagId}", format!("{base}/tags/{TAG}"), 200),
            json!({"name": "tenant-eu", "color": "00FF00"}),
        ),
        with_body(
            call("PATCH", "/tags/{tagId}", format!("{base}/tags/{TAG}"), 400),
            json!({"name": "tenant-eu", "color": "green"}),
        ),
        with_body(
            call(
                "PATCH",
                "/tags/{tagId}",
                format!("{base}/tags/{MISSING}"),
                404,
            ),
            json!({"name": "tenant-eu", "color": "00FF00"}),
        ),
        with_body(
            call("POST", "/connections", format!("{base}/connections"), 200),
            json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE, "tags": [
                {"tagId": TAG, "workspaceId": WORKSPACE, "name": "tenant-eu", "color": "00FF00"}]}),
        ),
        call(
            "GET",
            "/connections",
            format!("{base}/connections?tagIds={TAG}&limit=5"),
            200,
        ),
        call("DELETE", "/tags/{tagId}", format!("{base}/tags/{TAG}"), 204),
        call("DELETE", "/tags/{tagId}", format!("{base}/tags/{TAG}"), 404),
    ]
}

#[test]
fn the_validator_catches_what_it_claims_to() {
    let Some(spec) = Spec::load("the_validator_catches_what_it_claims_to") else {
        return;
    };
    let create = spec.schema("ConnectionCreateRequest");
    assert!(
        spec.validate(
            &json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE}),
            create
        )
        .is_empty()
    );
    let cases = [
        (
            json!({"sourceId": SHOP_EU}),
            "missing required `destinationId`",
        ),
        (
            json!({"sourceId": "shop-eu", "destinationId": WAREHOUSE}),
            "not a UUID",
        ),
        (
            json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE, "schedule": {"scheduleType": "basic"}}),
            "is not one of",
        ),
        (
            json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE, "configurations": {"streams": [{"syncMode": "full_refresh_overwrite"}]}}),
            "missing required `name`",
        ),
        (
            json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE, "prefix": 3}),
            "expected [\"string\"]",
        ),
        (
            json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE, "configurations": {"streams": [{"name": "x", "mappers": [
            {"type": "encryption", "mapperConfiguration": {"algorithm": "AES", "key": "k"}}]}]}}),
            "matches 0 branches of oneOf",
        ),
    ];
    for (body, needle) in cases {
        let errors = spec.validate(&body, create);
        assert!(
            errors.iter().any(|e| e.contains(needle)),
            "{body}: {errors:?}"
        );
    }
    let token = spec.request_schema("POST", "/applications/token", "application/json");
    assert!(
        spec.validate(&json!({"client_id": "a", "client_secret": "b"}), token)
            .is_empty()
    );
    assert!(
        !spec
            .validate(
                &json!({"client_id": "a", "client_secret": "b", "grant-type": "password"}),
                token
            )
            .is_empty()
    );
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one scenario, read top to bottom
async fn responses_and_requests_match_the_official_spec() {
    let Some(spec) = Spec::load("responses_and_requests_match_the_official_spec") else {
        return;
    };
    let mut config = SandboxConfig::default_on_free_port();
    // Long enough that the job the calls start is still pending when they cancel it.
    config.job_duration = std::time::Duration::from_secs(600);
    config.seed.tags.push(SeedTag {
        name: "tenant".into(),
        color: "4F46E5".into(),
        workspace: None,
        id: Some(TAG.parse().unwrap()),
    });
    let api = Api::from_config(config).await;
    let base = api.sandbox.url();
    let http = &api.http;

    let calls = calls(&base);

    let mut failures = Vec::new();
    for c in &calls {
        let mut request = http
            .request(c.method.parse().unwrap(), &c.url)
            .bearer_auth(TOKEN);
        if let Some(body) = &c.body {
            let errors = spec.validate(
                body,
                spec.request_schema(c.method, c.route, "application/json"),
            );
            if !errors.is_empty() {
                failures.push(format!("request {} {}: {errors:?}", c.method, c.route));
            }
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        let text = response.text().await.unwrap();
        if status != c.status {
            failures.push(format!(
                "{} {}: status {status}, expected {}: {text}",
                c.method, c.url, c.status
            ));
            continue;
        }
        if text.is_empty() {
            if spec.response_schema(c.method, c.route, status).is_some() {
                failures.push(format!(
                    "{} {}: empty body where the spec has a schema",
                    c.method, c.url
                ));
            }
            continue;
        }
        if content_type.as_deref() != Some("application/json") {
            failures.push(format!(
                "{} {}: content type {content_type:?}",
                c.method, c.url
            ));
        }
        let body: Value = serde_json::from_str(&text).unwrap();
        let errors = if status >= 400 {
            spec.validate(&body, &problem_schema())
        } else {
            match spec.response_schema(c.method, c.route, status) {
                Some(schema) => spec.validate(&body, schema),
                None => vec![format!("a {status} body, but the spec documents none")],
            }
        };
        if !errors.is_empty() {
            failures.push(format!("{} {} → {status}: {errors:?}", c.method, c.url));
        }
    }

    // With --refuse-conflicting-streams, a patch onto another connection's tables is refused with
    // Airbyte's problem, whose `data` names the streams.
    let strict = Api::with(|c| c.refuse_conflicting_streams = true).await;
    let copy = json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE, "prefix": "eu_"});
    let patch = json!({"prefix": "eu_"});
    for (method, route, body) in [
        ("POST", "/connections", &copy),
        ("PATCH", "/connections/{connectionId}", &patch),
    ] {
        let errors = spec.validate(body, spec.request_schema(method, route, "application/json"));
        assert!(errors.is_empty(), "{method} {route}: {errors:?}");
    }
    let created = http
        .post(format!("{}/connections", strict.sandbox.url()))
        .bearer_auth(TOKEN)
        .json(&copy)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let refused = http
        .patch(format!("{}/connections/{TEMPLATE}", strict.sandbox.url()))
        .bearer_auth(TOKEN)
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    let errors = spec.validate(&body, &problem_schema());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(body["data"]["streams"][0]["streamName"], "orders");
    strict.sandbox.shutdown().await;

    // A body that is not JSON: 415 with a problem body.
    let refused = http
        .post(format!("{base}/connections"))
        .bearer_auth(TOKEN)
        .header("content-type", "text/plain")
        .body(json!({"sourceId": SHOP_EU, "destinationId": WAREHOUSE}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 415);
    let body: Value = refused.json().await.unwrap();
    let errors = spec.validate(&body, &problem_schema());
    assert!(errors.is_empty(), "{errors:?}");

    // The form-encoded token request is the same schema under its own content type.
    let form = json!({"client_id": "sandbox-client", "client_secret": "sandbox-secret", "grant-type": "client_credentials"});
    let schema = spec.request_schema(
        "POST",
        "/applications/token",
        "application/x-www-form-urlencoded",
    );
    assert!(spec.validate(&form, schema).is_empty());
    let pairs: Vec<(String, String)> = form
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let token: Value = http
        .post(format!("{base}/applications/token"))
        .form(&pairs)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let errors = spec.validate(
        &token,
        spec.response_schema("POST", "/applications/token", 200)
            .unwrap(),
    );
    assert!(errors.is_empty(), "{errors:?}");

    api.sandbox.shutdown().await;
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
