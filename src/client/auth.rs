//! Bearer tokens: none, a static `AIRBYTE_TOKEN`, or application credentials exchanged at
//! `POST /applications/token`, cached, refreshed a little before `expires_in` runs out and once
//! more when a request is answered 401.

use super::Credentials;
use super::{ApiError, ApiErrorKind, Client, error};
use crate::secret::{self, Secret};
use crate::wire::{TokenRequest, TokenResponse};
use reqwest::Method;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Where application credentials are exchanged for a token.
pub(super) const TOKEN_ROUTE: &str = "/applications/token";

/// The longest a token is trusted without a refresh, whatever its `expires_in` says.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// How the client authenticates, once built from [`super::Credentials`].
pub(super) enum Auth {
    None,
    Static(Secret),
    Application {
        request: TokenRequest,
        token: Mutex<Exchanges>,
        /// Exchanges finished so far, readable without waiting for the lock.
        exchanged: AtomicU64,
    },
}

/// The token of application credentials, and how the last exchange went.
#[derive(Default)]
pub(super) struct Exchanges {
    current: Option<AppToken>,
    /// Why the last exchange failed, if it did: the requests that waited for it share its
    /// failure rather than each send the secret again (the run's first requests go together).
    failure: Option<Box<ApiError>>,
}

/// The most tokens remembered for redaction: a server that answers every request 401 gets a
/// fresh one per request.
const MAX_KNOWN: usize = 64;

/// The secrets the client holds (its token or client secret, and the tokens it was issued), so
/// that a server echoing one back cannot carry it into a message.
pub(super) struct Known {
    configured: Vec<Secret>,
    issued: std::sync::Mutex<VecDeque<Secret>>,
}

impl Known {
    pub(super) fn new(credentials: &Credentials) -> Known {
        let configured = match credentials {
            Credentials::None => Vec::new(),
            Credentials::Token(token) => vec![token.clone()],
            Credentials::Application { client_secret, .. } => vec![client_secret.clone()],
        };
        Known {
            configured,
            issued: std::sync::Mutex::new(VecDeque::new()),
        }
    }

    fn issued(&self, token: &Secret) {
        if let Ok(mut issued) = self.issued.lock() {
            if issued.len() >= MAX_KNOWN {
                issued.pop_front();
            }
            issued.push_back(token.clone());
        }
    }

    /// `text` without any known secret nor anything shaped like a bearer token.
    pub(super) fn redact(&self, text: &str) -> String {
        match self.issued.lock() {
            Ok(issued) => {
                let all: Vec<&Secret> = self.configured.iter().chain(issued.iter()).collect();
                secret::redact(text, &all)
            }
            // Without the list, hide the whole text rather than risk a secret.
            Err(_) => secret::REDACTED.to_string(),
        }
    }
}

#[derive(Clone)]
pub(super) struct AppToken {
    value: Secret,
    refresh_at: Instant,
    /// Bumped on every exchange, so concurrent 401s refresh once, not once each.
    generation: u64,
}

impl Client {
    /// The bearer token to send, exchanging application credentials when there is none yet, when
    /// it is about to expire, or when `stale_generation` names the generation a 401 was answered
    /// with (so concurrent 401s refresh once, not once each). A failed exchange is the request's
    /// error ([`ApiErrorKind::Token`]), tried again by the request's own retry loop.
    pub(super) async fn token(
        &self,
        method: &Method,
        route: &str,
        stale_generation: Option<u64>,
    ) -> Result<(Option<Secret>, u64), ApiError> {
        let (request, cached, exchanged) = match &self.inner.auth {
            Auth::None => return Ok((None, 0)),
            Auth::Static(token) => return Ok((Some(token.clone()), 0)),
            Auth::Application {
                request,
                token,
                exchanged,
            } => (request, token, exchanged),
        };
        // The exchanges finished before this request began to wait for the lock.
        let seen = exchanged.load(Ordering::Acquire);
        let mut state = cached.lock().await;
        if let Some(current) = state.current.as_ref() {
            let fresh = Instant::now() < current.refresh_at;
            if fresh && stale_generation != Some(current.generation) {
                return Ok((Some(current.value.clone()), current.generation));
            }
        }
        // An exchange made while this request waited failed: that is this try's failure too.
        if seen != exchanged.load(Ordering::Acquire) {
            if let Some(failure) = &state.failure {
                return Err(ApiError::new(
                    method,
                    route,
                    ApiErrorKind::Token(failure.clone()),
                ));
            }
        }
        let generation = state.current.as_ref().map_or(1, |t| t.generation + 1);
        // One exchange per try of the request: its retry loop tries again, within its budget.
        let result: Result<TokenResponse, ApiError> = self
            .send(
                &Method::POST,
                TOKEN_ROUTE,
                TOKEN_ROUTE,
                &[],
                Some(request),
                None,
            )
            .await
            .and_then(|(status, retry_after, bytes)| {
                error::decode(&Method::POST, TOKEN_ROUTE, status, retry_after, &bytes)
            })
            .map_err(|mut e| {
                if !e.is_transient() {
                    if let ApiErrorKind::Status { message, .. } = &mut e.kind {
                        message.push_str(" (check AIRBYTE_CLIENT_ID and AIRBYTE_CLIENT_SECRET)");
                    }
                }
                e
            });
        exchanged.fetch_add(1, Ordering::Release);
        let response = match result {
            Ok(response) => response,
            Err(e) => {
                state.failure = Some(Box::new(e.clone()));
                return Err(ApiError::new(
                    method,
                    route,
                    ApiErrorKind::Token(Box::new(e)),
                ));
            }
        };
        state.failure = None;
        let lifetime = Duration::from_secs(u64::try_from(response.expires_in.max(1)).unwrap_or(1))
            .min(MAX_TOKEN_LIFETIME);
        self.inner.reporter.log(
            2,
            &format!(
                "obtained an application token valid for {} s",
                lifetime.as_secs()
            ),
        );
        self.inner.known.issued(&response.access_token);
        let token = AppToken {
            value: response.access_token,
            refresh_at: refresh_time(Instant::now(), lifetime),
            generation,
        };
        state.current = Some(token.clone());
        Ok((Some(token.value), generation))
    }
}

/// When a token obtained at `now`, valid for `lifetime`, is refreshed: a little before it
/// expires, a fifth of the lifetime early, at most a minute; and at least once a day.
fn refresh_time(now: Instant, lifetime: Duration) -> Instant {
    let lifetime = lifetime.min(MAX_TOKEN_LIFETIME);
    let margin = (lifetime / 5).min(Duration::from_secs(60));
    now.checked_add(lifetime.saturating_sub(margin))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_refreshed_before_they_expire_and_any_lifetime_is_safe() {
        let now = Instant::now();
        assert_eq!(
            refresh_time(now, Duration::from_secs(180)),
            now + Duration::from_secs(144)
        );
        assert_eq!(
            refresh_time(now, Duration::from_secs(3600)),
            now + Duration::from_secs(3540)
        );
        // An absurd lifetime cannot overflow the clock: the token is refreshed within a day.
        let refresh = refresh_time(now, Duration::MAX);
        assert!(refresh > now && refresh <= now + MAX_TOKEN_LIFETIME);
    }
}
