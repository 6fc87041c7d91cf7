//! Request accounting for `GET /_sandbox/stats`, and the one layer every API request passes.
//!
//! [`observe`] wraps the whole server: it counts a request in flight, applies `--latency`, runs
//! the request, and records its route template and status. The route template comes from
//! [`tag_route`], which runs inside the router (where the matched route is known) and hands the
//! template back on the response. The fault knobs ([`super::faults`]) sit inside these layers,
//! so a faulted answer is counted like any other: by its status, or as `"dropped"` when the
//! connection is closed without an answer (the fault layer marks such an answer [`Dropped`]).
//! `/_sandbox/*` is left out of every count, of the latency and of every fault. The layer's
//! state is the [`Stats`] alone.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Counters since start-up, and the latency added to every API answer.
#[derive(Debug, Default)]
pub struct Stats {
    latency: Duration,
    counts: Mutex<Counts>,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
}

/// Marks a response whose connection is to be dropped, so the accounting counts it as
/// `"dropped"` rather than under the status it will never send.
#[derive(Debug, Clone, Copy)]
pub struct Dropped;

#[derive(Debug, Default)]
struct Counts {
    requests: BTreeMap<String, u64>,
    responses: BTreeMap<u16, u64>,
    /// Answers lost by closing the connection: they have no status.
    dropped: u64,
}

/// `METHOD /template` of the route that answered, attached to the response by [`tag_route`].
#[derive(Debug, Clone)]
struct RouteTemplate(String);

/// Leaves the in-flight count when dropped, also when the client goes away mid-request.
struct InFlight<'a>(&'a Stats);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Stats {
    /// `latency` (`--latency`) is added to every API request.
    pub fn new(latency: Duration) -> Self {
        Self {
            latency,
            ..Self::default()
        }
    }

    fn enter(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(self)
    }

    /// Counts a request under its route, and its answer by status (`None`: dropped).
    fn record(&self, route: String, status: Option<u16>) {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *counts.requests.entry(route).or_default() += 1;
        match status {
            Some(status) => *counts.responses.entry(status).or_default() += 1,
            None => counts.dropped += 1,
        }
    }

    /// The body of `GET /_sandbox/stats`, but for its `faults` object.
    pub fn snapshot(&self, live_connections: usize) -> Value {
        let counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut responses: BTreeMap<String, u64> = counts
            .responses
            .iter()
            .map(|(status, n)| (status.to_string(), *n))
            .collect();
        if counts.dropped > 0 {
            responses.insert("dropped".to_string(), counts.dropped);
        }
        json!({
            "requests": counts.requests,
            "responses": responses,
            "in_flight": self.in_flight.load(Ordering::SeqCst),
            "max_in_flight": self.max_in_flight.load(Ordering::SeqCst),
            "connections": live_connections,
        })
    }
}

/// The outer layer: in-flight accounting, latency, and the counts.
pub async fn observe(State(counters): State<Arc<Stats>>, request: Request, next: Next) -> Response {
    if request.uri().path().starts_with("/_sandbox/") {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let _in_flight = counters.enter();
    if !counters.latency.is_zero() {
        tokio::time::sleep(counters.latency).await;
    }
    let response = next.run(request).await;
    let route = response
        .extensions()
        .get::<RouteTemplate>()
        .map_or_else(|| format!("{method} (unmatched)"), |r| r.0.clone());
    let status = if response.extensions().get::<Dropped>().is_some() {
        None
    } else {
        Some(response.status().as_u16())
    };
    counters.record(route, status);
    response
}

/// The inner layer: names the matched route on its response.
pub async fn tag_route(request: Request, next: Next) -> Response {
    let route = matched_route(&request);
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(RouteTemplate(route));
    }
    response
}

/// `METHOD /template` of the route a request matched, without its `/v1` or `/api/public/v1`
/// base, e.g. `PATCH /connections/{connectionId}`; `None` outside a route layer.
pub fn matched_route(request: &Request) -> Option<String> {
    request.extensions().get::<MatchedPath>().map(|m| {
        let path = m.as_str();
        let path = path
            .strip_prefix("/api/public/v1")
            .or_else(|| path.strip_prefix("/v1"))
            .unwrap_or(path);
        format!("{} {path}", request.method())
    })
}
