//! What a failed API call looks like, and how to read it: may it be retried, did it throttle,
//! could a write have taken effect anyway?

use crate::wire::Problem;
use reqwest::{Method, StatusCode};
use std::fmt;
use std::time::Duration;

/// A failed API call: which call, and what the server (or the network) said. Never holds a
/// secret: routes carry no credentials, and the client takes its secrets and anything shaped
/// like a bearer token out of the server's text ([`ApiError::redacted`]) before anyone sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{method} {route}: {kind}")]
pub struct ApiError {
    pub method: Method,
    /// The path and query below the base URL, e.g. `/streams?sourceId=…`.
    pub route: String,
    pub kind: ApiErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiErrorKind {
    /// The server answered with an error status.
    Status {
        status: u16,
        /// Its `data.message`, else `detail`, else the body's first line.
        message: String,
        /// Its problem `type` (`error:connection/locked`, …), when it sent one.
        problem_type: Option<String>,
        /// Its `Retry-After`, when it sent one (Airbyte does not, but proxies may).
        retry_after: Option<Duration>,
    },
    /// No usable answer: connection refused or reset, TLS, timeout.
    Transport {
        message: String,
        /// The request never left: nothing can have happened on the server.
        not_sent: bool,
        /// No answer within the request timeout.
        timeout: bool,
    },
    /// A success status with a body that is not what the API promises.
    Decode(String),
    /// Every answer was fine, but a list moved under its reads too often to be read reliably
    /// (see [`super::pages`]); the message says so.
    Unstable(String),
    /// The request was never sent: exchanging the credentials for its token failed so.
    Token(Box<ApiError>),
}

impl fmt::Display for ApiErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiErrorKind::Status {
                status, message, ..
            } => {
                let reason = StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                write!(f, "{status} {reason}: {message}")
            }
            ApiErrorKind::Transport { message, .. } | ApiErrorKind::Unstable(message) => {
                f.write_str(message)
            }
            ApiErrorKind::Decode(message) => write!(f, "unexpected response: {message}"),
            ApiErrorKind::Token(error) => write!(f, "could not get an access token: {error}"),
        }
    }
}

impl ApiError {
    pub(crate) fn new(method: &Method, route: &str, kind: ApiErrorKind) -> Self {
        ApiError {
            method: method.clone(),
            route: route.to_string(),
            kind,
        }
    }

    /// The same error, with `note` added to its message.
    pub(crate) fn with_note(mut self, note: &str) -> Self {
        self.push_note(note);
        self
    }

    fn push_note(&mut self, note: &str) {
        match &mut self.kind {
            ApiErrorKind::Status { message, .. }
            | ApiErrorKind::Transport { message, .. }
            | ApiErrorKind::Decode(message)
            | ApiErrorKind::Unstable(message) => {
                message.push_str("; ");
                message.push_str(note);
            }
            ApiErrorKind::Token(error) => error.push_note(note),
        }
    }

    /// The same error with `redact` applied to every text that came from elsewhere.
    pub(crate) fn redacted(mut self, redact: &dyn Fn(&str) -> String) -> Self {
        self.redact(redact);
        self
    }

