//! The Airbyte API client: the only code that talks HTTP to Airbyte.
//!
//! This file holds the [`Client`] itself: one `reqwest` client (rustls, connection reuse, a long
//! timeout for what may run a schema discover and a shorter one for reads, no redirect followed,
//! `User-Agent: replicate/<version>`), the typed endpoints, and the sending of one request with
//! its answer read whole. Around it: [`pace`] caps the requests in flight across
//! the whole run and slows everything down when the server throttles; `auth` holds the bearer
//! token, static or exchanged from application credentials and refreshed before `expires_in`
//! runs out (and once more on a 401); `retry` tries reads again with exponential backoff and full
//! jitter; `pages` reads lists with its own offset, never trusting `next`; `url` checks the base
//! URL; `error` says what a failure was. Writes are never retried here once they may have taken
//! effect: that needs a look at the server first, which is the executor's job. Errors carry the
//! method, the route, the status and the server's message, and never a secret.

mod auth;
mod error;
mod jobs;
pub mod pace;
mod pages;
mod retry;
mod url;

pub use error::{ApiError, ApiErrorKind};
pub use pages::{FirstPage, InWorkspace, PAGE_SIZE};
pub use retry::RetryPolicy;
pub use url::{UrlError, check_base_url};

use crate::clock::ServerClock;
use crate::report::events::Reporter;
use crate::secret::Secret;
use crate::wire::{
    ConnectionCreateRequest, ConnectionPatchRequest, ConnectionResponse, DestinationResponse,
    GrantType, SourceResponse, StreamProperties, Tag, TagCreateRequest, TagPatchRequest,
    TagsResponse, TokenRequest,
};
use auth::Auth;
use pace::Pace;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use uuid::Uuid;

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
    /// How long one request may take: a create runs a schema discover, and so does
    /// `GET /streams` (a source's catalog), so this is long (`--request-timeout`, 120 s).
    pub timeout: Duration,
    /// How long one request that only reads may take (`--read-timeout`, 30 s): every `GET` but
    /// `GET /streams`, and the token exchange. Airbyte answers those in well under a second; a
    /// busy self-hosted one in a few. Never longer than `timeout`.
    pub read_timeout: Duration,
    /// The longest one call may take, its retries and waits included; a `Retry-After` that
    /// would go past it ends the call at once, with the server's error. The command line sets
    /// it to `--target-timeout`: no request made for a target may outlive the target.
    pub give_up_after: Duration,
    /// Allow plain `http://` to hosts other than loopback.
    pub allow_insecure_http: bool,
    pub retry: RetryPolicy,
    /// Extra trusted CA certificates (PEM), for a self-hosted Airbyte behind an internal CA.
    pub ca_certificates: Option<Vec<u8>>,
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

/// The Airbyte API client. Cheap to clone; clones share the connection pool, the token and the
/// concurrency cap.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: String,
    /// `base`, parsed once: each request only sets its path, so no request parses the host.
    base_url: reqwest::Url,
    auth: Auth,
    known: auth::Known,
    pace: Pace,
    concurrency: usize,
    timeout: Duration,
    read_timeout: Duration,
    give_up_after: Duration,
    retry: RetryPolicy,
    reporter: Arc<dyn Reporter>,
    contact: Counters,
    /// The server's clock, read from the answers to tag requests (the lease's).
    clock: ServerClock,
    /// Catalog reads started ahead ([`Client::read_ahead_catalogs`]), by (source, destination).
    ahead: std::sync::Mutex<HashMap<(Uuid, Uuid), Ahead>>,
}

/// A catalog read started ahead, running on its own.
type Ahead = tokio::task::JoinHandle<Result<Vec<StreamProperties>, ApiError>>;

/// What the server has answered so far, for the hints of a run that failed as a whole.
#[derive(Debug, Default)]
struct Counters {
    answers: AtomicU64,
    not_found: AtomicU64,
    refused: AtomicU64,
}

