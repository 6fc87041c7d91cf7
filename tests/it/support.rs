//! Test support, shared by every module of the test binary: the default seed's ids, a sandbox on
//! a random loopback port (driven from async tests through [`Api`], or from plain tests through
//! [`World`], which adds a temp dir and the real binary), and the questions tests ask the sandbox
//! (`/_sandbox/stats`, tokens, the live connections, a change behind the plan's back).

use assert_cmd::Command;
use replicate::sandbox::{Sandbox, SandboxConfig, Seed};
use replicate::wire::{ConnectionResponse, Page};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The default seed's ids and credentials (`src/sandbox/default_seed.yaml`, SPEC §7), which docs,
/// plans and snapshots quote. [`the_seed_ids_are_the_default_seeds`] holds them to the seed.
pub mod seed {
    pub const WORKSPACE: &str = "5a4d0000-0000-4000-8000-000000000001";
    /// The destination `Warehouse`.
    pub const WAREHOUSE: &str = "de570000-0000-4000-8000-000000000001";
    /// The template connection `shop-template → Warehouse`.
    pub const TEMPLATE: &str = "c0000000-0000-4000-8000-000000000001";
    pub const TEMPLATE_NAME: &str = "shop-template → Warehouse";
    pub const SHOP_TEMPLATE: &str = "50c00000-0000-4000-8000-000000000001";
    pub const SHOP_EU: &str = "50c00000-0000-4000-8000-000000000002";
    pub const SHOP_US: &str = "50c00000-0000-4000-8000-000000000003";
    pub const SHOP_APAC: &str = "50c00000-0000-4000-8000-000000000004";
    pub const SHOP_LATAM: &str = "50c00000-0000-4000-8000-000000000005";
    /// `postgres`, but its catalog lacks `products`.
    pub const SHOP_LEGACY: &str = "50c00000-0000-4000-8000-000000000006";
    /// `hubspot`, another catalog.
    pub const CRM: &str = "50c00000-0000-4000-8000-000000000007";
    /// The four healthy shops besides the template's own source.
    pub const SHOPS: [&str; 4] = [SHOP_EU, SHOP_US, SHOP_APAC, SHOP_LATAM];
    /// The sources by name, as `(name, type, id)`.
    pub const SOURCES: [(&str, &str, &str); 7] = [
        ("shop-template", "postgres", SHOP_TEMPLATE),
        ("shop-eu", "postgres", SHOP_EU),
        ("shop-us", "postgres", SHOP_US),
        ("shop-apac", "postgres", SHOP_APAC),
        ("shop-latam", "postgres", SHOP_LATAM),
        ("shop-legacy", "postgres", SHOP_LEGACY),
        ("crm", "hubspot", CRM),
    ];
    /// An id the seed does not hold.
    pub const MISSING: &str = "00000000-0000-4000-8000-0000000000ff";
    pub const TOKEN: &str = "sandbox-token";
    pub const CLIENT_ID: &str = "sandbox-client";
    pub const CLIENT_SECRET: &str = "sandbox-secret";

    /// One of the ids above, as a `Uuid`.
    pub fn id(id: &str) -> uuid::Uuid {
        id.parse().expect("a seed id is a UUID")
    }
}

/// A plan for every `bulk-…` source that `SandboxConfig::extra_sources` adds.
pub const BULK: &str = r#"
version: 1
template: "shop-template → Warehouse"
targets:
  - match: "bulk-*"
defaults:
  prefix: "{source.name|slug}_"
"#;

/// How long a test waits for something that must happen before it calls it a hang: generous,
/// so that a loaded machine never trips it. Speed is for the benchmarks.
pub const HANG_GUARD: Duration = Duration::from_secs(300);

/// Waits until `done` holds, polling; panics (with `what`) only on a hang.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < HANG_GUARD, "{what}: never happened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running sandbox and a client that sends the seed's static token (or none).
pub struct Api {
    pub sandbox: Sandbox,
    pub http: reqwest::Client,
    pub token: Option<String>,
}

