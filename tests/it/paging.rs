//! Listings that miss nothing: a connection that exists for the whole of a listing is in its
//! result while others are deleted or created (`src/client/pages`). Under the sandbox's
//! `--churn-rate`, which on a `GET /connections` page deletes an unrelated connection the
//! listing has passed (or creates one at the end), a naive offset pager misses copies; re-runs
//! of `apply` never do, so they never copy twice. A list that moves under every read is read
//! again, then given up with a clear error.

use crate::support::seed::{self, WAREHOUSE};
use crate::support::{Api, BULK, HANG_GUARD, read_request};
use replicate::wire::{ConnectionResponse, ConnectionStatus, Page};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

/// Sources, so that the connections list has five pages and more.
const FLEET: usize = 400;

/// A sandbox with `FLEET` extra sources whose every `GET /connections` page churns.
async fn churning() -> Api {
    Api::with(|c| {
        c.extra_sources = FLEET;
        c.churn_rate = 1.0;
        c.fault_seed = Some(12);
    })
    .await
}

/// The connections a pager reading 100 at a time by offset sees, the deleted ones left out;
/// with `include_deleted`, read as `src/client/pages` reads them (without its overlap).
async fn by_offset(api: &Api, include_deleted: bool) -> Vec<ConnectionResponse> {
    let mut seen = Vec::new();
    for offset in (0..).step_by(100) {
        let (status, page) = api
            .get(&format!(
                "/connections?includeDeleted={include_deleted}&limit=100&offset={offset}"
            ))
            .await;
        assert_eq!(status, 200, "{page}");
        let page: Page<ConnectionResponse> = serde_json::from_value(page).unwrap();
        let n = page.data.len();
        seen.extend(page.data);
        if n < 100 {
            break;
        }
    }
    seen.retain(|c| c.status != ConnectionStatus::Deprecated);
    seen
}

/// How many live copies each source has into the template's destination, read with
/// `includeDeleted` (churn only ever deletes softly, so that listing does not shift).
async fn copies_per_source(api: &Api) -> BTreeMap<Uuid, usize> {
    let mut counts = BTreeMap::new();
    for c in by_offset(api, true).await {
        if c.destination_id == seed::id(WAREHOUSE) && c.connection_id != seed::id(seed::TEMPLATE) {
            *counts.entry(c.source_id).or_insert(0) += 1;
        }
    }
    counts
}

