//! The fault knobs (SPEC §7): injected failures, lost responses, a per-token rate limit and slow
//! creates, so that the client's retries, adoption of lost creates and pacing can be tested.
//!
//! [`inject`] is a route layer on every matched API route (not on `/_sandbox/*`, not on unknown
//! routes), inside [`super::stats::tag_route`] so a faulted answer is still counted under its
//! route. It rolls the dice once per request, before anything runs:
//! - `--fail-rate`: 500 `unexpected-problem` or 503 `service-unavailable` (an even pick), and the
//!   handler never runs. It applies to `/health` and `/applications/token` too, before auth, as a
//!   failing server or proxy would.
//! - `--lost-response-rate`, on the writes a client must recover from (`POST /connections`,
//!   `PATCH /connections/{connectionId}`, `POST /tags`, `PATCH` and `DELETE /tags/{tagId}`,
//!   `POST /jobs`): the
//!   handler runs, and if it succeeded (the write took effect) the answer is replaced by either
//!   a dropped connection (no status line at all) or a proxy's 504 (an even pick).
//!
//! `--churn-rate` only rolls its dice here ([`Faults::roll_churn`]); the connection list handler
//! applies it to the store ([`super::churn`]).
//!
//! The layer's state is the [`Faults`] alone. The rate limit ([`RateLimiter`]) runs after auth, in the router's auth layer, because it is
//! keyed on the bearer token; the create delay runs in the create handler. Dice come from one
//! seeded RNG behind a mutex held only for the draw, so a run's faults repeat for the same seed
//! and the same order of requests.

use super::churn::Churn;
use super::problem::ApiError;
use super::stats::{self, Dropped};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The knobs of one sandbox, and what they have done so far.
#[derive(Debug)]
pub struct Faults {
    fail_rate: f64,
    lost_response_rate: f64,
    /// `--create-delay`: how long every `POST /connections` takes before it writes.
    pub create_delay: Duration,
    seed: u64,
    rng: Mutex<fastrand::Rng>,
    limiter: Option<RateLimiter>,
    churn_rate: f64,
    job_fail_rate: f64,
    failed: AtomicU64,
    jobs_failed: AtomicU64,
    churned: AtomicU64,
    lost: AtomicU64,
    rate_limited: AtomicU64,
    /// Creates held by `--create-delay`.
    delayed: AtomicU64,
}

/// What the dice decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Roll {
    Pass,
    Fail(StatusCode),
    Lose(Loss),
}

/// How a write's answer is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loss {
    /// The connection closes before any byte of the answer.
    Dropped,
    /// A gateway in front of the server gives up waiting.
    GatewayTimeout,
}

impl Faults {
    /// `rate_limit` is requests per second per token; `seed` is the RNG seed, already chosen.
    pub fn new(
        fail_rate: f64,
        lost_response_rate: f64,
        rate_limit: Option<u32>,
        create_delay: Duration,
        seed: u64,
    ) -> Self {
        Self {
            fail_rate,
            lost_response_rate,
            create_delay,
            seed,
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            limiter: rate_limit.map(RateLimiter::new),
            churn_rate: 0.0,
            job_fail_rate: 0.0,
            failed: AtomicU64::new(0),
            jobs_failed: AtomicU64::new(0),
            churned: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            delayed: AtomicU64::new(0),
        }
    }

    /// `--churn-rate`: the share of connection list pages on which unrelated connections change.
    #[must_use]
    pub fn with_churn(mut self, churn_rate: f64) -> Self {
        self.churn_rate = churn_rate;
        self
    }

    /// `--job-fail-rate`: the share of started jobs that end `failed`.
    #[must_use]
    pub fn with_job_fail_rate(mut self, rate: f64) -> Self {
        self.job_fail_rate = rate;
        self
    }

    /// Rolls for one started job: `true` when it is to fail. Counted in `jobs_failed`.
    pub fn roll_job_failure(&self) -> bool {
        if self.job_fail_rate <= 0.0 {
            return false;
        }
        let fails = {
            let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
            rng.f64() < self.job_fail_rate
        };
        if fails {
            self.jobs_failed.fetch_add(1, Ordering::Relaxed);
        }
        fails
    }

