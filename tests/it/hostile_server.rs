//! A hostile server: redirects, echoed secrets, absurd `Retry-After`s and token lifetimes, a
//! token endpoint that always fails, a server that never answers (issue 8).
//!
//! Each test starts its own tiny HTTP servers on random loopback ports. They speak raw HTTP/1.1
//! over a `TcpListener`, one request per connection, and record every request they receive, so
//! a test can say what reached whom. Some pass what they do not answer to a sandbox of their own
//! (a proxy), so a run gets as far as its writes. The real binary runs against them; the one
//! thing the command line cannot shorten, the retry backoff, is tested through the library.

use crate::support::seed::{self, CLIENT_ID, CLIENT_SECRET, TEMPLATE};
use crate::support::{HANG_GUARD, RawRequest, read_request};
use replicate::client::{Client, ClientConfig, Credentials, RetryPolicy};
use replicate::report::events::Silent;
use replicate::sandbox::{Sandbox, SandboxConfig};
use replicate::secret::Secret;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// The template by id: its `GET` is the run's first request after the token.
fn plan_by_id() -> String {
    format!("version: 1\ntemplate: {TEMPLATE}\ntargets:\n  - match: \"shop-*\"\n")
}

/// The sandbox's four healthy shops: four creates.
const PLAN_SHOPS: &str = "version: 1\ntemplate: \"shop-template → Warehouse\"\ntargets:\n  \
                          - match: \"shop-*\"\n    type: postgres\n    exclude: [\"shop-legacy\"]\n\
                          defaults: {prefix: \"{source.name|slug}_\"}\n";

/// One request as a server received it.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    /// Path and query, e.g. `/v1/connections/…`.
    target: String,
    /// The `Authorization` header, if any.
    authorization: Option<String>,
    body: String,
}

