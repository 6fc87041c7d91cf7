//! The Airbyte API client: the only code that talks HTTP to Airbyte.
//!
//! One `reqwest` client (rustls, connection reuse, a request timeout, `User-Agent:
//! replicate/<version>`); a semaphore that caps the requests in flight across the whole run;
//! bearer tokens, either static or exchanged from application credentials and refreshed before
//! `expires_in` runs out (and once more on a 401); list paging that keeps its own offset and never
//! trusts `next`. Errors carry the method, the route, the status and the server's message, and
//! never a secret.

use crate::report::events::Reporter;
use crate::secret::Secret;
use crate::wire::{
    ConnectionCreateRequest, ConnectionResponse, DestinationResponse, GrantType, Page, Problem,
    SourceResponse, StreamProperties, TokenRequest, TokenResponse,
};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Semaphore};
use uuid::Uuid;

/// The most items a list page may hold (the API's maximum `limit`).
pub const PAGE_SIZE: usize = 100;

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
}

/// A failed API call: which call, and what the server (or the network) said.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{method} {route}: {kind}")]
pub struct ApiError {
    pub method: Method,
    /// The path and query below the base URL, e.g. `/streams?sourceId=…`.
    pub route: String,
    pub kind: ApiErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiErrorKind {
    /// The server answered with an error status; `message` is its `data.message` or `detail`.
    Status { status: u16, message: String },
    /// No usable answer: connection refused, reset, TLS, timeout.
    Transport { message: String, timeout: bool },
    /// A success status with a body that is not what the API promises.
    Decode(String),
}

impl fmt::Display for ApiErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiErrorKind::Status { status, message } => {
                let reason = StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                write!(f, "{status} {reason}: {message}")
            }
            ApiErrorKind::Transport { message, .. } => f.write_str(message),
            ApiErrorKind::Decode(message) => write!(f, "unexpected response: {message}"),
        }
    }
}