    /// Rolls for one `GET /connections` page: no churn, or a delete or a create (an even pick).
    pub fn roll_churn(&self) -> Option<Churn> {
        if self.churn_rate <= 0.0 {
            return None;
        }
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        (rng.f64() < self.churn_rate).then(|| {
            if rng.bool() {
                Churn::Delete
            } else {
                Churn::Create
            }
        })
    }

    /// Counts a create held by `--create-delay`.
    pub fn delayed(&self) {
        self.delayed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a churn that took place.
    pub fn churned(&self) {
        self.churned.fetch_add(1, Ordering::Relaxed);
    }

    fn roll(&self, losable: bool) -> Roll {
        let may_fail = self.fail_rate > 0.0;
        let may_lose = losable && self.lost_response_rate > 0.0;
        if !may_fail && !may_lose {
            return Roll::Pass;
        }
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        // `f64()` is in [0, 1): a rate of 1 always fires, a rate of 0 never does.
        if may_fail && rng.f64() < self.fail_rate {
            return Roll::Fail(if rng.bool() {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            });
        }
        if may_lose && rng.f64() < self.lost_response_rate {
            return Roll::Lose(if rng.bool() {
                Loss::Dropped
            } else {
                Loss::GatewayTimeout
            });
        }
        Roll::Pass
    }

    /// Takes one request from `token`'s budget; `Some(429 answer)` when it is spent.
    pub fn rate_limit(&self, token: &str) -> Option<Response> {
        let limiter = self.limiter.as_ref()?;
        if limiter.admit(token, Instant::now()) {
            return None;
        }
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
        Some(rate_limited())
    }

    /// The `faults` object of `GET /_sandbox/stats`.
    pub fn snapshot(&self) -> Value {
        json!({
            "seed": self.seed,
            "failed": self.failed.load(Ordering::Relaxed),
            "lost": self.lost.load(Ordering::Relaxed),
            "rate_limited": self.rate_limited.load(Ordering::Relaxed),
            "churned": self.churned.load(Ordering::Relaxed),
            "jobs_failed": self.jobs_failed.load(Ordering::Relaxed),
            "delayed": self.delayed.load(Ordering::Relaxed),
        })
    }
}

/// The route layer that fails requests and loses the answers of writes.
pub async fn inject(State(faults): State<Arc<Faults>>, request: Request, next: Next) -> Response {
    let losable = faults.lost_response_rate > 0.0
        && matches!(
            stats::matched_route(&request).as_deref(),
            Some(
                "POST /connections"
                    | "PATCH /connections/{connectionId}"
                    | "POST /tags"
                    | "PATCH /tags/{tagId}"
                    | "DELETE /tags/{tagId}"
                    | "POST /jobs"
            )
        );
    match faults.roll(losable) {
        Roll::Pass => next.run(request).await,
        Roll::Fail(status) => {
            faults.failed.fetch_add(1, Ordering::Relaxed);
            if status == StatusCode::SERVICE_UNAVAILABLE {
                ApiError::service_unavailable(
                    "The server is temporarily unavailable (sandbox --fail-rate); the request \
                     had no effect.",
                )
            } else {
                ApiError::unexpected_problem(
                    "An injected failure (sandbox --fail-rate); the request had no effect.",
                )
            }
            .into_response()
        }
        Roll::Lose(loss) => {
            let response = next.run(request).await;
            if !response.status().is_success() {
                return response;
            }
            faults.lost.fetch_add(1, Ordering::Relaxed);
            match loss {
                Loss::Dropped => dropped(),
                Loss::GatewayTimeout => gateway_timeout(),
            }
        }
    }
}

/// A response whose body fails at once: hyper then closes the connection before flushing the
/// status line, so the client sees the connection close with no answer (an incomplete message).
fn dropped() -> Response {
    let failing = futures::stream::once(async {
        Err::<Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "sandbox --lost-response-rate: response dropped",
        ))
    });
    let mut response = Response::new(Body::from_stream(failing));
    response.extensions_mut().insert(Dropped);
    response
}

/// A 504 as a gateway in front of Airbyte sends it: plain text, not Airbyte's problem body,
/// because Airbyte itself never answers it.
fn gateway_timeout() -> Response {
    let mut response = (StatusCode::GATEWAY_TIMEOUT, "upstream request timeout").into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Airbyte's load-shedding answer (DIGEST §6): exactly this body, and deliberately no
/// `Retry-After`.
fn rate_limited() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        r#"{"message":"You are being rate limited."}"#,
    )
        .into_response()
}