    fn redact(&mut self, redact: &dyn Fn(&str) -> String) {
        match &mut self.kind {
            ApiErrorKind::Status {
                message,
                problem_type,
                ..
            } => {
                *message = redact(message);
                if let Some(problem_type) = problem_type {
                    *problem_type = redact(problem_type);
                }
            }
            ApiErrorKind::Transport { message, .. }
            | ApiErrorKind::Decode(message)
            | ApiErrorKind::Unstable(message) => {
                *message = redact(message);
            }
            ApiErrorKind::Token(error) => error.redact(redact),
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self.kind {
            ApiErrorKind::Status { status, .. } => Some(status),
            _ => None,
        }
    }

    /// The server asked us to slow down (429, or 409 `try-again-later`). Nothing took effect.
    pub fn is_throttle(&self) -> bool {
        match &self.kind {
            ApiErrorKind::Token(error) => error.is_throttle(),
            ApiErrorKind::Status { status: 429, .. } => true,
            ApiErrorKind::Status {
                status: 409,
                problem_type,
                ..
            } => problem_type
                .as_deref()
                .is_some_and(|t| t.contains("try-again-later")),
            _ => false,
        }
    }

    /// Worth another try for a read: the network, a throttle, or a server error.
    pub fn is_transient(&self) -> bool {
        match &self.kind {
            ApiErrorKind::Transport { .. } => true,
            ApiErrorKind::Status { status, .. } => *status >= 500 || self.is_throttle(),
            ApiErrorKind::Decode(_) | ApiErrorKind::Unstable(_) => false,
            ApiErrorKind::Token(error) => error.is_transient(),
        }
    }

    /// The request surely never reached the server: it could not be sent, or had no token.
    pub fn not_sent(&self) -> bool {
        match &self.kind {
            ApiErrorKind::Transport { not_sent, .. } => *not_sent,
            ApiErrorKind::Token(_) => true,
            ApiErrorKind::Status { .. } | ApiErrorKind::Decode(_) | ApiErrorKind::Unstable(_) => {
                false
            }
        }
    }

    /// The server could not be reached at all: the connection was refused, or the host name did
    /// not resolve (the request, or its token exchange, never left).
    pub fn is_unreachable(&self) -> bool {
        match &self.kind {
            ApiErrorKind::Transport {
                not_sent, timeout, ..
            } => *not_sent && !*timeout,
            ApiErrorKind::Token(error) => error.is_unreachable(),
            ApiErrorKind::Status { .. } | ApiErrorKind::Decode(_) | ApiErrorKind::Unstable(_) => {
                false
            }
        }
    }

    /// No answer came within the request timeout (the request's, or its token exchange's).
    pub fn is_timeout(&self) -> bool {
        match &self.kind {
            ApiErrorKind::Transport { timeout, .. } => *timeout,
            ApiErrorKind::Token(error) => error.is_timeout(),
            ApiErrorKind::Status { .. } | ApiErrorKind::Decode(_) | ApiErrorKind::Unstable(_) => {
                false
            }
        }
    }

    /// A write that failed this way may still have happened on the server (a timeout, a reset,
    /// a gateway error, a 5xx), so its effect must be looked up before it is tried again.
    pub fn is_ambiguous(&self) -> bool {
        match &self.kind {
            ApiErrorKind::Transport { not_sent, .. } => !not_sent,
            ApiErrorKind::Status { status, .. } => *status >= 500,
            ApiErrorKind::Decode(_) | ApiErrorKind::Unstable(_) | ApiErrorKind::Token(_) => false,
        }
    }

    /// The server's `Retry-After`, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match &self.kind {
            ApiErrorKind::Status { retry_after, .. } => *retry_after,
            ApiErrorKind::Token(error) => error.retry_after(),
            _ => None,
        }
    }
}

/// A success body decoded as `T`, or the error the server described.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    method: &Method,
    route: &str,
    status: StatusCode,
    retry_after: Option<Duration>,
    bytes: &[u8],
) -> Result<T, ApiError> {
    if status.is_success() {
        // A 204 has no body; `()` and `Option` decode from `null`.
        let bytes = if bytes.is_empty() { b"null" } else { bytes };
        return serde_json::from_slice(bytes).map_err(|e| {
            ApiError::new(method, route, ApiErrorKind::Decode(shorten(&e.to_string())))
        });
    }
    let (message, problem_type) = server_message(bytes);
    Err(ApiError::new(
        method,
        route,
        ApiErrorKind::Status {
            status: status.as_u16(),
            message,
            problem_type,
            retry_after,
        },
    ))
}