/// How the server answered the run so far (see [`Client::contact`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contact {
    /// Answers of any status.
    pub answers: u64,
    /// Answers that were 404.
    pub not_found: u64,
    /// Answers that refused the credentials: a 401, or a token exchange turned down.
    pub refused: u64,
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
            // No redirect is followed: a 3xx is an error naming where it pointed. Following one
            // would re-send the token, or the client secret in a token exchange's body, to
            // wherever the server says, over plain http too; telling the user to fix --url is
            // one rule with no hop to check.
            .redirect(reqwest::redirect::Policy::none())
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
        let base_url = reqwest::Url::parse(&base).map_err(|e| ClientError::Http(e.to_string()))?;
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
                token: Mutex::new(auth::Exchanges::default()),
                exchanged: std::sync::atomic::AtomicU64::new(0),
            },
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                base_url,
                auth,
                known: auth::Known::new(&config.credentials),
                pace: Pace::new(config.concurrency),
                concurrency: config.concurrency,
                timeout: config.timeout,
                read_timeout: config.read_timeout,
                give_up_after: config.give_up_after,
                retry: config.retry,
                reporter,
                contact: Counters::default(),
                clock: ServerClock::default(),
                ahead: std::sync::Mutex::new(HashMap::new()),
            }),
        })
    }

    /// How the server answered so far.
    pub fn contact(&self) -> Contact {
        let c = &self.inner.contact;
        Contact {
            answers: c.answers.load(Ordering::Relaxed),
            not_found: c.not_found.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
        }
    }

    /// At most this many requests are in flight at once.
    pub fn concurrency(&self) -> usize {
        self.inner.concurrency
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

    /// `GET /streams?sourceId=…&destinationId=…`: the source's catalog as the pair sees it; the
    /// answer of a read started ahead for the pair, if there is one (once).
    pub async fn streams(
        &self,
        source: Uuid,
        destination: Uuid,
    ) -> Result<Vec<StreamProperties>, ApiError> {
        let ahead = self
            .inner
            .ahead
            .lock()
            .ok()
            .and_then(|mut ahead| ahead.remove(&(source, destination)));
        // A read ahead that was aborted is made again.
        if let Some(Ok(read)) = futures::future::OptionFuture::from(ahead).await {
            return read;
        }
        self.read_streams(source, destination).await
    }

    /// Starts reading these sources' catalogs (with `destination`) now, each on its own task
    /// under the usual pace, for [`Client::streams`] to take later. `apply` reads ahead the
    /// catalogs of the copies it will surely create while it is still taking its lease and
    /// listing the connections, so that its first create waits for neither.
    pub fn read_ahead_catalogs(&self, sources: impl IntoIterator<Item = Uuid>, destination: Uuid) {
        let Ok(mut ahead) = self.inner.ahead.lock() else {
            return;
        };
        for source in sources {
            let client = self.clone();
            ahead.entry((source, destination)).or_insert_with(|| {
                tokio::spawn(async move { client.read_streams(source, destination).await })
            });
        }
    }

    /// Stops the catalog reads started ahead that nobody took (an interrupted run).
    pub fn forget_reads_ahead(&self) {
        if let Ok(mut ahead) = self.inner.ahead.lock() {
            for (_, read) in ahead.drain() {
                read.abort();
            }
        }
    }

    async fn read_streams(
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
        let no_effect = |e: &ApiError| e.is_throttle() || (e.not_sent() && e.is_transient());
        self.call(Method::POST, "/connections", &[], Some(body), no_effect)
            .await
    }

    /// `PATCH /connections/{id}`. Only the fields sent are set, so sending it again has the same
    /// effect: it is tried again like a read (a lost answer, a 5xx, a throttle).
    pub async fn patch_connection(
        &self,
        id: Uuid,
        patch: &ConnectionPatchRequest,
    ) -> Result<ConnectionResponse, ApiError> {
        let route = format!("/connections/{id}");
        self.call(
            Method::PATCH,
            &route,
            &[],
            Some(patch),
            ApiError::is_transient,
        )
        .await
    }

    /// `DELETE /connections/{id}` (Airbyte's soft delete). Idempotent, so tried again like a
    /// read; a 404 means the connection is gone, which is what was asked (an earlier try whose
    /// answer was lost, or someone else, deleted it).
    pub async fn delete_connection(&self, id: Uuid) -> Result<(), ApiError> {
        let path = format!("/connections/{id}");
        match self
            .call::<(), ()>(Method::DELETE, &path, &[], None, ApiError::is_transient)
            .await
        {
            Err(e) if e.status() == Some(404) => Ok(()),
            other => other,
        }
    }

    /// `GET /tags?workspaceIds=…`: the workspace's tags (not paged).
    pub async fn tags(&self, workspace: Uuid) -> Result<Vec<Tag>, ApiError> {
        let query = [("workspaceIds", workspace.to_string())];
        let tags: TagsResponse = self.get("/tags", &query).await?;
        Ok(tags.data)
    }

    /// `PATCH /tags/{id}`: name and colour both replaced. Sending it again has the same effect,
    /// so it is tried again like a read.
    pub async fn update_tag(&self, id: Uuid, request: &TagPatchRequest) -> Result<Tag, ApiError> {
        let route = format!("/tags/{id}");
        self.call(
            Method::PATCH,
            &route,
            &[],
            Some(request),
            ApiError::is_transient,
        )
        .await
    }

    /// `DELETE /tags/{id}`. Idempotent, so tried again like a read; a 404 means the tag is
    /// gone, which is what was asked.
    pub async fn delete_tag(&self, id: Uuid) -> Result<(), ApiError> {
        let path = format!("/tags/{id}");
        match self
            .call::<(), ()>(Method::DELETE, &path, &[], None, ApiError::is_transient)
            .await
        {
            Err(e) if e.status() == Some(404) => Ok(()),
            other => other,
        }
    }

    /// Seconds since the epoch by the server's clock (the `Date` of its last answer to a tag
    /// request), else this machine's: what the plan's lease is timed by.
    pub fn server_now(&self) -> i64 {
        self.inner.clock.now()
    }

    /// `POST /tags`. A workspace holds one tag of a name, so sending it again cannot make a
    /// second: it is tried again like a read, and a 409 (`error:tag-already-exists`) after a lost
    /// answer means the first try made it (the caller reads the tags again).
    pub async fn create_tag(&self, request: &TagCreateRequest) -> Result<Tag, ApiError> {
        self.call(
            Method::POST,
            "/tags",
            &[],
            Some(request),
            ApiError::is_transient,
        )
        .await
    }

    pub(super) async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ApiError> {
        self.call::<T, ()>(Method::GET, path, query, None, ApiError::is_transient)
            .await
    }

    /// Sends one request and reads the whole answer. The caller holds a slot of the pace.
    pub(super) async fn send<B: Serialize>(
        &self,
        method: &Method,
        path: &str,
        route: &str,
        query: &[(&str, String)],
        body: Option<&B>,
        token: Option<&Secret>,
    ) -> Result<(StatusCode, Option<Duration>, Vec<u8>), ApiError> {
        let mut url = self.inner.base_url.clone();
        url.set_path(&format!(
            "{}{path}",
            self.inner.base_url.path().trim_end_matches('/')
        ));
        let mut request = self
            .inner
            .http
            .request(method.clone(), url)
            .timeout(self.timeout_for(method, path));
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
        if path.starts_with("/tags") {
            if let Some(date) = response.headers().get(reqwest::header::DATE) {
                self.inner.clock.observe(date.as_bytes());
            }
        }
        let contact = &self.inner.contact;
        contact.answers.fetch_add(1, Ordering::Relaxed);
        if status == StatusCode::NOT_FOUND {
            contact.not_found.fetch_add(1, Ordering::Relaxed);
        }
        if status == StatusCode::UNAUTHORIZED
            || (path == auth::TOKEN_ROUTE && status.is_client_error())
        {
            contact.refused.fetch_add(1, Ordering::Relaxed);
        }
        if status.is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned());
            return Err(ApiError::new(
                method,
                route,
                ApiErrorKind::Status {
                    status: status.as_u16(),
                    message: url::redirect_message(response.url(), location.as_deref()),
                    problem_type: None,
                    retry_after: None,
                },
            ));
        }
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

    /// The timeout of one request: short for a read, long for what may run a schema discover
    /// (a create, a catalog).
    fn timeout_for(&self, method: &Method, path: &str) -> Duration {
        let reads = (*method == Method::GET && path != "/streams") || path == auth::TOKEN_ROUTE;
        if reads {
            self.inner.read_timeout.min(self.inner.timeout)
        } else {
            self.inner.timeout
        }
    }
}

