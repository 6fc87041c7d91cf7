//! Request accounting for `GET /_sandbox/stats`, and the one layer every API request passes.
//!
//! [`observe`] wraps the whole server: it counts a request in flight, runs the request, and
//! records its route template and status. The route template comes from [`tag_route`], which
//! runs inside the router (where the matched route is known), counts the request in flight
//! under its route, applies `--latency` there (so that the latency falls inside the route's
//! in-flight window, and concurrent requests of one route are seen to overlap), and hands the
//! template back on the response. A request no route matched gets its latency in [`observe`]. The fault knobs ([`super::faults`]) sit inside these layers,
//! so a faulted answer is counted like any other: by its status, or as `"dropped"` when the
//! connection is closed without an answer (the fault layer marks such an answer [`Dropped`]).
//! `/_sandbox/*` is left out of every count, of the latency and of every fault. The layer's
//! state is the [`Stats`] alone.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Counters since start-up, and the latency added to every API answer.
#[derive(Debug, Default)]
pub struct Stats {
    latency: Duration,
    counts: Mutex<Counts>,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    /// Per route template: requests in flight now, and the most ever at once.
    by_route: Mutex<BTreeMap<String, (u64, u64)>>,
}

/// Set on a request by [`observe`]; [`tag_route`] marks it once it applied the latency.
#[derive(Debug, Clone, Default)]
struct LatencyPaid(Arc<AtomicBool>);

/// Leaves the route's in-flight count when dropped.
struct RouteInFlight<'a>(&'a Stats, String);

impl Drop for RouteInFlight<'_> {
    fn drop(&mut self) {
        let mut routes = self
            .0
            .by_route
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((now, _)) = routes.get_mut(&self.1) {
            *now = now.saturating_sub(1);
        }
    }
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

    fn enter_route(&self, route: String) -> RouteInFlight<'_> {
        let mut routes = self
            .by_route
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (now, max) = routes.entry(route.clone()).or_default();
        *now += 1;
        *max = (*max).max(*now);
        RouteInFlight(self, route)
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
        let max_by_route: BTreeMap<String, u64> = self
            .by_route
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(route, (_, max))| (route.clone(), *max))
            .collect();
        json!({
            "requests": counts.requests,
            "responses": responses,
            "in_flight": self.in_flight.load(Ordering::SeqCst),
            "max_in_flight": self.max_in_flight.load(Ordering::SeqCst),
            "max_in_flight_by_route": max_by_route,
            "connections": live_connections,
        })
    }
}

/// The outer layer: in-flight accounting, the counts, and the latency of unmatched requests.
pub async fn observe(
    State(counters): State<Arc<Stats>>,
    mut request: Request,
    next: Next,
) -> Response {
    if request.uri().path().starts_with("/_sandbox/") {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let _in_flight = counters.enter();
    let paid = LatencyPaid::default();
    request.extensions_mut().insert(paid.clone());
    let response = next.run(request).await;
    if !counters.latency.is_zero() && !paid.0.load(Ordering::SeqCst) {
        tokio::time::sleep(counters.latency).await;
    }
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

/// The inner layer: counts the request in flight under its route, applies the latency, and
/// names the matched route on its response.
pub async fn tag_route(
    State(counters): State<Arc<Stats>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(route) = matched_route(&request) else {
        return next.run(request).await;
    };
    let _in_flight = counters.enter_route(route.clone());
    if !counters.latency.is_zero() {
        if let Some(paid) = request.extensions().get::<LatencyPaid>() {
            paid.0.store(true, Ordering::SeqCst);
        }
        tokio::time::sleep(counters.latency).await;
    }
    let mut response = next.run(request).await;
    response.extensions_mut().insert(RouteTemplate(route));
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
