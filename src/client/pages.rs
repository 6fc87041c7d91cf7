//! Lists: every page of a list endpoint, read with the client's own offset (Airbyte's `next` is
//! set even on the last page), the first page alone and the rest several at once.

use super::{ApiError, ApiErrorKind, Client, route};
use crate::wire::{ConnectionResponse, Page, SourceResponse};
use reqwest::Method;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// The most items a list page may hold (the API's maximum `limit`).
pub const PAGE_SIZE: usize = 100;

/// List pages fetched at once once a list is known to have more than one.
const LIST_FANOUT: usize = 8;

/// The most items a list may have before the server is deemed broken (an endless series of
/// full pages would otherwise fill memory).
const MAX_LIST_ITEMS: usize = 200_000;

impl Client {
    /// Every non-deleted connection of a workspace (or of every workspace the token can see).
    pub async fn connections(
        &self,
        workspace: Option<Uuid>,
        on_page: impl Fn(usize),
    ) -> Result<Vec<ConnectionResponse>, ApiError> {
        self.list("/connections", workspace, on_page).await
    }

    /// Every non-deleted source of a workspace, or (`None`) of every workspace the credentials
    /// can see.
    pub async fn sources(
        &self,
        workspace: Option<Uuid>,
        on_page: impl Fn(usize),
    ) -> Result<Vec<SourceResponse>, ApiError> {
        self.list("/sources", workspace, on_page).await
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
}