/// The server's own words from an error body: Airbyte's problem body (`data.message`, else
/// `detail`, with its `type`), the rate limiter's `{"message": …}`, or the first line of
/// whatever text came back.
pub(crate) fn server_message(bytes: &[u8]) -> (String, Option<String>) {
    if let Ok(problem) = serde_json::from_slice::<Problem>(bytes) {
        return (
            shorten(problem.message()),
            Some(shorten(&problem.problem_type)),
        );
    }
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(bytes) {
        if let Some(message) = map.get("message").and_then(|m| m.as_str()) {
            return (shorten(message), None);
        }
    }
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().next().unwrap_or("").trim();
    let message = if line.is_empty() {
        "(no message)".to_string()
    } else {
        shorten(line)
    };
    (message, None)
}

/// The most characters of a server's text an error shows.
const MAX_MESSAGE_CHARS: usize = 300;

/// A server's text, cut to a readable length: a hostile answer cannot flood the terminal.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// A transport error with its causes, without the URL reqwest puts in front (the route is
/// already in the message).
pub(crate) fn describe(error: &reqwest::Error) -> String {
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
        let mut text = error.to_string();
        if let Some(url) = error.url() {
            text = text.replace(&format!(" ({url})"), "");
        }
        parts.push(text);
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_messages_are_found_in_every_shape() {
        let problem = br#"{"status":400,"type":"https://reference.airbyte.com/reference/errors#bad-request","title":"bad-request","detail":"d","documentationUrl":null,"data":{"message":"No fields selected for stream orders"}}"#;
        assert_eq!(
            server_message(problem).0,
            "No fields selected for stream orders"
        );
        assert_eq!(
            server_message(br#"{"message":"You are being rate limited."}"#).0,
            "You are being rate limited."
        );
        assert_eq!(server_message(b"<html>\nBad gateway").0, "<html>");
        assert_eq!(server_message(b"").0, "(no message)");
        assert_eq!(server_message(b"{\"status\": 4").0, "{\"status\": 4");
    }

    #[test]
    fn errors_name_method_route_status_and_message() {
        let err = decode::<()>(
            &Method::POST,
            "/connections",
            StatusCode::BAD_REQUEST,
            None,
            br#"{"status":400,"type":"t","title":"bad-request","detail":"d","data":{"message":"Duplicate stream found"}}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "POST /connections: 400 Bad Request: Duplicate stream found"
        );
        assert!(!err.is_transient() && !err.is_ambiguous());
    }

    #[test]
    fn classification() {
        let status = |status, problem_type: Option<&str>| {
            ApiError::new(
                &Method::GET,
                "/x",
                ApiErrorKind::Status {
                    status,
                    message: String::new(),
                    problem_type: problem_type.map(str::to_string),
                    retry_after: None,
                },
            )
        };
        assert!(status(429, None).is_throttle());
        assert!(status(409, Some("error:try-again-later")).is_throttle());
        assert!(!status(409, Some("error:connection/locked")).is_transient());
        assert!(status(503, None).is_transient() && status(503, None).is_ambiguous());
        assert!(!status(429, None).is_ambiguous(), "a 429 had no effect");
        let refused = ApiError::new(
            &Method::POST,
            "/connections",
            ApiErrorKind::Transport {
                message: "could not connect".into(),
                not_sent: true,
                timeout: false,
            },
        );
        assert!(refused.is_transient() && !refused.is_ambiguous());
        // A failed token exchange: the request never left, so a create may be tried again.
        let token = |status| {
            let exchange = ApiError {
                method: Method::POST,
                route: "/applications/token".into(),
                ..status_error(status)
            };
            ApiError::new(
                &Method::POST,
                "/connections",
                ApiErrorKind::Token(Box::new(exchange)),
            )
        };
        assert!(token(500).is_transient() && token(500).not_sent() && !token(500).is_ambiguous());
        assert!(!token(401).is_transient() && !token(401).is_ambiguous());
        assert_eq!(
            token(500).to_string(),
            "POST /connections: could not get an access token: POST /applications/token: \
             500 Internal Server Error: down"
        );
    }

    fn status_error(status: u16) -> ApiError {
        ApiError::new(
            &Method::GET,
            "/x",
            ApiErrorKind::Status {
                status,
                message: "down".into(),
                problem_type: None,
                retry_after: None,
            },
        )
    }
}
