//! Test support: a sandbox on a random loopback port, plan files in a temp dir, the real
//! binary run against them, and questions asked of the sandbox's own API.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use assert_cmd::Command;
use replicate::sandbox::{Sandbox, SandboxConfig};
use replicate::wire::{ConnectionResponse, Page};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// A plan for every `bulk-…` source that `SandboxConfig::extra_sources` adds.
pub const BULK: &str = r#"
version: 1
template: "shop-template → Warehouse"
targets:
  - match: "bulk-*"
defaults:
  prefix: "{source.name|slug}_"
"#;

/// One test's world: its own sandbox, its own directory.
pub struct World {
    rt: tokio::runtime::Runtime,
    sandbox: Option<Sandbox>,
    pub url: String,
    pub dir: tempfile::TempDir,
    http: reqwest::Client,
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
        let mut config = SandboxConfig::default_on_free_port();
        configure(&mut config);
        let sandbox = rt.block_on(Sandbox::start(config)).unwrap();
        World {
            url: sandbox.url(),
            sandbox: Some(sandbox),
            rt,
            dir: tempfile::tempdir().unwrap(),
            http: reqwest::Client::new(),
        }
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
        cmd.env_remove("AIRBYTE_URL")
            .env_remove("AIRBYTE_CLIENT_ID")
            .env_remove("AIRBYTE_CLIENT_SECRET")
            .env("AIRBYTE_TOKEN", "sandbox-token")
            .env("AIRBYTE_URL", &self.url)
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path())
            .timeout(Duration::from_secs(120));
        cmd
    }

    /// The same, as a plain `std::process::Command`, for runs that are spawned and signalled.
    pub fn replicate_process(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("replicate"));
        cmd.env_remove("AIRBYTE_CLIENT_ID")
            .env_remove("AIRBYTE_CLIENT_SECRET")
            .env("AIRBYTE_TOKEN", "sandbox-token")
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
            .find(|c| c.name == "shop-template → Warehouse")
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
        let url = format!("{}/_sandbox/stats", self.origin());
        self.rt.block_on(async {
            self.http
                .get(url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        })
    }

    /// How many requests the sandbox saw for a route template, e.g. `POST /connections`.
    pub fn requests(&self, route: &str) -> u64 {
        self.stats()["requests"][route].as_u64().unwrap_or(0)
    }

    /// Every live connection, read back from the sandbox's API. Pages that the sandbox's own
    /// fault knobs fail are asked again: the test wants the truth, not the faults.
    pub fn connections(&self) -> Vec<ConnectionResponse> {
        let mut all = Vec::new();
        loop {
            let url = format!("{}/connections?limit=100&offset={}", self.url, all.len());
            let page: Page<ConnectionResponse> = self.rt.block_on(async {
                for _ in 0..200 {
                    let response = self
                        .http
                        .get(&url)
                        .bearer_auth("sandbox-token")
                        .send()
                        .await;
                    if let Ok(response) = response {
                        if response.status().is_success() {
                            if let Ok(page) = response.json().await {
                                return page;
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                panic!("the sandbox never answered {url}");
            });
            let n = page.data.len();
            all.extend(page.data);
            if n < 100 {
                return all;
            }
        }
    }

    /// `PATCH /connections/{id}` through the sandbox's API, as a user would in the Airbyte UI:
    /// a change behind the plan's back. Tried again while the sandbox's own fault knobs fail it
    /// (a PATCH is idempotent); panics on any other answer than 200.
    pub fn patch(&self, connection: uuid::Uuid, body: &Value) -> ConnectionResponse {
        let url = format!("{}/connections/{connection}", self.url);
        self.rt.block_on(async {
            for _ in 0..200 {
                let Ok(response) = self
                    .http
                    .patch(&url)
                    .bearer_auth("sandbox-token")
                    .json(body)
                    .send()
                    .await
                else {
                    continue;
                };
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                if status.is_server_error() || status.as_u16() == 429 || text.is_empty() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                assert!(status.is_success(), "PATCH {url}: {status} {text}");
                return serde_json::from_str(&text).unwrap();
            }
            panic!("the sandbox never took PATCH {url}");
        })
    }

    /// `GET {url}{path}` through the sandbox's API with the static token, as JSON. Asked again
    /// while the sandbox's own fault knobs fail it: the test wants the truth, not the faults.
    pub fn get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.url);
        self.rt.block_on(async {
            for _ in 0..200 {
                if let Ok(response) = self
                    .http
                    .get(&url)
                    .bearer_auth("sandbox-token")
                    .send()
                    .await
                {
                    if response.status().is_success() {
                        if let Ok(value) = response.json().await {
                            return value;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("the sandbox never answered {url}");
        })
    }

    /// The live connection with this name.
    pub fn connection_named(&self, name: &str) -> Option<ConnectionResponse> {
        self.connections().into_iter().find(|c| c.name == name)
    }

    fn origin(&self) -> String {
        self.url.trim_end_matches("/v1").to_string()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(sandbox) = self.sandbox.take() {
            self.rt.block_on(sandbox.shutdown());
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
