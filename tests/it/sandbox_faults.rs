//! The sandbox's fault knobs over real HTTP: each test starts its own sandbox with rates of 0 or
//! 1 (or a fixed seed) so that what it injects is certain, then checks what a client sees and
//! what the sandbox's state and `/_sandbox/stats` say happened.

use crate::support::seed::{SHOPS, TEMPLATE, TOKEN, WAREHOUSE, WORKSPACE};
use crate::support::{Api, HANG_GUARD};
use clap::Parser;
use replicate::sandbox::{Sandbox, SandboxArgs, SandboxConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a client saw: a status and the body's text, or no answer at all.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Answer(StatusCode, String),
    NoAnswer(String),
}

impl Seen {
    /// The status, or `"none"` when the connection closed without one.
    fn label(&self) -> String {
        match self {
            Seen::Answer(status, _) => status.as_u16().to_string(),
            Seen::NoAnswer(_) => "none".to_string(),
        }
    }

    fn json(&self) -> Value {
        match self {
            Seen::Answer(_, text) => {
                serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
            }
            Seen::NoAnswer(e) => panic!("no answer: {e}"),
        }
    }
}

/// A sandbox with faults, and a client that sends the seed's static token and reports what it
/// saw, a lost answer included.
struct Faulty {
    api: Api,
}

impl Faulty {
    async fn with(configure: impl FnOnce(&mut SandboxConfig)) -> Faulty {
        Faulty {
            api: Api::with(configure).await,
        }
    }

    fn url(&self, path: &str) -> String {
        self.api.url(path)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Seen {
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                match response.text().await {
                    Ok(text) => Seen::Answer(status, text),
                    Err(e) => Seen::NoAnswer(format!("{e:?}")),
                }
            }
            Err(e) => Seen::NoAnswer(format!("{e:?}")),
        }
    }

    async fn get_as(&self, token: &str, path: &str) -> Seen {
        self.send(self.api.http.get(self.url(path)).bearer_auth(token))
            .await
    }

    async fn get(&self, path: &str) -> Seen {
        self.get_as(TOKEN, path).await
    }

    async fn post(&self, path: &str, body: &Value) -> Seen {
        self.send(
            self.api
                .http
                .post(self.url(path))
                .bearer_auth(TOKEN)
                .json(body),
        )
        .await
    }

    async fn patch(&self, path: &str, body: &Value) -> Seen {
        self.send(
            self.api
                .http
                .patch(self.url(path))
                .bearer_auth(TOKEN)
                .json(body),
        )
        .await
    }

    async fn token(&self) -> Seen {
        self.send(self.api.token_request()).await
    }

    async fn stats(&self) -> Value {
        self.api.stats().await
    }

    /// The names of the live connections.
    async fn connection_names(&self) -> Vec<String> {
        self.api
            .connections()
            .await
            .into_iter()
            .map(|c| c.name)
            .collect()
    }
}

fn create_body(source: &str) -> Value {
    json!({"sourceId": source, "destinationId": WAREHOUSE})
}

/// Asserts Airbyte's problem body for an injected 500 or 503.
fn assert_injected_failure(seen: &Seen) {
    let Seen::Answer(status, _) = seen else {
        panic!("expected 500 or 503, got {seen:?}");
    };
    let body = seen.json();
    let title = match status.as_u16() {
        500 => "unexpected-problem",
        503 => "service-unavailable",
        _ => panic!("expected 500 or 503, got {seen:?}"),
    };
    assert_eq!(body["status"], status.as_u16());
    assert_eq!(body["title"], title);
    assert_eq!(
        body["type"], "https://reference.airbyte.com/reference/errors",
        "the problem catalogue's type for both"
    );
    assert!(body["detail"].is_string());
    assert!(
        body["data"]["message"]
            .as_str()
            .unwrap()
            .contains("--fail-rate")
    );
}

