//! The Airbyte API client: the only code that talks HTTP to Airbyte.
//!
//! One `reqwest` client (rustls, connection reuse, a request timeout, `User-Agent:
//! replicate/<version>`); one [`pace::Pace`] that caps the requests in flight across the whole run
//! and slows everything down when the server throttles; bearer tokens, either static or exchanged
//! from application credentials and refreshed before `expires_in` runs out (and once more on a
//! 401); reads retried with exponential backoff and full jitter; list paging that keeps its own
//! offset and never trusts `next`. Writes are never retried here once they may have taken effect:
//! that needs a look at the server first, which is the executor's job. Errors carry the method,
//! the route, the status and the server's message, and never a secret.

mod error;
pub mod pace;

pub use error::{ApiError, ApiErrorKind};

use crate::report::events::Reporter;
use crate::secret::Secret;
use crate::wire::{
    ConnectionCreateRequest, ConnectionResponse, DestinationResponse, GrantType, Page,
    SourceResponse, StreamProperties, TokenRequest, TokenResponse,
};
use pace::Pace;
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use uuid::Uuid;

/// The most items a list page may hold (the API's maximum `limit`).
pub const PAGE_SIZE: usize = 100;

/// List pages fetched at once once a list is known to have more than one.
const LIST_FANOUT: usize = 8;

/// The most items a list may have before the server is deemed broken (an endless series of
/// full pages would otherwise fill memory).
const MAX_LIST_ITEMS: usize = 200_000;

/// Tries of one request that may end in a timeout.
const MAX_TIMEOUTS: usize = 3;

/// The largest response body read; a larger one is an error, not an out-of-memory.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// The default per-request timeout: a create runs a schema discover and can take minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// How the client proves who it is.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// No `Authorization` header (a self-hosted Airbyte with auth disabled).
    None,
    /// `AIRBYTE_TOKEN`: a bearer token used as is.
    Token(Secret),
    /// `AIRBYTE_CLIENT_ID` / `AIRBYTE_CLIENT_SECRET`, exchanged at `POST /applications/token`.
    Application {
        client_id: String,
        client_secret: Secret,
    },
}

/// Everything needed to build a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The API base, e.g. `https://api.airbyte.com/v1`.
    pub base_url: String,
    pub credentials: Credentials,
    /// At most this many requests in flight at once.
    pub concurrency: usize,
    pub timeout: Duration,
    /// Allow plain `http://` to hosts other than loopback.
    pub allow_insecure_http: bool,
    pub retry: RetryPolicy,
    /// Extra trusted CA certificates (PEM), for a self-hosted Airbyte behind an internal CA.
    pub ca_certificates: Option<Vec<u8>>,
}

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

/// A base URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("`{0}` is not a valid URL: {1}")]
    Invalid(String, String),
    #[error("`{0}` must start with https:// (or http://)")]
    Scheme(String),
    #[error(
        "`{0}` contains a user name or password; pass credentials through the environment instead"
    )]
    Credentials(String),
    #[error(
        "`{0}` uses plain http:// to a host that is not loopback; use https://, or pass --allow-insecure-http"
    )]
    Insecure(String),
}

/// Why a client could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error("--ca-cert: {0}")]
    CaCertificate(String),
    #[error("cannot set up the HTTP client: {0}")]
    Http(String),
}

/// Checks a base URL: http(s) only, no credentials in it, plain http only to loopback unless
/// allowed. Returns it without a trailing slash.
pub fn check_base_url(url: &str, allow_insecure_http: bool) -> Result<String, UrlError> {
    let parsed = Url::parse(url).map_err(|e| UrlError::Invalid(url.into(), e.to_string()))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // Do not echo the URL: it holds a secret.
        let mut shown = parsed.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        return Err(UrlError::Credentials(shown.to_string()));
    }
    match parsed.scheme() {
        "https" => {}
        "http" if allow_insecure_http || is_loopback(&parsed) => {}
        "http" => return Err(UrlError::Insecure(url.into())),
        _ => return Err(UrlError::Scheme(url.into())),
    }
    Ok(url.trim_end_matches('/').to_string())
}

fn is_loopback(url: &Url) -> bool {
    let host = url.host_str().unwrap_or("");
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The Airbyte API client. Cheap to clone; clones share the connection pool, the token and the
/// concurrency cap.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: String,
    auth: Auth,
    pace: Pace,
    concurrency: usize,
    retry: RetryPolicy,
    reporter: Arc<dyn Reporter>,
}

