//! The retry loop: one API call tried again after the failures its caller accepts, with
//! exponential backoff and full jitter (or the server's `Retry-After`), within one budget of
//! tries and one of time (`give_up_after`); each try takes a slot of the run's pace, gets its
//! token (an exchange that fails is that try's failure: the token has no retry loop of its own),
//! sends, and tells the pace how it went. Every error leaves here with the client's secrets
//! taken out of the server's text.

use super::auth::Auth;
use super::pace::NoSlot;
use super::{ApiError, ApiErrorKind, Client, error};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Tries of one request that may end in a timeout.
const MAX_TIMEOUTS: usize = 3;

/// How transient failures are retried: exponential backoff from `min_delay`, doubling up to
/// `max_delay`, each wait drawn uniformly below it ("full jitter"), at most `attempts` tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 10,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// The waits between tries.
    pub fn delays(&self) -> impl Iterator<Item = Duration> + use<> {
        use backon::BackoffBuilder;
        backon::ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.attempts.saturating_sub(1))
            .build()
            .map(|d| d.mul_f64(fastrand::f64()))
    }
}

/// Why one try failed.
enum Failure {
    /// The request failed this way: the caller decides whether to try again.
    Request(ApiError),
    /// It was not sent, and trying again cannot help.
    Final(ApiError),
}

impl Client {
    /// One API call, tried again after failures `retry_if` accepts, with backoff and full
    /// jitter (or the server's `Retry-After`), for at most `give_up_after` in all.
    pub(super) async fn call<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
        retry_if: fn(&ApiError) -> bool,
    ) -> Result<T, ApiError> {
        let route = super::route(path, query);
        // A year stands for "no limit" and cannot overflow the clock.
        let budget = self
            .inner
            .give_up_after
            .min(Duration::from_secs(365 * 24 * 3600));
        let started = Instant::now();
        let deadline = started.checked_add(budget).unwrap_or(started);
        let mut delays = self.inner.retry.delays();
        let mut timeouts = 0;
        loop {
            // The server's words, without the secrets it may have echoed, before anyone sees them.
            let redact = |e: ApiError| e.redacted(&|text| self.inner.known.redact(text));
            let error = match self
                .attempt(&method, path, &route, query, body, deadline)
                .await
            {
                Ok(value) => return Ok(value),
                Err(Failure::Final(error)) => return Err(redact(error)),
                Err(Failure::Request(error)) => redact(error),
            };
            if !retry_if(&error) {
                return Err(error);
            }
            // A server that never answered and refuses connections (or whose name does not
            // resolve) is most likely a wrong URL: say so now rather than after ten tries.
            if error.is_unreachable() && self.inner.contact.answers.load(Ordering::Relaxed) == 0 {
                return Err(error);
            }
            // Each timeout already waited a whole request timeout: do not wait ten of them.
            if error.is_timeout() {
                timeouts += 1;
                if timeouts >= MAX_TIMEOUTS {
                    return Err(error);
                }
            }
            let Some(delay) = delays.next() else {
                return Err(error);
            };
            let delay = error.retry_after().unwrap_or(delay);
            let left = deadline.saturating_duration_since(Instant::now());
            if delay > left {
                return Err(match error.retry_after() {
                    Some(asked) => error.with_note(&format!(
                        "the server asked to wait {} s before another try (Retry-After), more \
                         than the {:.0} s this request has left (--target-timeout)",
                        asked.as_secs(),
                        left.as_secs_f64()
                    )),
                    None => error,
                });
            }
            self.inner.reporter.log(
                1,
                &format!("{error}; trying again in {} ms", delay.as_millis()),
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// One try: a slot under the run's pace, then the bearer token (exchanged within that slot
    /// when needed, so a token call never exceeds the cap, and fresh when the request leaves even
    /// after a long wait for the slot; refreshed once on a 401), the request, and the pace told
    /// how it went.
    async fn attempt<T: DeserializeOwned, B: Serialize>(
        &self,
        method: &Method,
        path: &str,
        route: &str,
        query: &[(&str, String)],
        body: Option<&B>,
        deadline: Instant,
    ) -> Result<T, Failure> {
        let _slot = self
            .inner
            .pace
            .slot(super::priority(method, path), deadline)
            .await
            .map_err(|no_slot| {
                let message = match no_slot {
                    NoSlot::Closed => "not sent: the client is shutting down".to_string(),
                    NoSlot::Held(wait) => format!(
                        "not sent: the server's Retry-After holds every request for {:.0} s, more \
                     than this request has left (--target-timeout)",
                        wait.as_secs_f64()
                    ),
                };
                let kind = ApiErrorKind::Transport {
                    message,
                    not_sent: true,
                    timeout: false,
                };
                Failure::Final(ApiError::new(method, route, kind))
            })?;
        let mut refreshed = false;
        loop {
            let (token, generation) = self
                .token(method, route, None)
                .await
                .map_err(|e| self.failed(e))?;
            let result = self
                .send(method, path, route, query, body, token.as_ref())
                .await;
            let (status, retry_after, bytes) = result.map_err(|e| self.failed(e))?;
            if status == StatusCode::UNAUTHORIZED
                && !refreshed
                && matches!(self.inner.auth, Auth::Application { .. })
            {
                self.inner
                    .reporter
                    .log(1, &format!("{method} {route}: 401, refreshing the token"));
                self.token(method, route, Some(generation))
                    .await
                    .map_err(|e| self.failed(e))?;
                refreshed = true;
                continue;
            }
            return match error::decode(method, route, status, retry_after, &bytes) {
                Ok(value) => {
                    if let Some(rate) = self.inner.pace.success() {
                        self.inner.reporter.pace(rate);
                    }
                    Ok(value)
                }
                Err(error) => Err(self.failed(error)),
            };
        }
    }

    /// A failed try, the pace told: a throttle or a timeout slows the whole run down, and the
    /// whole run pauses for a `Retry-After` (a request that cannot wait that long fails at once,
    /// without adding to the server's load).
    fn failed(&self, error: ApiError) -> Failure {
        if error.is_throttle() {
            self.slow_down(error.retry_after());
        } else if error.is_timeout() {
            self.slow_down(None);
        }
        Failure::Request(error)
    }

    fn slow_down(&self, retry_after: Option<Duration>) {
        if let Some(rate) = self.inner.pace.throttled(retry_after) {
            self.inner.reporter.pace(rate);
            self.inner.reporter.log(
                1,
                &format!("the server pushed back; pacing requests at {rate:.1}/s"),
            );
        }
    }
}
