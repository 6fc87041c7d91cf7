//! Reading requests: JSON bodies, path ids, query parameters, and the paging links a list
//! answer echoes back.
//!
//! Bodies are read as bytes and parsed here, so that every malformed body, missing field, bad
//! enum value or bad UUID gets Airbyte's 400 body (with the JSON path of the offending value)
//! instead of a framework's plain-text rejection. Query parameters follow the server's
//! conversions: UUID lists comma-separated and/or repeated, the last of a repeated scalar wins.

use super::problem::ApiError;
use crate::wire::Page;
use axum::http::header::HOST;
use axum::http::{HeaderMap, Uri};
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use uuid::Uuid;

/// Parses a JSON body into a wire type; every failure is a 400 naming what is wrong and where.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "The request body is empty: a JSON object is expected.",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(format!("Malformed JSON: {inner}"))
        } else if path == "." {
            ApiError::bad_request(format!("Invalid request body: {inner}"))
        } else {
            ApiError::bad_request(format!("Invalid value at `{path}`: {inner}"))
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::bad_request(format!("Malformed JSON: {e}")))?;
    Ok(value)
}

pub fn path_uuid(name: &str, value: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(value)
        .map_err(|_| ApiError::bad_request(format!("{name}: `{value}` is not a valid UUID.")))
}

pub fn query_uuid(name: &str, value: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(value.trim()).map_err(|_| {
        ApiError::bad_request(format!(
            "Failed to convert argument [{name}] for value [{value}]: not a valid UUID."
        ))
    })
}

pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn single<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A UUID list parameter, comma-separated and/or repeated.
pub fn uuid_list(pairs: &[(String, String)], name: &str) -> Result<Vec<Uuid>, ApiError> {
    let mut ids = Vec::new();
    for (_, value) in pairs.iter().filter(|(k, _)| k == name) {
        for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let id = query_uuid(name, part)?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    Ok(ids)
}

pub fn bool_param(pairs: &[(String, String)], name: &str, default: bool) -> Result<bool, ApiError> {
    match single(pairs, name) {
        None => Ok(default),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(ApiError::bad_request(format!(
            "Failed to convert argument [{name}] for value [{v}]: expected true or false."
        ))),
    }
}

pub fn int_param(
    pairs: &[(String, String)],
    name: &str,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, ApiError> {
    let Some(raw) = single(pairs, name) else {
        return Ok(default);
    };
    let value: i64 = raw.trim().parse().map_err(|_| {
        ApiError::bad_request(format!(
            "Failed to convert argument [{name}] for value [{raw}]: not an integer."
        ))
    })?;
    if value < min {
        return Err(ApiError::bad_request(format!(
            "{name}: must be greater than or equal to {min}"
        )));
    }
    if value > max {
        return Err(ApiError::bad_request(format!(
            "{name}: must be less than or equal to {max}"
        )));
    }
    Ok(value)
}

/// The query of a list endpoint.
pub struct ListParams {
    pub workspace_ids: Vec<Uuid>,
    pub tag_ids: Vec<Uuid>,
    pub include_deleted: bool,
    pub limit: usize,
    pub offset: usize,
}

impl ListParams {
    /// `limit` 1..=100 (default 20), `offset` ≥ 0 (default 0), as the spec bounds them.
    pub fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let pairs = query_pairs(query);
        let limit = int_param(&pairs, "limit", 20, 1, 100)?;
        let offset = int_param(&pairs, "offset", 0, 0, i64::from(i32::MAX))?;
        Ok(Self {
            workspace_ids: uuid_list(&pairs, "workspaceIds")?,
            tag_ids: uuid_list(&pairs, "tagIds")?,
            include_deleted: bool_param(&pairs, "includeDeleted", false)?,
            limit: usize::try_from(limit).unwrap_or(20),
            offset: usize::try_from(offset).unwrap_or(0),
        })
    }

    /// Wraps a page with Airbyte's links: `next` whenever the page is non-empty (even the last
    /// one), `""` when it is empty; `previous` `""` at offset 0. Links carry `workspaceIds`,
    /// `includeDeleted`, `limit` and `offset`, but not `tagIds`, as the real server's do.
    /// `fallback` names the host when the request has no `Host` header.
    pub fn page<T>(
        &self,
        fallback: SocketAddr,
        headers: &HeaderMap,
        uri: &Uri,
        resource: &str,
        data: Vec<T>,
    ) -> Page<T> {
        let base = api_base(fallback, headers, uri);
        let link = |offset: usize| {
            let mut query = String::new();
            if !self.workspace_ids.is_empty() {
                let ids: Vec<String> = self.workspace_ids.iter().map(Uuid::to_string).collect();
                query = format!("workspaceIds={}&", ids.join(","));
            }
            format!(
                "{base}/{resource}?{query}includeDeleted={}&limit={}&offset={offset}",
                self.include_deleted, self.limit
            )
        };
        let (next, previous) = page_links(self.offset, self.limit, data.is_empty(), link);
        Page {
            previous: Some(previous),
            next: Some(next),
            data,
        }
    }
}

/// The API base a paging link starts with, e.g. `http://127.0.0.1:8006/v1`: the request's
/// `Host` (or `fallback`) and the base it came in under.
pub fn api_base(fallback: SocketAddr, headers: &HeaderMap, uri: &Uri) -> String {
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(|| fallback.to_string(), str::to_string);
    let base = if uri.path().starts_with("/api/public/v1") {
        "/api/public/v1"
    } else {
        "/v1"
    };
    format!("http://{host}{base}")
}

/// `next` and `previous` of a page as Airbyte's `PaginationMapper` builds them from `link`
/// (which gets the offset): `next` whenever the page has items, `""` when it is empty;
/// `previous` `""` at offset 0.
pub fn page_links(
    offset: usize,
    limit: usize,
    empty: bool,
    link: impl Fn(usize) -> String,
) -> (String, String) {
    let next = if empty {
        String::new()
    } else {
        link(offset + limit)
    };
    let previous = if offset == 0 {
        String::new()
    } else {
        link(offset.saturating_sub(limit))
    };
    (next, previous)
}

/// An enum query parameter (`status`, `jobType`), by its wire name; anything else is a 400.
pub fn enum_param<T: DeserializeOwned>(
    pairs: &[(String, String)],
    name: &str,
) -> Result<Option<T>, ApiError> {
    single(pairs, name)
        .map(|raw| {
            serde_json::from_value(serde_json::Value::String(raw.to_string())).map_err(|_| {
                ApiError::bad_request(format!(
                    "Failed to convert argument [{name}] for value [{raw}]: not one of its \
                     allowed values."
                ))
            })
        })
        .transpose()
}