/// What a server does with a request.
enum Reply {
    Answer {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// Keep the connection open and never answer.
    Hang,
    /// Pass it to the sandbox behind (only for a server made with [`Net::proxy`]).
    Pass,
}

fn answer(status: u16, body: impl Into<String>) -> Reply {
    Reply::Answer {
        status,
        headers: Vec::new(),
        body: body.into(),
    }
}

fn answer_with(status: u16, headers: &[(&'static str, &str)], body: impl Into<String>) -> Reply {
    Reply::Answer {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (*k, (*v).to_string()))
            .collect(),
        body: body.into(),
    }
}

/// An Airbyte problem body with this message.
fn problem(status: u16, message: &str) -> String {
    serde_json::json!({
        "status": status,
        "type": "https://reference.airbyte.com/reference/errors",
        "title": "error",
        "detail": message,
        "data": { "message": message },
    })
    .to_string()
}

type Rule = Arc<dyn Fn(&Received) -> Reply + Send + Sync>;

/// A hostile server on a random loopback port.
struct Server {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Server {
    /// The API base, `http://127.0.0.1:PORT/v1`.
    fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn count(&self, method: &str, path_start: &str) -> usize {
        self.received()
            .iter()
            .filter(|r| r.method == method && r.target.starts_with(path_start))
            .count()
    }
}

/// One test's network: a runtime for its servers, a directory for its plan and report.
struct Net {
    rt: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    sandboxes: Vec<Sandbox>,
}

impl Net {
    fn new() -> Net {
        Net {
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
            dir: tempfile::tempdir().unwrap(),
            sandboxes: Vec::new(),
        }
    }

    /// A server that answers every request by `rule`.
    fn server(&self, rule: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> Server {
        self.start(Arc::new(rule), None)
    }

    /// A server in front of a fresh sandbox: `rule` answers, or passes the request on.
    fn proxy(&mut self, rule: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> Server {
        let sandbox = self
            .rt
            .block_on(Sandbox::start(SandboxConfig::default_on_free_port()))
            .unwrap();
        let upstream = sandbox.addr();
        self.sandboxes.push(sandbox);
        self.start(Arc::new(rule), Some(upstream))
    }

    fn start(&self, rule: Rule, upstream: Option<SocketAddr>) -> Server {
        let received = Arc::new(Mutex::new(Vec::new()));
        let listener = self.rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let log = received.clone();
        self.rt.spawn(async move {
            let http = reqwest::Client::new();
            while let Ok((socket, _)) = listener.accept().await {
                let (rule, log, http) = (rule.clone(), log.clone(), http.clone());
                tokio::spawn(async move {
                    // A client that hangs up early is no concern of the server's.
                    let _ = serve(socket, &rule, &log, upstream, &http).await;
                });
            }
        });
        Server { addr, received }
    }

    fn plan(&self, yaml: &str) -> PathBuf {
        let path = self.dir.path().join("plan.yaml");
        std::fs::write(&path, yaml).unwrap();
        path
    }

    fn report_path(&self) -> PathBuf {
        self.dir.path().join("report.json")
    }

    /// The binary, with no Airbyte settings from the environment but `url`, and a guard
    /// against a hang (a failed test, not a stuck suite).
    fn replicate(&self, url: &str) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::cargo_bin("replicate").unwrap();
        cmd.env_remove("AIRBYTE_TOKEN")
            .env_remove("AIRBYTE_CLIENT_ID")
            .env_remove("AIRBYTE_CLIENT_SECRET")
            .env("AIRBYTE_URL", url)
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path())
            .timeout(HANG_GUARD);
        cmd
    }

    /// The same, with the sandbox's application credentials.
    fn replicate_as_app(&self, url: &str) -> assert_cmd::Command {
        let mut cmd = self.replicate(url);
        cmd.env("AIRBYTE_CLIENT_ID", CLIENT_ID)
            .env("AIRBYTE_CLIENT_SECRET", CLIENT_SECRET);
        cmd
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for sandbox in self.sandboxes.drain(..) {
            self.rt.block_on(sandbox.shutdown());
        }
    }
}

/// One request on one connection: read it, record it, answer it (`Connection: close`).
async fn serve(
    mut socket: TcpStream,
    rule: &Rule,
    log: &Mutex<Vec<Received>>,
    upstream: Option<SocketAddr>,
    http: &reqwest::Client,
) -> std::io::Result<()> {
    let Some(RawRequest {
        method,
        target,
        authorization,
        body,
    }) = read_request(&mut socket).await?
    else {
        return Ok(());
    };
    let received = Received {
        method,
        target,
        authorization,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    log.lock().unwrap().push(received.clone());

    let (status, headers, body) = match rule(&received) {
        Reply::Answer {
            status,
            headers,
            body,
        } => (status, headers, body.into_bytes()),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return Ok(());
        }
        Reply::Pass => {
            let upstream = upstream.expect("Reply::Pass needs a proxy");
            let url = format!("http://{upstream}{}", received.target);
            let mut request = http.request(received.method.parse().unwrap(), url);
            if let Some(authorization) = &received.authorization {
                request = request.header("authorization", authorization);
            }
            if !received.body.is_empty() {
                request = request
                    .header("content-type", "application/json")
                    .body(received.body.clone());
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, Vec::new(), response.bytes().await.unwrap().to_vec())
        }
    };
    let mut head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        write!(head, "{name}: {value}\r\n").unwrap();
    }
    head.push_str("\r\n");
    socket.write_all(head.as_bytes()).await?;
    socket.write_all(&body).await?;
    socket.shutdown().await
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The run failed as a user should see it: exit 1 (not a panic's 101), and `needle` said.
fn assert_fails_saying(output: &Output, needles: &[&str]) {
    let (out, err) = (stdout(output), stderr(output));
    assert!(!err.contains("panicked"), "panicked: {err}");
    assert_eq!(
        output.status.code(),
        Some(1),
        "stdout: {out}\nstderr: {err}"
    );
    for needle in needles {
        assert!(
            out.contains(needle) || err.contains(needle),
            "does not say {needle:?}:\nstdout: {out}\nstderr: {err}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Redirects are never followed.

#[test]
fn a_redirected_token_exchange_sends_the_secret_nowhere_else() {
    let net = Net::new();
    let elsewhere = net.server(|_| answer(200, "{}"));
    let location = format!("http://{}/steal?api_key=hunter2#frag", elsewhere.addr);
    let server = net.server(move |_| answer_with(307, &[("location", &location)], ""));
    let plan = net.plan(&plan_by_id());
    let output = net
        .replicate_as_app(&server.url())
        .arg("plan")
        .arg(&plan)
        .output()
        .unwrap();
    let named = format!("http://{}/steal", elsewhere.addr);
    assert_fails_saying(&output, &["POST /applications/token", "redirect", &named]);
    assert!(
        elsewhere.received().is_empty(),
        "the redirect was followed: {:?}",
        elsewhere.received()
    );
    let all = stdout(&output) + &stderr(&output);
    assert!(
        !all.contains("hunter2"),
        "the Location's query is shown: {all}"
    );
    assert!(!all.contains(CLIENT_SECRET), "{all}");
    // The secret went once, to the server it was meant for.
    assert_eq!(server.count("POST", "/v1/applications/token"), 1);
}

#[test]
fn a_redirect_is_not_followed_even_to_the_same_server() {
    let net = Net::new();
    let server = net.server(|request| {
        if request.target.starts_with("/v1/elsewhere") {
            answer(200, "{}")
        } else {
            answer_with(308, &[("location", "/v1/elsewhere?token=abc")], "")
        }
    });
    let plan = net.plan(&plan_by_id());
    let output = net
        .replicate(&server.url())
        .env("AIRBYTE_TOKEN", "static-token")
        .arg("plan")
        .arg(&plan)
        .output()
        .unwrap();
    let template = format!("GET /connections/{TEMPLATE}");
    let named = format!("http://{}/v1/elsewhere", server.addr);
    assert_fails_saying(&output, &[&template, "308", &named]);
    assert_eq!(
        server.count("GET", "/v1/elsewhere"),
        0,
        "the token was sent again"
    );
    assert!(!(stdout(&output) + &stderr(&output)).contains("token=abc"));
}

#[test]
fn a_redirect_to_plain_http_elsewhere_is_not_followed() {
    let net = Net::new();
    // A non-routable address: following it would hang until the connect timeout.
    let server = net.server(|_| {
        answer_with(
            307,
            &[("location", "http://user:pw@10.255.255.1:9/v1/x?key=abc")],
            "",
        )
    });
    let plan = net.plan(&plan_by_id());
    let output = net
        .replicate(&server.url())
        .arg("plan")
        .arg(&plan)
        .output()
        .unwrap();
    assert_fails_saying(&output, &["redirect", "http://10.255.255.1:9/v1/x"]);
    let all = stdout(&output) + &stderr(&output);
    assert!(
        !all.contains("key=abc") && !all.contains("user:pw"),
        "{all}"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Secrets a server echoes are never shown.

#[test]
fn a_token_echoed_in_an_error_reaches_no_output_and_no_report() {
    let mut net = Net::new();
    let server = net.proxy(|request| {
        if request.method == "POST" && request.target == "/v1/connections" {
            let authorization = request.authorization.clone().unwrap_or_default();
            let bare = authorization.trim_start_matches("Bearer ");
            let message = format!(
                "you sent Authorization: {authorization}; your token is {bare}, bearer abc"
            );
            answer(400, problem(400, &message))
        } else {
            Reply::Pass
        }
    });
    let plan = net.plan(PLAN_SHOPS);
    let report = net.report_path();
    let output = net
        .replicate_as_app(&server.url())
        .args(["apply", "--yes", "--quiet", "--report"])
        .arg(&report)
        .arg(&plan)
        .output()
        .unwrap();
    // The server's words are there, without the secrets in them.
    assert_fails_saying(
        &output,
        &["POST /connections: 400", "you sent Authorization"],
    );
    let tokens: Vec<String> = server
        .received()
        .iter()
        .filter_map(|r| r.authorization.clone())
        .map(|a| a.trim_start_matches("Bearer ").to_string())
        .collect();
    assert!(!tokens.is_empty());
    let report = std::fs::read_to_string(&report).unwrap();
    let all = [stdout(&output), stderr(&output), report].concat();
    for token in &tokens {
        assert!(!all.contains(token.as_str()), "the token is shown: {all}");
    }
    assert!(
        !all.contains("bearer abc"),
        "a bearer token is shown: {all}"
    );
}

#[test]
fn a_client_secret_echoed_in_a_403_reaches_no_output_and_no_report() {
    let net = Net::new();
    let server = net.server(|request| {
        let message = format!("forbidden: you sent {}", request.body);
        answer(403, serde_json::json!({ "message": message }).to_string())
    });
    let plan = net.plan(&plan_by_id());
    let report = net.report_path();
    let output = net
        .replicate_as_app(&server.url())
        .args(["apply", "--yes", "--quiet", "--report"])
        .arg(&report)
        .arg(&plan)
        .output()
        .unwrap();
    assert_fails_saying(&output, &["POST /applications/token", "403", "forbidden"]);
    assert!(server.received()[0].body.contains(CLIENT_SECRET));
    let report = std::fs::read_to_string(&report).unwrap();
    let all = [stdout(&output), stderr(&output), report].concat();
    assert!(!all.contains(CLIENT_SECRET), "the secret is shown: {all}");
}

#[test]
fn a_base_url_never_repeats_its_query_or_user_info() {
    let net = Net::new();
    let plan = net.plan(&plan_by_id());
    for (url, says) in [
        ("http://127.0.0.1:9/v1?api_key=hunter2", "query"),
        (
            "https://me:hunter2@api.example.com/v1?api_key=hunter2",
            "user name or password",
        ),
        ("ftp://api.example.com/v1?api_key=hunter2", "https://"),
        (
            "http://airbyte.internal/v1?api_key=hunter2",
            "plain http://",
        ),
        (
            "http//me:hunter2@api.example.com/v1?api_key=hunter2",
            "not a valid URL",
        ),
    ] {
        let output = net.replicate(url).arg("plan").arg(&plan).output().unwrap();
        assert_fails_saying(&output, &[says]);
        let all = stdout(&output) + &stderr(&output);
        assert!(!all.contains("hunter2"), "{url}: {all}");
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Absurd numbers from a server are errors, not panics; `Retry-After` fits the time left.

#[test]
fn a_huge_retry_after_is_an_error_not_a_panic() {
    for seconds in ["18446744073709551615", "9223372036854775807"] {
        let net = Net::new();
        let server = net.server(move |_| {
            answer_with(
                429,
                &[("retry-after", seconds)],
                r#"{"message":"slow down"}"#,
            )
        });
        let plan = net.plan(&plan_by_id());
        let output = net
            .replicate(&server.url())
            .arg("plan")
            .arg(&plan)
            .output()
            .unwrap();
        assert_fails_saying(&output, &["429", "slow down", "Retry-After"]);
    }
}

#[test]
fn a_huge_token_lifetime_is_not_a_panic() {
    let net = Net::new();
    let server = net.server(|request| {
        if request.target == "/v1/applications/token" {
            answer(
                200,
                r#"{"access_token":"tok-123","token_type":"Bearer","expires_in":9223372036854775807}"#,
            )
        } else {
            answer(404, problem(404, "no such connection here"))
        }
    });
    let plan = net.plan(&plan_by_id());
    let output = net
        .replicate_as_app(&server.url())
        .arg("plan")
        .arg(&plan)
        .output()
        .unwrap();
    assert_fails_saying(&output, &["no such connection here"]);
    // The token was used: the run got past the exchange.
    let used = server
        .received()
        .iter()
        .any(|r| r.authorization.as_deref() == Some("Bearer tok-123"));
    assert!(used, "{:?}", server.received());
}

#[test]
fn a_retry_after_longer_than_the_target_timeout_ends_the_run() {
    let net = Net::new();
    let server = net.server(|_| {
        answer_with(
            429,
            &[("retry-after", "100000")],
            r#"{"message":"slow down"}"#,
        )
    });
    let plan = net.plan(&plan_by_id());
    let output = net
        .replicate(&server.url())
        .args(["plan", "--target-timeout", "5s"])
        .arg(&plan)
        .output()
        .unwrap();
    assert_fails_saying(&output, &["429", "Retry-After", "100000 s"]);
}

#[test]
fn a_create_throttled_past_the_target_timeout_fails_that_target() {
    let mut net = Net::new();
    let server = net.proxy(|request| {
        if request.method == "POST" && request.target == "/v1/connections" {
            answer_with(
                429,
                &[("retry-after", "100000")],
                r#"{"message":"slow down"}"#,
            )
        } else {
            Reply::Pass
        }
    });
    let plan = net.plan(PLAN_SHOPS);
    let report = net.report_path();
    let output = net
        .replicate_as_app(&server.url())
        .args([
            "apply",
            "--yes",
            "--quiet",
            "--target-timeout",
            "5s",
            "--report",
        ])
        .arg(&report)
        .arg(&plan)
        .output()
        .unwrap();
    assert_fails_saying(&output, &["POST /connections: 429", "Retry-After"]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let targets = report["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 4, "{report}");
    for target in targets {
        assert_eq!(target["outcome"], "failed", "{target}");
        let error = target["error"].as_str().unwrap();
        assert!(error.contains("Retry-After"), "{error}");
    }
}

// ---------------------------------------------------------------------------------------------
// 5. One retry budget per request, token exchange included.

#[test]
fn a_failing_token_endpoint_is_tried_within_the_requests_budget() {
    let net = Net::new();
    let server = net.server(|_| answer(500, problem(500, "token service down")));
    let retry = RetryPolicy {
        attempts: 4,
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(2),
    };
    let config = ClientConfig {
        base_url: server.url(),
        credentials: Credentials::Application {
            client_id: CLIENT_ID.into(),
            client_secret: Secret::new(CLIENT_SECRET),
        },
        concurrency: 1,
        timeout: Duration::from_secs(10),
        read_timeout: Duration::from_secs(10),
        give_up_after: Duration::from_secs(60),
        allow_insecure_http: false,
        retry,
        ca_certificates: None,
    };
    let client = Client::new(&config, Arc::new(Silent)).unwrap();
    let id = seed::id(TEMPLATE);
    let error = net.rt.block_on(client.connection(id)).unwrap_err();
    let tries = server.count("POST", "/v1/applications/token");
    assert!(
        (1..=retry.attempts).contains(&tries),
        "{tries} token requests for one request of {} tries",
        retry.attempts
    );
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("GET /connections/{TEMPLATE}"))
            && message.contains("POST /applications/token: 500")
            && message.contains("token service down"),
        "{message}"
    );
    assert_eq!(server.count("GET", "/v1/"), 0, "sent without a token");
}

// ---------------------------------------------------------------------------------------------
// 6. Reads have their own, shorter timeout.

#[test]
fn a_server_that_never_answers_a_read_fails_naming_it() {
    let net = Net::new();
    let server = net.server(|_| Reply::Hang);
    let plan = net.plan(&plan_by_id());
    let output = net
        .replicate(&server.url())
        .args(["plan", "--read-timeout", "1s"])
        .arg(&plan)
        .output()
        .unwrap();
    let template = format!("GET /connections/{TEMPLATE}");
    assert_fails_saying(&output, &[&template, "timed out"]);
}
