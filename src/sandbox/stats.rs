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
//!
//! Two measures say what a client actually got, so that a benchmark need not trust the knobs:
//! each request's *service time*, from the moment [`observe`] receives it (its head read) to
//! the moment its answer's body is handed to the connection (the body is dropped once written),
//! `--latency`, handler and queueing in the server included, kept in a histogram of about 1.6 %
//! resolution ([`ServiceTimes`]); and the wall-clock time (Unix microseconds, comparable across
//! processes on one machine) at which the first request of each route arrived.

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Counters since start-up, and the latency added to every API answer.
#[derive(Debug, Default)]
pub struct Stats {
    latency: Duration,
    counts: Mutex<Counts>,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    /// Per route template: requests in flight now, and the most ever at once.
    by_route: Mutex<BTreeMap<String, (u64, u64)>>,
    service: ServiceTimes,
}

/// Service times in microseconds: 64 exact buckets below 64 µs, then 64 buckets per power of
/// two (a bucket is at most 1/64 of its value wide), plus an exact count and sum for the mean.
#[derive(Debug)]
pub struct ServiceTimes {
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_us: AtomicU64,
}

/// Buckets per power of two, as a power of two.
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Enough buckets for every `u64` of microseconds.
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) << SUB_BITS;

impl Default for ServiceTimes {
    fn default() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }
}

impl ServiceTimes {
    fn bucket(us: u64) -> usize {
        if us < SUB {
            return usize::try_from(us).unwrap_or(0);
        }
        let power = us.ilog2();
        let shift = power - SUB_BITS;
        let within = (us >> shift) & (SUB - 1);
        usize::try_from(u64::from(shift + 1) * SUB + within).unwrap_or(BUCKETS - 1)
    }

    /// The middle of a bucket, in microseconds.
    #[allow(clippy::cast_precision_loss)] // a bucket's width is far above f64's rounding
    fn value(bucket: usize) -> f64 {
        let bucket = bucket as u64;
        if bucket < SUB {
            return bucket as f64;
        }
        let shift = bucket / SUB - 1;
        let low = (SUB + bucket % SUB) << shift;
        low as f64 + ((1u64 << shift) as f64 - 1.0) / 2.0
    }

    fn clear(&self) {
        for bucket in &self.buckets {
            bucket.store(0, Ordering::Relaxed);
        }
        self.count.store(0, Ordering::Relaxed);
        self.sum_us.store(0, Ordering::Relaxed);
    }

    pub fn record(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.buckets[Self::bucket(us)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The smallest recorded value (bucket middle) at or above a share `q` of all, in µs.
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )] // a rank between 1 and count, computed in f64
    fn quantile(&self, q: f64) -> Option<f64> {
        let count = self.count.load(Ordering::Relaxed);
        if count == 0 {
            return None;
        }
        let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
        let mut seen = 0;
        for (bucket, n) in self.buckets.iter().enumerate() {
            seen += n.load(Ordering::Relaxed);
            if seen >= rank {
                return Some(Self::value(bucket));
            }
        }
        None
    }

    /// `{"count", "mean", "p50", "p99"}`, times in milliseconds (`null` before any request).
    #[allow(clippy::cast_precision_loss)] // microseconds far below 2^52
    pub fn snapshot(&self) -> Value {
        let count = self.count.load(Ordering::Relaxed);
        let ms = |us: Option<f64>| us.map(|us| us.round() / 1000.0);
        let mean = (count > 0).then(|| self.sum_us.load(Ordering::Relaxed) as f64 / count as f64);
        json!({
            "count": count,
            "mean": ms(mean),
            "p50": ms(self.quantile(0.5)),
            "p99": ms(self.quantile(0.99)),
        })
    }
}

/// A response body that records its request's service time once the server is done with it.
struct Timed {
    body: Body,
    stats: Arc<Stats>,
    received: Instant,
}

impl HttpBody for Timed {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Timed {
    fn drop(&mut self) {
        self.stats.service.record(self.received.elapsed());
    }
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
    /// When the first request of each route arrived, in Unix microseconds.
    first_at: BTreeMap<String, u64>,
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

    /// Counts a request under its route, arrived at `arrived` (Unix µs), and its answer by
    /// status (`None`: dropped).
    fn record(&self, route: String, arrived: u64, status: Option<u16>) {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let first = counts.first_at.entry(route.clone()).or_insert(arrived);
        *first = (*first).min(arrived);
        *counts.requests.entry(route).or_default() += 1;
        match status {
            Some(status) => *counts.responses.entry(status).or_default() += 1,
            None => counts.dropped += 1,
        }
    }

    /// `DELETE /_sandbox/stats`: starts the accounting afresh, as if no request had come yet;
    /// requests in flight stay in flight (and count as the new maximum).
    pub fn reset(&self) {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *counts = Counts::default();
        self.max_in_flight
            .store(self.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
        for (now, max) in self
            .by_route
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values_mut()
        {
            *max = *now;
        }
        self.service.clear();
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
            "service_time_ms": self.service.snapshot(),
            "first_request_unix_us": counts.first_at,
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
    let received = Instant::now();
    let arrived = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let method = request.method().clone();
    let _in_flight = counters.enter();
    let paid = LatencyPaid::default();
    request.extensions_mut().insert(paid.clone());
    let response = next.run(request).await;
    if !counters.latency.is_zero() && !paid.0.load(Ordering::SeqCst) {
        super::delay::sleep(counters.latency).await;
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
    counters.record(route, arrived, status);
    let (parts, body) = response.into_parts();
    let timed = Timed {
        body,
        stats: counters.clone(),
        received,
    };
    Response::from_parts(parts, Body::new(timed))
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
        super::delay::sleep(counters.latency).await;
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

#[cfg(test)]
mod tests {
    use super::ServiceTimes;
    use std::time::Duration;

    #[test]
    fn service_times_give_the_mean_exactly_and_quantiles_within_two_percent() {
        let times = ServiceTimes::default();
        for ms in 1..=100 {
            times.record(Duration::from_millis(ms));
        }
        let snapshot = times.snapshot();
        assert_eq!(snapshot["count"], 100);
        assert!((snapshot["mean"].as_f64().unwrap() - 50.5).abs() < 1e-9);
        let near = |key: &str, want: f64| {
            let got = snapshot[key].as_f64().unwrap();
            assert!((got - want).abs() <= want * 0.02, "{key}: {got} vs {want}");
        };
        near("p50", 50.0);
        near("p99", 99.0);
        for us in [0, 1, 63, 64, 65, 127, 128, 1000, 123_456, u64::MAX / 2] {
            let bucket = ServiceTimes::bucket(us);
            let mid = ServiceTimes::value(bucket);
            #[allow(clippy::cast_precision_loss)]
            let us = us as f64;
            assert!((mid - us).abs() <= us / 64.0 + 0.5, "{us} → {mid}");
        }
        assert_eq!(
            ServiceTimes::default().snapshot()["p50"],
            serde_json::Value::Null
        );
    }
}