/// `--rate-limit N`: a token bucket per bearer token, holding at most N requests and refilled
/// continuously at N per second. A new token starts with a full bucket, so a burst of N passes
/// at once and then the token is held to N per second on average.
#[derive(Debug)]
struct RateLimiter {
    per_second: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Above this many tracked tokens, buckets that have refilled are forgotten (a full bucket is the
/// same as a new one), so a long run with short-lived tokens does not grow without bound.
const PRUNE_ABOVE: usize = 1024;

impl RateLimiter {
    fn new(per_second: u32) -> Self {
        Self {
            per_second: f64::from(per_second),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn admit(&self, token: &str, now: Instant) -> bool {
        let capacity = self.per_second;
        let level = |b: &Bucket| {
            let refill = now.saturating_duration_since(b.at).as_secs_f64() * self.per_second;
            (b.tokens + refill).min(capacity)
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(bucket) = buckets.get_mut(token) {
            let tokens = level(bucket);
            let admitted = tokens >= 1.0;
            *bucket = Bucket {
                tokens: if admitted { tokens - 1.0 } else { tokens },
                at: now,
            };
            return admitted;
        }
        if buckets.len() >= PRUNE_ABOVE {
            buckets.retain(|_, b| level(b) < capacity);
        }
        buckets.insert(
            token.to_owned(),
            Bucket {
                tokens: capacity - 1.0,
                at: now,
            },
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::{Faults, Loss, RateLimiter, Roll};
    use axum::http::StatusCode;
    use std::time::{Duration, Instant};

    #[test]
    fn a_bucket_passes_a_burst_of_n_then_refills_at_n_per_second() {
        let limiter = RateLimiter::new(3);
        let start = Instant::now();
        let admitted: Vec<bool> = (0..5).map(|_| limiter.admit("a", start)).collect();
        assert_eq!(admitted, [true, true, true, false, false]);
        assert!(limiter.admit("b", start), "each token has its own bucket");
        let third = start + Duration::from_millis(340);
        assert!(limiter.admit("a", third), "one request back after 1/3 s");
        assert!(!limiter.admit("a", third));
        let later = start + Duration::from_secs(10);
        let admitted = (0..4).filter(|_| limiter.admit("a", later)).count();
        assert_eq!(admitted, 3, "an idle bucket holds at most N");
    }

    #[test]
    fn idle_buckets_are_forgotten_when_many_tokens_are_tracked() {
        let limiter = RateLimiter::new(2);
        let start = Instant::now();
        for i in 0..super::PRUNE_ABOVE {
            limiter.admit(&format!("t{i}"), start);
        }
        assert!(limiter.admit("new", start + Duration::from_secs(5)));
        let buckets = limiter.buckets.lock().unwrap();
        assert_eq!(buckets.len(), 1, "refilled buckets were dropped");
    }

    #[test]
    fn rates_of_zero_and_one_are_certain() {
        let never = Faults::new(0.0, 0.0, None, Duration::ZERO, 7);
        assert!((0..100).all(|_| never.roll(true) == Roll::Pass));
        let always = Faults::new(1.0, 0.0, None, Duration::ZERO, 7);
        let rolls: Vec<Roll> = (0..100).map(|_| always.roll(false)).collect();
        assert!(rolls.contains(&Roll::Fail(StatusCode::INTERNAL_SERVER_ERROR)));
        assert!(rolls.contains(&Roll::Fail(StatusCode::SERVICE_UNAVAILABLE)));
        let lose = Faults::new(0.0, 1.0, None, Duration::ZERO, 7);
        assert_eq!(lose.roll(false), Roll::Pass, "only writes lose answers");
        let rolls: Vec<Roll> = (0..100).map(|_| lose.roll(true)).collect();
        assert!(rolls.contains(&Roll::Lose(Loss::Dropped)));
        assert!(rolls.contains(&Roll::Lose(Loss::GatewayTimeout)));
        assert!(!rolls.contains(&Roll::Pass));
    }

    #[test]
    fn the_same_seed_rolls_the_same_faults() {
        let rolls = |seed| {
            let faults = Faults::new(0.3, 0.5, None, Duration::ZERO, seed);
            (0..200)
                .map(|i| faults.roll(i % 3 == 0))
                .collect::<Vec<_>>()
        };
        assert_eq!(rolls(42), rolls(42));
        assert_ne!(rolls(42), rolls(43));
    }
}