impl Api {
    /// A sandbox with the default seed.
    pub async fn start() -> Api {
        Api::with(|_| {}).await
    }

    /// A sandbox whose default config `configure` adjusts (faults, latency, extra sources).
    pub async fn with(configure: impl FnOnce(&mut SandboxConfig)) -> Api {
        let mut config = SandboxConfig::default_on_free_port();
        configure(&mut config);
        Api::from_config(config).await
    }

    pub async fn from_config(config: SandboxConfig) -> Api {
        Api {
            sandbox: Sandbox::start(config).await.expect("sandbox starts"),
            http: reqwest::Client::new(),
            token: Some(seed::TOKEN.into()),
        }
    }

    /// A sandbox seeded from YAML (as `--seed FILE` would be).
    pub async fn seeded(yaml: &str) -> Api {
        let seed = Seed::from_yaml(Path::new("test-seed.yaml"), yaml.as_bytes()).unwrap();
        Api::with(|c| c.seed = seed).await
    }

    /// `http://127.0.0.1:PORT/v1` and `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.url())
    }

    /// Sends with the token, if any; panics unless an answer comes, and unless a body is JSON.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().await.expect("request reaches the sandbox");
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {text}"))
        };
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.http.get(self.url(path))).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(self.http.post(self.url(path)).json(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(self.http.patch(self.url(path)).json(body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.http.delete(self.url(path))).await
    }

    /// `POST /connections`, which must answer 200; the created connection.
    pub async fn create(&self, body: &Value) -> Value {
        let (status, created) = self.post("/connections", body).await;
        assert_eq!(status, 200, "{created}");
        created
    }

    /// `GET /_sandbox/stats` (no auth; never faulted).
    pub async fn stats(&self) -> Value {
        let url = format!("http://{}/_sandbox/stats", self.sandbox.addr());
        let response = self.http.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200, "faults never reach /_sandbox/*");
        response.json().await.unwrap()
    }

    /// How many requests the sandbox saw for a route template, e.g. `POST /connections`.
    pub async fn requests(&self, route: &str) -> u64 {
        self.stats().await["requests"][route].as_u64().unwrap_or(0)
    }

    /// `POST /applications/token` with the seed's application credentials, not yet sent.
    pub fn token_request(&self) -> reqwest::RequestBuilder {
        self.http
            .post(self.url("/applications/token"))
            .json(&json!({
                "client_id": seed::CLIENT_ID,
                "client_secret": seed::CLIENT_SECRET,
                "grant-type": "client_credentials",
            }))
    }

    /// A fresh application token.
    pub async fn token(&self) -> String {
        let response = self.token_request().send().await.unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }

    /// Every live connection, read back through the API. Pages that the sandbox's own fault
    /// knobs fail are asked again: the test wants the truth, not the faults.
    pub async fn connections(&self) -> Vec<ConnectionResponse> {
        let mut all = Vec::new();
        loop {
            let url = self.url(&format!("/connections?limit=100&offset={}", all.len()));
            let page: Page<ConnectionResponse> = self.retried(|| self.http.get(&url)).await;
            let n = page.data.len();
            all.extend(page.data);
            if n < 100 {
                return all;
            }
        }
    }

    /// `PATCH /connections/{id}`, as a user would in the Airbyte UI: a change behind the plan's
    /// back. Sent again while the sandbox's own fault knobs fail it (a PATCH is idempotent);
    /// panics on any other answer than 200.
    pub async fn patch_connection(&self, id: uuid::Uuid, body: &Value) -> ConnectionResponse {
        let url = self.url(&format!("/connections/{id}"));
        self.retried(|| self.http.patch(&url).json(body)).await
    }

    /// Sends `request()` until an answer other than a fault (5xx, 429, a lost answer) comes,
    /// which must be a success with a body of type `T`.
    async fn retried<T: serde::de::DeserializeOwned>(
        &self,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> T {
        for _ in 0..200 {
            let mut request = request();
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            if let Ok(response) = request.send().await {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                if !(status.is_server_error() || status.as_u16() == 429 || text.is_empty()) {
                    assert!(status.is_success(), "{status} {text}");
                    return serde_json::from_str(&text).unwrap();
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the sandbox never answered without a fault");
    }
}

/// One test's world, for tests that are not async: its own sandbox, its own directory, the real
/// binary pointed at them.
pub struct World {
    rt: tokio::runtime::Runtime,
    api: Option<Api>,
    pub url: String,
    pub dir: tempfile::TempDir,
}

impl World {
    /// A sandbox with the default seed.
    pub fn new() -> World {
        World::with(|_| {})
    }

    /// A sandbox whose default config `configure` adjusts (latency, extra sources, seed).
    pub fn with(configure: impl FnOnce(&mut SandboxConfig)) -> World {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let api = rt.block_on(Api::with(configure));
        World {
            url: api.sandbox.url(),
            api: Some(api),
            rt,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn api(&self) -> &Api {
        self.api
            .as_ref()
            .expect("the sandbox runs until the world is dropped")
    }

    /// Writes a plan file and returns its path.
    pub fn plan(&self, name: &str, yaml: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, yaml).unwrap();
        path
    }

    /// The replicate binary, pointed at this sandbox with its static token and no other
    /// Airbyte settings from the environment.
    pub fn replicate(&self) -> Command {
        let mut cmd = Command::cargo_bin("replicate").unwrap();
        cmd.env_remove("AIRBYTE_CLIENT_ID")
            .env_remove("AIRBYTE_CLIENT_SECRET")
            .env("AIRBYTE_TOKEN", seed::TOKEN)
            .env("AIRBYTE_URL", &self.url)
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path())
            .timeout(HANG_GUARD);
        cmd
    }

    /// The same, as a plain `std::process::Command`, for runs that are spawned and signalled.
    pub fn replicate_process(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("replicate"));
        cmd.env_remove("AIRBYTE_CLIENT_ID")
            .env_remove("AIRBYTE_CLIENT_SECRET")
            .env("AIRBYTE_TOKEN", seed::TOKEN)
            .env("AIRBYTE_URL", &self.url)
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path());
        cmd
    }

    /// How many live copies each source has into the template's destination, the template
    /// excluded: the truth about "exactly one copy per target".
    pub fn copies_per_source(&self) -> std::collections::BTreeMap<uuid::Uuid, usize> {
        let all = self.connections();
        let template = all
            .iter()
            .find(|c| c.name == seed::TEMPLATE_NAME)
            .expect("the template exists")
            .clone();
        let mut counts = std::collections::BTreeMap::new();
        for c in all {
            if c.connection_id != template.connection_id
                && c.destination_id == template.destination_id
            {
                *counts.entry(c.source_id).or_insert(0) += 1;
            }
        }
        counts
    }

    /// `GET /_sandbox/stats`.
    pub fn stats(&self) -> Value {
        self.rt.block_on(self.api().stats())
    }

    /// How many requests the sandbox saw for a route template, e.g. `POST /connections`.
    pub fn requests(&self, route: &str) -> u64 {
        self.rt.block_on(self.api().requests(route))
    }

    /// One call to the API with the seed's static token: its status.
    pub fn status(&self, method: reqwest::Method, path: &str) -> StatusCode {
        let api = self.api();
        self.rt
            .block_on(api.send(api.http.request(method, api.url(path))))
            .0
    }

    /// Every live connection, read back through the API, faults asked again.
    pub fn connections(&self) -> Vec<ConnectionResponse> {
        self.rt.block_on(self.api().connections())
    }

    /// A change behind the plan's back: see [`Api::patch_connection`].
    pub fn patch(&self, connection: uuid::Uuid, body: &Value) -> ConnectionResponse {
        self.rt
            .block_on(self.api().patch_connection(connection, body))
    }

    /// `GET {url}{path}` as JSON, asked again while the sandbox's own fault knobs fail it.
    pub fn get(&self, path: &str) -> Value {
        for _ in 0..200 {
            let (status, body) = self.rt.block_on(self.api().get(path));
            if status.is_success() {
                return body;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the sandbox never answered GET {path}");
    }

    /// The live connection with this name.
    pub fn connection_named(&self, name: &str) -> Option<ConnectionResponse> {
        self.connections().into_iter().find(|c| c.name == name)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(api) = self.api.take() {
            self.rt.block_on(api.sandbox.shutdown());
        }
    }
}

/// Output with the run-specific parts (UUIDs, ports, temp paths) replaced, for snapshots.
pub fn redact(text: &str, world: &World) -> String {
    let mut out = text.replace(&world.url, "[URL]");
    out = out.replace(&world.dir.path().display().to_string(), "[DIR]");
    let mut result = String::with_capacity(out.len());
    let bytes = out.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if out.get(i..i + 36).is_some_and(is_uuid) {
            result.push_str("[UUID]");
            i += 36;
        } else {
            let ch = out[i..].chars().next().unwrap();
            result.push(ch);
            i += ch.len_utf8();
        }
    }
    result
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[test]
fn the_seed_ids_are_the_default_seeds() {
    let default = Seed::default_seed();
    let workspace = &default.workspaces[0];
    assert_eq!(workspace.id, Some(seed::id(seed::WORKSPACE)));
    let warehouse = &default.destinations[0];
    assert_eq!(
        (warehouse.name.as_str(), warehouse.id),
        ("Warehouse", Some(seed::id(seed::WAREHOUSE)))
    );
    let sources: Vec<(&str, &str, Option<uuid::Uuid>)> = default
        .sources
        .iter()
        .map(|s| (s.name.as_str(), s.source_type.as_str(), s.id))
        .collect();
    let expected: Vec<(&str, &str, Option<uuid::Uuid>)> = seed::SOURCES
        .iter()
        .map(|(name, kind, id)| (*name, *kind, Some(seed::id(id))))
        .collect();
    assert_eq!(sources, expected);
    let template = &default.connections[0];
    assert_eq!(template.name.as_deref(), Some(seed::TEMPLATE_NAME));
    assert_eq!(template.id, Some(seed::id(seed::TEMPLATE)));
    assert_eq!(
        (template.source.as_str(), template.destination.as_str()),
        ("shop-template", "Warehouse")
    );
    assert_eq!(default.tokens, [seed::TOKEN]);
    assert_eq!(default.applications[0].client_id, seed::CLIENT_ID);
    assert_eq!(default.applications[0].client_secret, seed::CLIENT_SECRET);
    assert!(
        default
            .sources
            .iter()
            .all(|s| s.id != Some(seed::id(seed::MISSING))),
        "MISSING is not a seed id"
    );
}

/// One HTTP/1.1 request as the tests' tiny hostile servers read it off a raw socket.
pub struct RawRequest {
    pub method: String,
    pub target: String,
    pub authorization: Option<String>,
    pub body: Vec<u8>,
}

/// Reads one request's head (at most 64 KiB) and its `Content-Length` body; `None` when the
/// client hung up first or sent an oversized head.
pub async fn read_request(
    socket: &mut (impl tokio::io::AsyncRead + Unpin),
) -> std::io::Result<Option<RawRequest>> {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if socket.read(&mut byte).await? == 0 || head.len() > 64 * 1024 {
            return Ok(None);
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.lines();
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_string();
    let target = request_line.next().unwrap_or_default().to_string();
    let mut authorization = None;
    let mut length = 0;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            match name.to_ascii_lowercase().as_str() {
                "authorization" => authorization = Some(value.trim().to_string()),
                "content-length" => length = value.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    socket.read_exact(&mut body).await?;
    Ok(Some(RawRequest {
        method,
        target,
        authorization,
        body,
    }))
}