/// Which requests a freed slot of the pace goes to first (see [`pace`]): catalog reads and
/// the targets' writes (to connections and jobs) yield to the rest; a write waits for no
/// catalog read queued before it while many are.
fn priority(method: &Method, path: &str) -> pace::Priority {
    if *method == Method::GET {
        if path == "/streams" {
            pace::Priority::Catalog
        } else {
            pace::Priority::First
        }
    } else if path.starts_with("/connections") || path.starts_with("/jobs") {
        pace::Priority::Write
    } else {
        pace::Priority::First
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
    use crate::report::events::Silent;

    fn client(timeout: u64, read_timeout: u64) -> Client {
        let config = ClientConfig {
            base_url: "http://127.0.0.1:9/v1".into(),
            credentials: Credentials::None,
            concurrency: 1,
            timeout: Duration::from_secs(timeout),
            read_timeout: Duration::from_secs(read_timeout),
            give_up_after: Duration::from_secs(600),
            allow_insecure_http: false,
            retry: RetryPolicy::default(),
            ca_certificates: None,
        };
        Client::new(&config, Arc::new(Silent)).unwrap()
    }

    #[test]
    fn reads_time_out_sooner_than_what_may_run_a_discover() {
        let client = client(120, 30);
        let secs = |method, path| client.timeout_for(&method, path).as_secs();
        assert_eq!(secs(Method::GET, "/connections/x"), 30);
        assert_eq!(secs(Method::GET, "/sources"), 30);
        assert_eq!(secs(Method::POST, "/applications/token"), 30);
        assert_eq!(
            secs(Method::GET, "/streams"),
            120,
            "a catalog runs a discover"
        );
        assert_eq!(secs(Method::POST, "/connections"), 120, "so does a create");
        // --request-timeout bounds every request.
        let client = super::tests::client(5, 30);
        assert_eq!(client.timeout_for(&Method::GET, "/sources").as_secs(), 5);
    }
}