impl ApiError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self.kind {
            ApiErrorKind::Status { status, .. } => Some(status),
            _ => None,
        }
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
    permits: Semaphore,
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
    pub fn new(config: &ClientConfig, reporter: Arc<dyn Reporter>) -> Result<Client, UrlError> {
        let base = check_base_url(&config.base_url, config.allow_insecure_http)?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("replicate/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(config.concurrency)
            .build()
            .map_err(|e| UrlError::Invalid(base.clone(), e.to_string()))?;
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
                permits: Semaphore::new(config.concurrency.max(1)),
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
        self.call(Method::POST, "/connections", &[], Some(body))
            .await
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ApiError> {
        self.call::<T, ()>(Method::GET, path, query, None).await
    }

    /// All pages of a list endpoint. Keeps its own offset and stops at the first short or empty
    /// page: `next` is set even on the last page (DIGEST §3.5).
    async fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        workspace: Option<Uuid>,
        on_page: impl Fn(usize),
    ) -> Result<Vec<T>, ApiError> {
        let mut all = Vec::new();
        loop {
            let mut query = vec![
                ("limit", PAGE_SIZE.to_string()),
                ("offset", all.len().to_string()),
            ];
            if let Some(ws) = workspace {
                query.push(("workspaceIds", ws.to_string()));
            }
            let page: Page<T> = self.get(path, &query).await?;
            let n = page.data.len();
            all.extend(page.data);
            on_page(n);
            if n < PAGE_SIZE {
                return Ok(all);
            }
        }
    }

    /// One API call under the concurrency cap, with the bearer token, refreshed once on a 401.
    async fn call<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let route = route(path, query);
        let mut refreshed = false;
        loop {
            let (token, generation) = self.token(&method, &route, None).await?;
            let (status, bytes) = self
                .send(&method, path, &route, query, body, token.as_ref())
                .await?;
            if status == StatusCode::UNAUTHORIZED
                && !refreshed
                && matches!(self.inner.auth, Auth::Application { .. })
            {
                self.inner
                    .reporter
                    .log(1, &format!("{method} {route}: 401, refreshing the token"));
                self.token(&method, &route, Some(generation)).await?;
                refreshed = true;
                continue;
            }
            return decode(&method, &route, status, &bytes);
        }
    }

    /// Sends one request while holding a permit, and reads the whole answer.
    async fn send<B: Serialize>(
        &self,
        method: &Method,
        path: &str,
        route: &str,
        query: &[(&str, String)],
        body: Option<&B>,
        token: Option<&Secret>,
    ) -> Result<(StatusCode, Vec<u8>), ApiError> {
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
        let transport = |e: &reqwest::Error| ApiError {
            method: method.clone(),
            route: route.to_string(),
            kind: ApiErrorKind::Transport {
                message: describe(e),
                timeout: e.is_timeout(),
            },
        };
        let _permit = self.inner.permits.acquire().await.map_err(|_| ApiError {
            method: method.clone(),
            route: route.to_string(),
            kind: ApiErrorKind::Transport {
                message: "the client is shutting down".into(),
                timeout: false,
            },
        })?;
        let started = Instant::now();
        let response = request.send().await.map_err(|e| transport(&e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| transport(&e))?.to_vec();
        self.inner.reporter.log(
            1,
            &format!(
                "{method} {route} → {} in {} ms",
                status.as_u16(),
                started.elapsed().as_millis()
            ),
        );
        Ok((status, bytes))
    }

    /// The bearer token to send, exchanging application credentials when there is none yet, when
    /// it is about to expire, or when `stale_generation` names the generation a 401 was answered with.
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
        let (status, bytes) = self
            .send(
                &Method::POST,
                token_route,
                token_route,
                &[],
                Some(request),
                None,
            )
            .await?;
        let response: TokenResponse =
            decode(&Method::POST, token_route, status, &bytes).map_err(|mut e| {
                if matches!(e.kind, ApiErrorKind::Status { .. }) {
                    e.kind = ApiErrorKind::Status {
                        status: status.as_u16(),
                        message: format!(
                            "{} (check AIRBYTE_CLIENT_ID and AIRBYTE_CLIENT_SECRET; needed for {method} {route})",
                            match &e.kind {
                                ApiErrorKind::Status { message, .. } => message.as_str(),
                                _ => "",
                            }
                        ),
                    };
                }
                e
            })?;
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

/// A success body decoded as `T`, or the error the server described.
fn decode<T: DeserializeOwned>(
    method: &Method,
    route: &str,
    status: StatusCode,
    bytes: &[u8],
) -> Result<T, ApiError> {
    let error = |kind| ApiError {
        method: method.clone(),
        route: route.to_string(),
        kind,
    };
    if status.is_success() {
        // A 204 has no body; `()` and `Option` decode from `null`.
        let bytes = if bytes.is_empty() { b"null" } else { bytes };
        return serde_json::from_slice(bytes)
            .map_err(|e| error(ApiErrorKind::Decode(e.to_string())));
    }
    Err(error(ApiErrorKind::Status {
        status: status.as_u16(),
        message: server_message(bytes),
    }))
}

/// The server's own words from an error body: Airbyte's problem body (`data.message`, else
/// `detail`), the rate limiter's `{"message": …}`, or the first line of whatever text came back.
fn server_message(bytes: &[u8]) -> String {
    if let Ok(problem) = serde_json::from_slice::<Problem>(bytes) {
        return problem.message().to_string();
    }
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(bytes) {
        if let Some(message) = map.get("message").and_then(|m| m.as_str()) {
            return message.to_string();
        }
    }
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        "(no message)".to_string()
    } else {
        line.chars().take(300).collect()
    }
}

/// A transport error with its causes, without the URL reqwest puts in front (already in `route`).
fn describe(error: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    if error.is_timeout() {
        parts.push("timed out".to_string());
    } else if error.is_connect() {
        parts.push("could not connect".to_string());
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = cause.source();
    }
    if parts.is_empty() {
        parts.push(error.without_url_ref());
    }
    parts.join(": ")
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let mut text = self.to_string();
        if let Some(url) = self.url() {
            text = text.replace(&format!(" ({url})"), "");
        }
        text
    }
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

    #[test]
    fn server_messages_are_found_in_every_shape() {
        let problem = br#"{"status":400,"type":"t","title":"bad-request","detail":"d","documentationUrl":null,"data":{"message":"No fields selected for stream orders"}}"#;
        assert_eq!(
            server_message(problem),
            "No fields selected for stream orders"
        );
        assert_eq!(
            server_message(br#"{"message":"You are being rate limited."}"#),
            "You are being rate limited."
        );
        assert_eq!(server_message(b"<html>\nBad gateway"), "<html>");
        assert_eq!(server_message(b""), "(no message)");
    }

    #[test]
    fn errors_name_method_route_status_and_message() {
        let err = decode::<()>(
            &Method::POST,
            "/connections",
            StatusCode::BAD_REQUEST,
            br#"{"status":400,"type":"t","title":"bad-request","detail":"d","data":{"message":"Duplicate stream found"}}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "POST /connections: 400 Bad Request: Duplicate stream found"
        );
    }
}