#[tokio::test]
async fn fail_rate_one_fails_every_api_call_without_effect() {
    let api = Faulty::with(|c| {
        c.fail_rate = 1.0;
        c.fault_seed = Some(1);
    })
    .await;
    let mut seen = Vec::new();
    for source in SHOPS {
        seen.push(api.post("/connections", &create_body(source)).await);
    }
    seen.push(
        api.patch(
            &format!("/connections/{TEMPLATE}"),
            &json!({"name": "renamed"}),
        )
        .await,
    );
    for _ in 0..8 {
        seen.push(api.get("/workspaces").await);
    }
    seen.push(api.token().await);
    seen.push(api.send(api.api.http.get(api.url("/health"))).await);
    seen.push(api.get_as("not-a-token", "/sources").await);
    for s in &seen {
        assert_injected_failure(s);
    }
    let labels: Vec<String> = seen.iter().map(Seen::label).collect();
    assert!(labels.contains(&"500".to_string()), "{labels:?}");
    assert!(labels.contains(&"503".to_string()), "{labels:?}");

    let stats = api.stats().await;
    assert_eq!(stats["connections"], 1, "no create took effect: {stats}");
    assert_eq!(stats["faults"]["failed"], seen.len());
    assert_eq!(stats["faults"]["seed"], 1);
    let counted: u64 = ["500", "503"]
        .iter()
        .map(|s| stats["responses"][s].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(counted, seen.len() as u64, "{stats}");
    assert_eq!(
        stats["responses"].as_object().unwrap().len(),
        2,
        "only 500 and 503: {stats}"
    );
    assert_eq!(
        stats["requests"]["POST /connections"], 4,
        "faulted requests keep their route: {stats}"
    );
    assert_eq!(stats["requests"]["POST /applications/token"], 1);
}

#[tokio::test]
async fn lost_creates_and_patches_take_effect_all_the_same() {
    let api = Faulty::with(|c| {
        c.lost_response_rate = 1.0;
        c.fault_seed = Some(3);
    })
    .await;
    let mut lost = Vec::new();
    for source in SHOPS {
        lost.push(api.post("/connections", &create_body(source)).await);
    }
    for i in 0..4 {
        lost.push(
            api.patch(
                &format!("/connections/{TEMPLATE}"),
                &json!({"name": format!("renamed {i}")}),
            )
            .await,
        );
    }
    for seen in &lost {
        match seen {
            Seen::NoAnswer(_) => {}
            Seen::Answer(status, text) => {
                assert_eq!(*status, 504, "{text}");
                assert_eq!(text, "upstream request timeout");
            }
        }
    }
    let labels: Vec<String> = lost.iter().map(Seen::label).collect();
    let dropped = labels.iter().filter(|l| *l == "none").count();
    assert!(
        dropped > 0 && dropped < lost.len(),
        "both kinds of loss: {labels:?}"
    );

    let names = api.connection_names().await;
    assert_eq!(names.len(), 5, "every lost create took effect: {names:?}");
    assert!(
        names.contains(&"shop-eu <> Warehouse".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"renamed 3".to_string()),
        "the last lost patch took effect: {names:?}"
    );

    // Only successful writes lose their answer; reads and refused writes answer as usual.
    let refused = api
        .post("/connections", &json!({"sourceId": SHOPS[0]}))
        .await;
    assert_eq!(refused.label(), "400", "{refused:?}");
    let read = api.get(&format!("/connections/{TEMPLATE}")).await;
    assert_eq!(read.json()["name"], "renamed 3");

    let stats = api.stats().await;
    assert_eq!(stats["faults"]["lost"], 8, "{stats}");
    assert_eq!(stats["responses"]["dropped"], dropped, "{stats}");
    assert_eq!(stats["responses"]["504"], lost.len() - dropped, "{stats}");
    assert_eq!(stats["responses"]["400"], 1, "{stats}");
    assert_eq!(stats["connections"], 5);
}

#[tokio::test]
async fn lost_tag_writes_take_effect_and_a_retried_create_meets_409() {
    let api = Faulty::with(|c| {
        c.lost_response_rate = 1.0;
        c.fault_seed = Some(5);
    })
    .await;
    let tag = json!({"name": "replicate:shops", "color": "4F46E5",
                     "workspaceId": WORKSPACE});
    let first = api.post("/tags", &tag).await;
    assert!(
        matches!(first.label().as_str(), "none" | "504"),
        "{first:?}"
    );
    let retried = api.post("/tags", &tag).await;
    assert_eq!(
        retried.label(),
        "409",
        "the lost create took effect: {retried:?}"
    );
    assert_eq!(retried.json()["type"], "error:tag-already-exists");
    let listed = api.get("/tags").await.json();
    let tags = listed["data"].as_array().unwrap();
    assert_eq!(tags.len(), 1, "{listed}");
    let path = format!("/tags/{}", tags[0]["tagId"].as_str().unwrap());
    let patched = api
        .patch(&path, &json!({"name": "owner", "color": "000000"}))
        .await;
    assert!(
        matches!(patched.label().as_str(), "none" | "504"),
        "{patched:?}"
    );
    assert_eq!(api.get(&path).await.json()["name"], "owner");
    let deleted = api
        .send(api.api.http.delete(api.url(&path)).bearer_auth(TOKEN))
        .await;
    assert!(
        matches!(deleted.label().as_str(), "none" | "504"),
        "{deleted:?}"
    );
    assert_eq!(
        api.get(&path).await.label(),
        "404",
        "the lost delete took effect"
    );
    let stats = api.stats().await;
    assert_eq!(stats["faults"]["lost"], 3, "{stats}");
    assert_eq!(stats["requests"]["POST /tags"], 2, "{stats}");
}

#[tokio::test]
async fn tag_routes_fail_and_are_rate_limited_like_the_others() {
    let failing = Faulty::with(|c| {
        c.fail_rate = 1.0;
        c.fault_seed = Some(2);
    })
    .await;
    let tag = json!({"name": "t", "color": "000000",
                     "workspaceId": WORKSPACE});
    assert_injected_failure(&failing.post("/tags", &tag).await);
    assert_injected_failure(&failing.get("/tags").await);
    assert_eq!(failing.stats().await["faults"]["failed"], 2);

    // A bucket of one, refilled once a second: the second request comes well within that.
    let limited = Faulty::with(|c| c.rate_limit = Some(1)).await;
    let labels: Vec<String> = [
        limited.post("/tags", &tag).await,
        limited.get("/tags").await,
    ]
    .iter()
    .map(Seen::label)
    .collect();
    assert_eq!(labels, ["200", "429"]);
    assert_eq!(limited.stats().await["faults"]["rate_limited"], 1);
}

#[tokio::test]
async fn a_dropped_answer_is_a_closed_connection_with_no_status() {
    // With seed 3, one of the first creates is dropped: check the transport error a client gets.
    let api = Faulty::with(|c| {
        c.lost_response_rate = 1.0;
        c.fault_seed = Some(3);
    })
    .await;
    let mut outcome = None;
    for source in SHOPS {
        if let Seen::NoAnswer(e) = api.post("/connections", &create_body(source)).await {
            outcome = Some(e);
            break;
        }
    }
    let error = outcome.expect("seed 3 drops one of four creates");
    assert!(
        error.contains("IncompleteMessage"),
        "a client sees the connection close before any answer: {error}"
    );
    let stats = api.stats().await;
    assert_eq!(stats["responses"]["dropped"], 1, "{stats}");
    assert_eq!(
        stats["faults"]["lost"], stats["requests"]["POST /connections"],
        "every create lost its answer: {stats}"
    );
}

#[tokio::test]
async fn the_rate_limit_is_a_bucket_per_token() {
    const N: usize = 5;
    let api = Faulty::with(|c| c.rate_limit = Some(5)).await;
    let burst: Vec<reqwest::Response> = futures::future::join_all((0..3 * N).map(|_| {
        api.api
            .http
            .get(api.url("/workspaces"))
            .bearer_auth(TOKEN)
            .send()
    }))
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect();
    let ok = burst.iter().filter(|r| r.status() == 200).count();
    let limited: Vec<&reqwest::Response> = burst.iter().filter(|r| r.status() == 429).collect();
    assert_eq!(ok + limited.len(), 3 * N, "only 200 or 429");
    assert!(ok >= N, "a full bucket passes a burst of {N}: {ok}");
    assert!(ok <= 2 * N, "{ok} of {} passed", 3 * N);
    assert!(!limited.is_empty());
    for response in &limited {
        assert!(response.headers().get("retry-after").is_none());
        assert_eq!(response.headers()["content-type"], "application/json");
    }
    let limited_count = limited.len();
    let bodies = futures::future::join_all(
        burst
            .into_iter()
            .filter(|r| r.status() == 429)
            .map(reqwest::Response::text),
    )
    .await;
    for body in bodies {
        assert_eq!(
            body.unwrap(),
            r#"{"message":"You are being rate limited."}"#
        );
    }

    // Another token has its own budget; bad tokens get their 401; open routes are not limited.
    let token = api.api.token().await;
    assert_eq!(api.get_as(&token, "/workspaces").await.label(), "200");
    for _ in 0..2 * N {
        assert_eq!(
            api.get_as("not-a-token", "/workspaces").await.label(),
            "401"
        );
        let health = api.send(api.api.http.get(api.url("/health"))).await;
        assert_eq!(health.label(), "200");
    }

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        api.get("/workspaces").await.label(),
        "200",
        "the bucket refills"
    );

    let stats = api.stats().await;
    assert_eq!(stats["faults"]["rate_limited"], limited_count);
    assert_eq!(stats["responses"]["429"], limited_count);
    assert_eq!(stats["responses"]["401"], 2 * N);
}

