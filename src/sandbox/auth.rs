//! Who may call: application credentials exchanged for expiring bearer tokens, and static tokens.
//!
//! `POST /applications/token` takes `client_id`, `client_secret` and `grant-type` (hyphen, DIGEST
//! §2) as JSON or as a form, and answers a fresh opaque token with `expires_in` seconds. Every
//! issued token keeps its own expiry and is refused once it has passed. Static tokens from the
//! seed never expire. Every other API route needs `Authorization: Bearer <token>`.

use super::problem::ApiError;
use super::request::parse_json;
use super::seed::Seed;
use crate::secret::Secret;
use crate::wire::{GrantType, TokenRequest, TokenResponse, TokenType};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The credentials the sandbox accepts and the tokens it has issued.
#[derive(Debug)]
pub struct Auth {
    applications: HashMap<String, String>,
    static_tokens: HashSet<String>,
    issued: Mutex<HashMap<String, Instant>>,
    ttl: Duration,
}

impl Auth {
    pub fn new(seed: &Seed, ttl: Duration) -> Self {
        Self {
            applications: seed
                .applications
                .iter()
                .map(|a| (a.client_id.clone(), a.client_secret.clone()))
                .collect(),
            static_tokens: seed.tokens.iter().cloned().collect(),
            issued: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    /// Checks the `Authorization` header of an API request; returns the valid bearer token.
    pub fn check<'h>(&self, headers: &'h HeaderMap) -> Result<&'h str, ApiError> {
        let Some(value) = headers.get(AUTHORIZATION) else {
            return Err(ApiError::invalid_api_key(
                "No Authorization header: send `Authorization: Bearer <token>`.",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or_else(|| {
                ApiError::invalid_api_key("The Authorization header is not `Bearer <token>`.")
            })?;
        if self.static_tokens.contains(token) {
            return Ok(token);
        }
        let mut issued = self
            .issued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match issued.get(token) {
            Some(expiry) if Instant::now() < *expiry => Ok(token),
            Some(_) => {
                issued.remove(token);
                Err(ApiError::invalid_api_key("The access token has expired."))
            }
            None => Err(ApiError::invalid_api_key("The access token is not valid.")),
        }
    }

    /// Answers `POST /applications/token`.
    pub fn issue(&self, headers: &HeaderMap, body: &[u8]) -> Result<TokenResponse, ApiError> {
        let request = parse_token_request(headers, body)?;
        match self.applications.get(&request.client_id) {
            Some(secret) if secret == request.client_secret.expose() => {}
            _ => {
                return Err(ApiError::forbidden(
                    "Invalid client credentials: unknown client_id or wrong client_secret.",
                ));
            }
        }
        let token = format!(
            "sbx.{}.{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let now = Instant::now();
        let mut issued = self
            .issued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Forget expired tokens as new ones are made, so a long run does not grow without bound.
        issued.retain(|_, expiry| *expiry > now);
        issued.insert(token.clone(), now + self.ttl);
        Ok(TokenResponse {
            access_token: Secret::new(token),
            token_type: TokenType::Bearer,
            expires_in: i64::try_from(self.ttl.as_secs() + u64::from(self.ttl.subsec_nanos() > 0))
                .unwrap_or(i64::MAX),
        })
    }
}

/// JSON or form, chosen by `Content-Type` (JSON when absent). `grant-type` may be omitted: the
/// spec's `required` list names `grant_type`, a property that does not exist, so the generated
/// server model leaves the real field optional; any value other than `client_credentials` is 400.
fn parse_token_request(headers: &HeaderMap, body: &[u8]) -> Result<TokenRequest, ApiError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let mut client_id = None;
        let mut client_secret = None;
        let mut grant_type = None;
        for (key, value) in form_urlencoded::parse(body) {
            match key.as_ref() {
                "client_id" => client_id = Some(value.into_owned()),
                "client_secret" => client_secret = Some(value.into_owned()),
                "grant-type" => grant_type = Some(value.into_owned()),
                _ => {}
            }
        }
        let missing = |field: &str| ApiError::bad_request(format!("missing field `{field}`"));
        let grant_type = match grant_type.as_deref() {
            None => None,
            Some("client_credentials") => Some(GrantType::ClientCredentials),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "grant-type: unknown variant `{other}`, expected `client_credentials`"
                )));
            }
        };
        Ok(TokenRequest {
            client_id: client_id.ok_or_else(|| missing("client_id"))?,
            client_secret: Secret::new(client_secret.ok_or_else(|| missing("client_secret"))?),
            grant_type,
        })
    } else if content_type.starts_with("application/json") {
        parse_json(body)
    } else {
        Err(ApiError::bad_request(format!(
            "Content-Type `{content_type}` is not supported: send application/json or \
             application/x-www-form-urlencoded."
        )))
    }
}