/// `replicate ARGS…` against `url`, run off the runtime that serves the sandbox.
async fn replicate(url: &str, dir: &std::path::Path, args: &[&str]) -> Output {
    let mut cmd = assert_cmd::Command::cargo_bin("replicate").unwrap();
    cmd.env_remove("AIRBYTE_CLIENT_ID")
        .env_remove("AIRBYTE_CLIENT_SECRET")
        .env("AIRBYTE_TOKEN", seed::TOKEN)
        .env("AIRBYTE_URL", url)
        .env("NO_COLOR", "1")
        .current_dir(dir)
        .args(args)
        .timeout(HANG_GUARD);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// `GET /_sandbox/stats` as numbers: the list pages read, the churns, the live connections
/// and the creates.
async fn counters(api: &Api) -> [u64; 4] {
    let stats = api.stats().await;
    let number = |v: &Value| v.as_u64().unwrap_or(0);
    [
        number(&stats["requests"]["GET /connections"]),
        number(&stats["faults"]["churned"]),
        number(&stats["connections"]),
        number(&stats["requests"]["POST /connections"]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_runs_while_connections_churn_never_copy_twice() {
    let api = churning().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bulk.yaml"), BULK).unwrap();
    let url = api.sandbox.url();
    let first = replicate(&url, dir.path(), &["apply", "--yes", "bulk.yaml"]).await;
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        stdout.contains(&format!(
            "Apply: {FLEET} created, 0 updated, 0 unchanged, 0 failed."
        )),
        "{stdout}{}",
        String::from_utf8_lossy(&first.stderr)
    );

    let [pages_before, churned_before, live_before, creates_before] = counters(&api).await;
    for run in 1..=20 {
        let output = replicate(&url, dir.path(), &["apply", "--yes", "bulk.yaml"]).await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success()
                && stdout.contains(&format!("Apply: 0 created, 0 updated, {FLEET} unchanged")),
            "run {run}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let [pages, churned, live, creates] = counters(&api).await;
    assert_eq!(creates, creates_before, "no run sent a create");
    let (pages, churned) = (pages - pages_before, churned - churned_before);
    assert_eq!(churned, pages, "rate 1: every list page churned");
    // Each churn deleted one unrelated connection or created one; no copy came or went, so
    // the live count moved by creates − deletes.
    let deletes = (churned + live_before - live) / 2;
    // About 40 with this seed; read without includeDeleted, each would have hidden an item.
    assert!(
        deletes >= 10,
        "{deletes} deletes ahead of the listings' offsets in {pages} pages of 20 runs"
    );

    let copies = copies_per_source(&api).await;
    assert_eq!(copies.len(), FLEET, "every source has its copy");
    assert!(
        copies.values().all(|&n| n == 1),
        "a source was copied twice: {:?}",
        copies.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
}

/// The knob bites: under the same churn, a pager without `includeDeleted` misses copies that
/// existed all along, and one with it misses none.
#[tokio::test]
async fn churn_hides_copies_from_a_naive_pager_only() {
    let api = churning().await;
    let mut copies = BTreeSet::new();
    for offset in [0, 100] {
        let (_, sources) = api
            .get(&format!("/sources?limit=100&offset={offset}"))
            .await;
        for source in sources["data"].as_array().unwrap() {
            if source["name"].as_str().unwrap().starts_with("bulk-") {
                let body = json!({ "sourceId": source["sourceId"], "destinationId": WAREHOUSE });
                let created = api.create(&body).await;
                copies.insert(created["connectionId"].as_str().unwrap().parse().unwrap());
            }
        }
    }
    assert!(copies.len() > 190, "two pages of copies");
    // The copies come after the unrelated connections churn deletes, so a delete on any page
    // but the first moves a copy back onto a page already read.
    let mut naive_missed = 0;
    for _ in 0..10 {
        let missed = |seen: Vec<ConnectionResponse>| {
            let seen: BTreeSet<Uuid> = seen.iter().map(|c| c.connection_id).collect();
            copies.difference(&seen).count()
        };
        naive_missed += missed(by_offset(&api, false).await);
        assert_eq!(
            missed(by_offset(&api, true).await),
            0,
            "with includeDeleted, a delete moves nothing"
        );
    }
    assert!(naive_missed > 0, "ten naive listings missed nothing");
}

/// A `/sources` list, 100 items at a time, that loses its first `shift` items before each read
/// at a nonzero offset for as long as `shifting` allows; the offsets it was asked for.
#[derive(Default)]
struct Shifting {
    list: Vec<u128>,
    offsets: Vec<usize>,
}

/// Serves `GET /v1/sources` from `state` on a random loopback port; `shift(nth request at a
/// nonzero offset)` items leave the front of the list before that request is answered.
async fn shifting_server(
    state: Arc<Mutex<Shifting>>,
    shift: fn(usize) -> usize,
) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let state = state.clone();
            tokio::spawn(async move {
                while let Ok(Some(request)) = read_request(&mut socket).await {
                    let offset: usize = request
                        .target
                        .split(['?', '&'])
                        .find_map(|pair| pair.strip_prefix("offset="))
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                    let body = {
                        let mut state = state.lock().unwrap();
                        if offset > 0 {
                            let nth = state.offsets.iter().filter(|o| **o > 0).count();
                            let gone = shift(nth).min(state.list.len());
                            state.list.drain(..gone);
                        }
                        state.offsets.push(offset);
                        let page = state.list.iter().skip(offset).take(100);
                        let data: Vec<Value> = page
                            .map(|n| {
                                json!({
                                    "sourceId": Uuid::from_u128(*n),
                                    "name": format!("moving-{n:03}"),
                                    "sourceType": "postgres",
                                    "workspaceId": seed::WORKSPACE,
                                    "configuration": {},
                                    "createdAt": 0,
                                    "definitionId": "decd338e-5647-4c0b-adf4-da0e75f5a750",
                                })
                            })
                            .collect();
                        json!({ "data": data, "next": "", "previous": "" }).to_string()
                    };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    if socket.write_all(head.as_bytes()).await.is_err()
                        || socket.write_all(body.as_bytes()).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// `replicate ls sources` against a list of 300 that `shift` moves; its output and the
/// offsets asked for.
async fn ls_moving_sources(shift: fn(usize) -> usize) -> (Output, Vec<usize>) {
    let state = Arc::new(Mutex::new(Shifting {
        list: (0..300).collect(),
        offsets: Vec::new(),
    }));
    let addr = shifting_server(state.clone(), shift).await;
    let dir = tempfile::tempdir().unwrap();
    let output = replicate(&format!("http://{addr}/v1"), dir.path(), &["ls", "sources"]).await;
    let mut offsets = state.lock().unwrap().offsets.clone();
    offsets.sort_unstable();
    (output, offsets)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_that_shifted_once_is_read_again_whole() {
    // Ten sources are gone by the time the second page is read: past the overlap.
    let (output, offsets) = ls_moving_sources(|nth| if nth == 0 { 10 } else { 0 }).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let names: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("moving-")))
        .collect();
    let expected: Vec<String> = (10..300).map(|n| format!("moving-{n:03}")).collect();
    assert_eq!(names, expected, "every source still there, once");
    assert_eq!(
        offsets,
        [0, 0, 90, 90, 180, 180, 270, 270, 360, 360],
        "two passes of a first page then four at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_that_shifts_under_every_read_is_given_up_clearly() {
    let (output, offsets) = ls_moving_sources(|_| 10).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "GET /sources?limit=100&offset=0: the sources changed too fast to list reliably: 3 \
             times, a page held none of the last 10 items of the page before it (more than 9 \
             sources removed between the two reads)"
        ),
        "{stderr}"
    );
    assert_eq!(offsets.len(), 15, "three passes of five pages: {offsets:?}");
}