#[tokio::test]
async fn tokens_expire_after_token_ttl() {
    let api = Faulty::with(|c| c.token_ttl = Duration::from_secs(1)).await;
    let issued = api.token().await.json();
    assert_eq!(issued["expires_in"], 1);
    let token = issued["access_token"].as_str().unwrap();
    assert_eq!(api.get_as(token, "/workspaces").await.label(), "200");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let refused = api.get_as(token, "/workspaces").await;
    assert_eq!(refused.label(), "401");
    assert_eq!(
        refused.json()["data"]["message"],
        "The access token has expired."
    );
    let stats = api.stats().await;
    assert_eq!(stats["requests"]["POST /applications/token"], 1, "{stats}");
    assert_eq!(
        stats["responses"]["401"], 1,
        "only the expired token: {stats}"
    );
}

#[tokio::test]
async fn a_delayed_create_writes_at_the_end_of_the_delay() {
    // Long enough that the check below falls inside it even on a loaded machine.
    let delay = Duration::from_secs(3);
    let api = Faulty::with(|c| c.create_delay = delay).await;
    let body = create_body(SHOPS[0]);
    let started = Instant::now();
    let (created, mid_flight) = tokio::join!(api.post("/connections", &body), async {
        // As soon as the create is in flight, and so inside its delay.
        loop {
            let stats = api.stats().await;
            if stats["in_flight"] == 1 {
                return stats;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    assert_eq!(
        mid_flight["connections"], 1,
        "not yet written: {mid_flight}"
    );
    assert_eq!(mid_flight["in_flight"], 1, "{mid_flight}");
    assert_eq!(created.label(), "200", "{created:?}");
    assert!(started.elapsed() >= delay);
    let stats = api.stats().await;
    assert_eq!(stats["connections"], 2, "{stats}");
    assert_eq!(stats["faults"]["delayed"], 1, "{stats}");
    let read = api.get(&format!("/connections/{TEMPLATE}")).await;
    assert_eq!(read.label(), "200", "reads are not delayed");
}

#[tokio::test]
async fn a_delayed_create_completes_after_the_client_gives_up() {
    let api = Faulty::with(|c| c.create_delay = Duration::from_millis(500)).await;
    let impatient = api
        .api
        .http
        .post(api.url("/connections"))
        .bearer_auth(TOKEN)
        .timeout(Duration::from_millis(100))
        .json(&create_body(SHOPS[1]));
    let seen = api.send(impatient).await;
    assert_eq!(seen.label(), "none", "the client timed out: {seen:?}");
    let stats = api.stats().await;
    assert_eq!(stats["connections"], 1, "{stats}");
    assert_eq!(stats["faults"]["delayed"], 1, "{stats}");
    // The server finishes the create on its own, however long the machine makes it take.
    let started = Instant::now();
    while !api
        .connection_names()
        .await
        .contains(&"shop-us <> Warehouse".to_string())
    {
        assert!(
            started.elapsed() < HANG_GUARD,
            "the server never finished the create"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What a naive client sees paging `GET /connections` by offset: the ids of every page, until a
/// short one.
async fn page_by_offset(api: &Faulty, limit: usize) -> (Vec<String>, usize) {
    let mut seen = Vec::new();
    let mut pages = 0;
    for offset in (0..).step_by(limit) {
        let page = api
            .get(&format!("/connections?limit={limit}&offset={offset}"))
            .await
            .json();
        pages += 1;
        let data = page["data"].as_array().unwrap();
        seen.extend(
            data.iter()
                .map(|c| c["connectionId"].as_str().unwrap().to_string()),
        );
        if data.len() < limit {
            return (seen, pages);
        }
    }
    unreachable!()
}

#[tokio::test]
async fn churn_shifts_offset_pages_under_a_listing_without_touching_copies() {
    let api = Faulty::with(|c| {
        c.churn_rate = 1.0;
        c.fault_seed = Some(11);
    })
    .await;
    let mut copies = vec![TEMPLATE.to_string()];
    for _ in 0..6 {
        for source in SHOPS {
            let created = api.post("/connections", &create_body(source)).await.json();
            copies.push(created["connectionId"].as_str().unwrap().to_string());
        }
    }
    let before = api.stats().await["connections"].as_u64().unwrap();
    assert_eq!(before, 25 + 10, "ten unrelated connections to begin with");

    let (seen, pages) = page_by_offset(&api, 5).await;
    let missed: Vec<&String> = copies.iter().filter(|c| !seen.contains(c)).collect();
    assert!(
        !missed.is_empty(),
        "a delete before the offset made the pager skip a copy"
    );
    for id in &copies {
        let copy = api.get(&format!("/connections/{id}")).await.json();
        assert_ne!(
            copy["status"], "deprecated",
            "churn never deletes a copy: {copy}"
        );
    }
    let stats = api.stats().await;
    assert_eq!(
        stats["faults"]["churned"], pages,
        "rate 1: a churn on every page: {stats}"
    );
    let destinations = api.get("/destinations").await.json();
    let churn = destinations["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "churn")
        .expect("a churn destination")
        .clone();
    let everything = api
        .get("/connections?includeDeleted=true&limit=100")
        .await
        .json();
    for c in everything["data"].as_array().unwrap() {
        let unrelated = c["name"].as_str().unwrap().starts_with("churn-");
        assert_eq!(
            unrelated,
            c["destinationId"] == churn["destinationId"],
            "{c}"
        );
    }
}

#[tokio::test]
async fn without_churn_a_listing_holds_still() {
    let api = Faulty::with(|c| c.fault_seed = Some(11)).await;
    for source in SHOPS {
        api.post("/connections", &create_body(source)).await;
    }
    let (seen, _) = page_by_offset(&api, 2).await;
    assert_eq!(seen.len(), 5, "{seen:?}");
    let destinations = api.get("/destinations").await.json();
    assert_eq!(destinations["data"].as_array().unwrap().len(), 1);
    assert_eq!(api.stats().await["faults"]["churned"], 0);
}

/// The labels of a fixed mix of reads and writes against a sandbox with the given seed.
async fn replay(seed: u64) -> Vec<String> {
    let api = Faulty::with(|c| {
        c.fail_rate = 0.3;
        c.lost_response_rate = 0.5;
        c.fault_seed = Some(seed);
    })
    .await;
    let mut labels = Vec::new();
    for i in 0..24 {
        let outcome = match i % 3 {
            0 => api.get("/workspaces").await,
            1 => api.post("/connections", &create_body(SHOPS[i % 4])).await,
            _ => {
                api.patch(
                    &format!("/connections/{TEMPLATE}"),
                    &json!({"name": format!("n{i}")}),
                )
                .await
            }
        };
        labels.push(outcome.label());
    }
    let stats = api.stats().await;
    assert_eq!(stats["faults"]["seed"], seed);
    let count = |kinds: &[&str]| {
        labels
            .iter()
            .filter(|l| kinds.contains(&l.as_str()))
            .count()
    };
    assert_eq!(stats["faults"]["failed"], count(&["500", "503"]), "{stats}");
    assert_eq!(stats["faults"]["lost"], count(&["none", "504"]), "{stats}");
    labels
}

#[tokio::test]
async fn the_same_fault_seed_repeats_the_same_faults() {
    let first = replay(42).await;
    let second = replay(42).await;
    assert_eq!(first, second);
    for kind in ["200", "none", "504"] {
        assert!(first.contains(&kind.to_string()), "{kind} in {first:?}");
    }
    assert!(first.iter().any(|l| l == "500" || l == "503"), "{first:?}");
    assert_ne!(first, replay(7).await, "another seed, other faults");
}

#[tokio::test]
async fn without_a_fault_seed_one_is_drawn_and_reported() {
    let api = Faulty::with(|c| c.fail_rate = 0.5).await;
    let stats = api.stats().await;
    assert_eq!(stats["faults"]["seed"], api.api.sandbox.fault_seed());
    assert_eq!(stats["faults"]["failed"], 0);
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    sandbox: SandboxArgs,
}

fn parse(args: &[&str]) -> Result<SandboxArgs, String> {
    Cli::try_parse_from(std::iter::once("sandbox").chain(args.iter().copied()))
        .map(|cli| cli.sandbox)
        .map_err(|e| e.to_string())
}

#[test]
fn fault_flags_are_validated_and_default_to_off() {
    let config = SandboxConfig::from_args(&parse(&[]).unwrap()).unwrap();
    assert!(config.active_faults().is_empty(), "{config:?}");
    assert_eq!(config.token_ttl, Duration::from_secs(900));
    assert_eq!(config.fault_seed, None);
    assert!(
        SandboxConfig::default_on_free_port()
            .active_faults()
            .is_empty()
    );

    let args = parse(&[
        "--fail-rate",
        "0.25",
        "--lost-response-rate",
        "1",
        "--rate-limit",
        "10",
        "--token-ttl",
        "30s",
        "--create-delay",
        "2s",
        "--churn-rate",
        "0.5",
        "--job-fail-rate",
        "0.1",
        "--fault-seed",
        "9",
    ])
    .unwrap();
    let config = SandboxConfig::from_args(&args).unwrap();
    assert_eq!(
        config.active_faults(),
        [
            "--fail-rate 0.25",
            "--lost-response-rate 1",
            "--rate-limit 10",
            "--token-ttl 30s",
            "--create-delay 2s",
            "--churn-rate 0.5",
            "--job-fail-rate 0.1"
        ]
    );
    assert_eq!(config.fault_seed, Some(9));

    for (flags, complaint) in [
        (["--fail-rate", "1.5"], "--fail-rate"),
        (
            ["--lost-response-rate=-0.1", "--fault-seed=1"],
            "--lost-response-rate",
        ),
        (["--fail-rate", "often"], "--fail-rate"),
        (["--rate-limit", "0"], "--rate-limit"),
        (["--churn-rate", "2"], "--churn-rate"),
        (["--job-fail-rate", "1.01"], "--job-fail-rate"),
        (["--job-duration", "soon"], "--job-duration"),
    ] {
        let error = parse(&flags).err().unwrap();
        assert!(error.contains(complaint), "{flags:?}: {error}");
    }
    let error = SandboxConfig::from_args(&parse(&["--token-ttl", "0"]).unwrap())
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("--token-ttl 0:"), "{error}");
}

#[tokio::test]
async fn configs_built_in_code_are_validated_too() {
    type Configure = fn(&mut SandboxConfig);
    let cases: [(Configure, &str); 5] = [
        (|c| c.fail_rate = f64::NAN, "--fail-rate NaN:"),
        (|c| c.lost_response_rate = 2.0, "--lost-response-rate 2:"),
        (|c| c.rate_limit = Some(0), "--rate-limit 0:"),
        (|c| c.token_ttl = Duration::ZERO, "--token-ttl 0:"),
        (|c| c.churn_rate = -0.5, "--churn-rate -0.5:"),
    ];
    for (configure, expected) in cases {
        let mut config = SandboxConfig::default_on_free_port();
        configure(&mut config);
        let error = Sandbox::start(config).await.unwrap_err().to_string();
        assert!(error.starts_with(expected), "{error}");
    }
}

#[test]
fn the_startup_output_names_the_active_faults_and_the_seed() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_replicate"))
        .args([
            "sandbox",
            "--listen",
            "127.0.0.1:0",
            "--fail-rate",
            "0.1",
            "--rate-limit",
            "20",
            "--fault-seed",
            "1234",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        let last = line.starts_with("stats:");
        lines.push(line);
        if last {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        lines[0].starts_with("listening on http://127.0.0.1:"),
        "{lines:?}"
    );
    assert_eq!(
        lines[lines.len() - 2],
        "faults:        --fail-rate 0.1, --rate-limit 20 (replay with --fault-seed 1234)"
    );
}

/// The end states of `n` syncs of the template, each started once the previous one ended.
async fn job_outcomes(seed: u64, rate: f64, n: usize) -> (Vec<String>, Value) {
    let api = Faulty::with(|c| {
        c.job_fail_rate = rate;
        c.job_duration = Duration::ZERO;
        c.fault_seed = Some(seed);
    })
    .await;
    let sync = json!({"connectionId": TEMPLATE, "jobType": "sync"});
    let mut outcomes = Vec::new();
    for _ in 0..n {
        let job = api.post("/jobs", &sync).await.json();
        let read = api.get(&format!("/jobs/{}", job["jobId"])).await.json();
        outcomes.push(read["status"].as_str().unwrap().to_string());
    }
    (outcomes, api.stats().await)
}

#[tokio::test]
async fn job_failures_follow_the_fault_seed() {
    let (first, stats) = job_outcomes(11, 0.5, 24).await;
    assert!(first.contains(&"failed".to_string()), "{first:?}");
    assert!(first.contains(&"succeeded".to_string()), "{first:?}");
    let failed = first.iter().filter(|s| *s == "failed").count();
    assert_eq!(stats["faults"]["jobs_failed"], failed, "{stats}");
    assert_eq!(
        job_outcomes(11, 0.5, 24).await.0,
        first,
        "the same seed, the same ends"
    );
    let (all, _) = job_outcomes(5, 1.0, 4).await;
    assert_eq!(all, ["failed"; 4]);
    let (none, stats) = job_outcomes(5, 0.0, 4).await;
    assert_eq!(none, ["succeeded"; 4]);
    assert_eq!(stats["faults"]["jobs_failed"], 0);
}

#[tokio::test]
async fn a_lost_job_start_started_the_job_all_the_same() {
    let api = Faulty::with(|c| {
        c.lost_response_rate = 1.0;
        c.fault_seed = Some(4);
    })
    .await;
    let seen = api
        .post(
            "/jobs",
            &json!({"connectionId": TEMPLATE, "jobType": "sync"}),
        )
        .await;
    match &seen {
        Seen::NoAnswer(_) => {}
        Seen::Answer(status, text) => assert_eq!(*status, 504, "{text}"),
    }
    let listed = api
        .get(&format!("/jobs?connectionId={TEMPLATE}&status=pending"))
        .await
        .json();
    let running = api
        .get(&format!("/jobs?connectionId={TEMPLATE}&status=running"))
        .await
        .json();
    let found =
        listed["data"].as_array().unwrap().len() + running["data"].as_array().unwrap().len();
    assert_eq!(found, 1, "the job was started: {listed} {running}");
    let again = api
        .post(
            "/jobs",
            &json!({"connectionId": TEMPLATE, "jobType": "sync"}),
        )
        .await;
    assert_eq!(
        again.label(),
        "409",
        "a retried start meets the running sync"
    );
    assert_eq!(api.stats().await["faults"]["lost"], 1);
}