enum Auth {
    None,
    Static(Secret),
    Application {
        request: TokenRequest,
        token: Mutex<Option<AppToken>>,
    },
}

#[derive(Clone)]
struct AppToken {
    value: Secret,
    refresh_at: Instant,
    /// Bumped on every exchange, so concurrent 401s refresh once, not once each.
    generation: u64,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(config: &ClientConfig, reporter: Arc<dyn Reporter>) -> Result<Client, ClientError> {
        let base = check_base_url(&config.base_url, config.allow_insecure_http)?;
        let mut http = reqwest::Client::builder()
            .user_agent(concat!("replicate/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(config.concurrency)
            // Reading the platform's root store costs tens of milliseconds at start-up; a plain
            // http:// base (the sandbox, a loopback port-forward) never needs it.
            .tls_built_in_root_certs(base.starts_with("https://"));
        if let Some(pem) = &config.ca_certificates {
            let certificates = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ClientError::CaCertificate(e.to_string()))?;
            if certificates.is_empty() {
                return Err(ClientError::CaCertificate(
                    "no PEM certificate found in it".into(),
                ));
            }
            for certificate in certificates {
                http = http.add_root_certificate(certificate);
            }
        }
        let http = http.build().map_err(|e| ClientError::Http(e.to_string()))?;
        let auth = match &config.credentials {
            Credentials::None => Auth::None,
            Credentials::Token(token) => Auth::Static(token.clone()),
            Credentials::Application {
                client_id,
                client_secret,
            } => Auth::Application {
                request: TokenRequest {
                    client_id: client_id.clone(),
                    client_secret: client_secret.clone(),
                    grant_type: Some(GrantType::ClientCredentials),
                },
                token: Mutex::new(None),
            },
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                auth,
                pace: Pace::new(config.concurrency),
                concurrency: config.concurrency,
                retry: config.retry,
                reporter,
            }),
        })
    }

    /// The base URL in use.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// `GET /connections/{id}`.
    pub async fn connection(&self, id: Uuid) -> Result<ConnectionResponse, ApiError> {
        self.get(&format!("/connections/{id}"), &[]).await
    }

    /// `GET /destinations/{id}`.
    pub async fn destination(&self, id: Uuid) -> Result<DestinationResponse, ApiError> {
        self.get(&format!("/destinations/{id}"), &[]).await
    }

    /// `GET /sources/{id}`.
    pub async fn source(&self, id: Uuid) -> Result<SourceResponse, ApiError> {
        self.get(&format!("/sources/{id}"), &[]).await
    }

    /// Every non-deleted connection of a workspace (or of every workspace the token can see).
    pub async fn connections(
        &self,
        workspace: Option<Uuid>,
        on_page: impl Fn(usize),
    ) -> Result<Vec<ConnectionResponse>, ApiError> {
        self.list("/connections", workspace, on_page).await
    }

    /// Every non-deleted source of a workspace.
    pub async fn sources(
        &self,
        workspace: Uuid,
        on_page: impl Fn(usize),
    ) -> Result<Vec<SourceResponse>, ApiError> {
        self.list("/sources", Some(workspace), on_page).await
    }

    /// `GET /streams?sourceId=…&destinationId=…`: the source's catalog as the pair sees it.
    pub async fn streams(
        &self,
        source: Uuid,
        destination: Uuid,
    ) -> Result<Vec<StreamProperties>, ApiError> {
        let query = [
            ("sourceId", source.to_string()),
            ("destinationId", destination.to_string()),
        ];
        self.get("/streams", &query).await
    }

    /// `POST /connections`.
    pub async fn create_connection(
        &self,
        body: &ConnectionCreateRequest,
    ) -> Result<ConnectionResponse, ApiError> {
        // Only what surely had no effect is tried again here; see `execute` for the rest.
        let no_effect = |e: &ApiError| {
            e.is_throttle() || matches!(e.kind, ApiErrorKind::Transport { not_sent: true, .. })
        };
        self.call(Method::POST, "/connections", &[], Some(body), no_effect)
            .await
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ApiError> {
        self.call::<T, ()>(Method::GET, path, query, None, ApiError::is_transient)
            .await
    }

    /// All pages of a list endpoint. Keeps its own offset and stops at the first short or empty
    /// page: `next` is set even on the last page (DIGEST §3.5). After a first full page, the
    /// following pages are fetched several at once (their offsets are known), 4, then
    /// `LIST_FANOUT`; the requests wasted past the end are fewer than the pages read.
    async fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        workspace: Option<Uuid>,
        on_page: impl Fn(usize),
    ) -> Result<Vec<T>, ApiError> {
        let query = |offset: usize| {
            let mut query = vec![
                ("limit", PAGE_SIZE.to_string()),
                ("offset", offset.to_string()),
            ];
            if let Some(ws) = workspace {
                query.push(("workspaceIds", ws.to_string()));
            }
            query
        };
        let mut all = Vec::new();
        // The first page alone: most lists fit in it.
        let mut batch = 1;
        loop {
            let start = all.len();
            let queries: Vec<_> = (0..batch).map(|k| query(start + k * PAGE_SIZE)).collect();
            let pages =
                futures::future::join_all(queries.iter().map(|q| self.get::<Page<T>>(path, q)))
                    .await;
            // In order: a short page ends the list, and what came after it does not matter.
            for page in pages {
                let page = page?;
                let n = page.data.len();
                all.extend(page.data);
                on_page(n);
                if n < PAGE_SIZE {
                    return Ok(all);
                }
            }
            if all.len() >= MAX_LIST_ITEMS {
                return Err(ApiError::new(
                    &Method::GET,
                    &route(path, &query(all.len())),
                    ApiErrorKind::Decode(format!(
                        "the server kept sending full pages past {MAX_LIST_ITEMS} items; giving up"
                    )),
                ));
            }
            // A long list: fetch 4 pages at once, then 8, so that 1,000 items take 2 more round
            // trips, not 4, for at most 3 wasted requests on a list of 2 pages.
            batch = (batch * 4)
                .min(LIST_FANOUT.min(self.inner.concurrency))
                .max(1);
        }
    }

    /// One API call, tried again after failures `retry_if` accepts, with backoff and full
    /// jitter (or the server's `Retry-After`).
    async fn call<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
        retry_if: fn(&ApiError) -> bool,
    ) -> Result<T, ApiError> {
        let route = route(path, query);
        let mut delays = self.inner.retry.delays();
        let mut timeouts = 0;
        loop {
            let error = match self.attempt(&method, path, &route, query, body).await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            if !retry_if(&error) {
                return Err(error);
            }
            // Each timeout already waited a whole request timeout: do not wait ten of them.
            if matches!(error.kind, ApiErrorKind::Transport { timeout: true, .. }) {
                timeouts += 1;
                if timeouts >= MAX_TIMEOUTS {
                    return Err(error);
                }
            }
            let Some(delay) = delays.next() else {
                return Err(error);
            };
            let delay = error.retry_after().unwrap_or(delay);
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
    ) -> Result<T, ApiError> {
        let _slot = self.inner.pace.slot().await.ok_or_else(|| {
            ApiError::new(
                method,
                route,
                ApiErrorKind::Transport {
                    message: "the client is shutting down".into(),
                    not_sent: true,
                    timeout: false,
                },
            )
        })?;
        let mut refreshed = false;
        loop {
            let (token, generation) = self.token(method, route, None).await?;
            let result = self
                .send(method, path, route, query, body, token.as_ref())
                .await;
            let (status, retry_after, bytes) = match result {
                Ok(answer) => answer,
                Err(error) => {
                    if matches!(error.kind, ApiErrorKind::Transport { timeout: true, .. }) {
                        self.slow_down(None);
                    }
                    return Err(error);
                }
            };
            if status == StatusCode::UNAUTHORIZED
                && !refreshed
                && matches!(self.inner.auth, Auth::Application { .. })
            {
                self.inner
                    .reporter
                    .log(1, &format!("{method} {route}: 401, refreshing the token"));
                self.token(method, route, Some(generation)).await?;
                refreshed = true;
                continue;
            }
            let result = error::decode(method, route, status, retry_after, &bytes);
            match &result {
                Ok(_) => {
                    if let Some(rate) = self.inner.pace.success() {
                        self.inner.reporter.pace(rate);
                    }
                }
                Err(e) if e.is_throttle() => self.slow_down(e.retry_after()),
                Err(_) => {}
            }
            return result;
        }
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

    /// Sends one request and reads the whole answer. The caller holds a slot of the pace.
    async fn send<B: Serialize>(
        &self,
        method: &Method,
        path: &str,
        route: &str,
        query: &[(&str, String)],
        body: Option<&B>,
        token: Option<&Secret>,
    ) -> Result<(StatusCode, Option<Duration>, Vec<u8>), ApiError> {
        let url = format!("{}{path}", self.inner.base);
        let mut request = self.inner.http.request(method.clone(), url);
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token.expose());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let transport = |e: &reqwest::Error, not_sent: bool| {
            ApiError::new(
                method,
                route,
                ApiErrorKind::Transport {
                    message: error::describe(e),
                    not_sent,
                    timeout: e.is_timeout(),
                },
            )
        };
        let started = Instant::now();
        let response = request
            .send()
            .await
            .map_err(|e| transport(&e, e.is_connect()))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut response = response;
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| transport(&e, false))? {
            if bytes.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(ApiError::new(
                    method,
                    route,
                    ApiErrorKind::Decode(format!(
                        "the response body is larger than {} MB",
                        MAX_BODY_BYTES / (1024 * 1024)
                    )),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        self.inner.reporter.log(
            1,
            &format!(
                "{method} {route} → {} in {} ms",
                status.as_u16(),
                started.elapsed().as_millis()
            ),
        );
        Ok((status, retry_after, bytes))
    }

    /// The bearer token to send, exchanging application credentials when there is none yet, when
    /// it is about to expire, or when `stale_generation` names the generation a 401 was answered
    /// with (so concurrent 401s refresh once, not once each).
    async fn token(
        &self,
        method: &Method,
        route: &str,
        stale_generation: Option<u64>,
    ) -> Result<(Option<Secret>, u64), ApiError> {
        let (request, cached) = match &self.inner.auth {
            Auth::None => return Ok((None, 0)),
            Auth::Static(token) => return Ok((Some(token.clone()), 0)),
            Auth::Application { request, token } => (request, token),
        };
        let mut state = cached.lock().await;
        if let Some(current) = state.as_ref() {
            let fresh = Instant::now() < current.refresh_at;
            if fresh && stale_generation != Some(current.generation) {
                return Ok((Some(current.value.clone()), current.generation));
            }
        }
        let generation = state.as_ref().map_or(1, |t| t.generation + 1);
        let token_route = "/applications/token";
        let mut delays = self.inner.retry.delays();
        let response: TokenResponse = loop {
            let answer = self
                .send(
                    &Method::POST,
                    token_route,
                    token_route,
                    &[],
                    Some(request),
                    None,
                )
                .await
                .and_then(|(status, retry_after, bytes)| {
                    error::decode(&Method::POST, token_route, status, retry_after, &bytes)
                });
            match answer {
                Ok(response) => break response,
                // Exchanging a token changes nothing on the server: safe to try again.
                Err(e) if e.is_transient() => match delays.next() {
                    Some(delay) => tokio::time::sleep(e.retry_after().unwrap_or(delay)).await,
                    None => return Err(e),
                },
                Err(mut e) => {
                    if let ApiErrorKind::Status { message, .. } = &mut e.kind {
                        *message = format!(
                            "{message} (check AIRBYTE_CLIENT_ID and AIRBYTE_CLIENT_SECRET; needed for {method} {route})"
                        );
                    }
                    return Err(e);
                }
            }
        };
        let lifetime = Duration::from_secs(u64::try_from(response.expires_in.max(1)).unwrap_or(1));
        // Refresh a little before expiry: a fifth of the lifetime early, at most a minute.
        let margin = (lifetime / 5).min(Duration::from_secs(60));
        self.inner.reporter.log(
            2,
            &format!(
                "obtained an application token valid for {} s",
                lifetime.as_secs()
            ),
        );
        let token = AppToken {
            value: response.access_token,
            refresh_at: Instant::now() + lifetime.saturating_sub(margin),
            generation,
        };
        *state = Some(token.clone());
        Ok((Some(token.value), generation))
    }
}

/// The route as shown in messages: path and query, never the host or a secret.
fn route(path: &str, query: &[(&str, String)]) -> String {
    let mut route = path.to_string();
    for (i, (key, value)) in query.iter().enumerate() {
        route.push(if i == 0 { '?' } else { '&' });
        route.push_str(key);
        route.push('=');
        route.push_str(value);
    }
    route
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked() {
        assert_eq!(
            check_base_url("http://127.0.0.1:8006/v1/", false),
            Ok("http://127.0.0.1:8006/v1".into())
        );
        assert!(check_base_url("http://localhost:8000/api/public/v1", false).is_ok());
        assert!(check_base_url("https://api.airbyte.com/v1", false).is_ok());
        assert!(matches!(
            check_base_url("http://airbyte.internal/v1", false),
            Err(UrlError::Insecure(_))
        ));
        assert!(check_base_url("http://airbyte.internal/v1", true).is_ok());
        assert!(matches!(
            check_base_url("ftp://x/v1", false),
            Err(UrlError::Scheme(_))
        ));
        let err = check_base_url("https://me:hunter2@api.airbyte.com/v1", false).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
