//! Lists: every page of a list endpoint, read with the client's own offset (Airbyte's `next` is
//! set even on the last page), the first page alone and the rest several at once.
//!
//! A list may also start before its workspace is known ([`Client::first_page`], read together
//! with the template that names the workspace) and be finished once it is ([`Client::rest_of`]).
//! Each page's items go to the caller's `on_page` as the page is read (`resolve` counts them for
//! the progress, `status` starts reading the copies' last syncs from them).

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
        on_page: impl Fn(&[ConnectionResponse]),
    ) -> Result<Vec<ConnectionResponse>, ApiError> {
        self.list("/connections", workspace, on_page).await
    }

    /// Every non-deleted source of a workspace, or (`None`) of every workspace the credentials
    /// can see.
    pub async fn sources(
        &self,
        workspace: Option<Uuid>,
        on_page: impl Fn(&[SourceResponse]),
    ) -> Result<Vec<SourceResponse>, ApiError> {
        self.list("/sources", workspace, on_page).await
    }

    /// The first page of a list (`/sources`, `/connections`) over every workspace the token
    /// can see: read before the workspace is known, alongside the template that names it.
    pub async fn first_page<T: DeserializeOwned + InWorkspace>(
        &self,
        path: &'static str,
    ) -> Result<FirstPage<T>, ApiError> {
        let page: Page<T> = self.get(path, &list_query(None, 0)).await?;
        Ok(FirstPage {
            path,
            items: page.data,
        })
    }

    /// The whole list of `workspace`, from its [`FirstPage`]. A short first page is the whole
    /// list. A full one that holds only `workspace`'s items (a token that sees one workspace,
    /// the usual case) is continued as it is, so no page is read twice, and the items of any
    /// other workspace met further on are left out here. A full one that mixes workspaces is
    /// thrown away and the list read again, filtered by `workspace`, so that a token that sees
    /// many workspaces never reads them all.
    pub async fn rest_of<T: DeserializeOwned + InWorkspace>(
        &self,
        first: FirstPage<T>,
        workspace: Uuid,
        on_page: impl Fn(&[T]),
    ) -> Result<Vec<T>, ApiError> {
        let FirstPage { path, items } = first;
        let only_this = items.iter().all(|item| item.workspace() == workspace);
        let all = if items.len() < PAGE_SIZE {
            on_page(&items);
            items
        } else if only_this {
            on_page(&items);
            self.list_from(path, None, items, 4, on_page).await?
        } else {
            return self.list(path, Some(workspace), on_page).await;
        };
        Ok(all
            .into_iter()
            .filter(|item| item.workspace() == workspace)
            .collect())
    }

    /// All pages of a list endpoint.
    async fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        workspace: Option<Uuid>,
        on_page: impl Fn(&[T]),
    ) -> Result<Vec<T>, ApiError> {
        self.list_from(path, workspace, Vec::new(), 1, on_page)
            .await
    }

    /// The pages of a list endpoint after the items already read (`all`, whole pages).
    /// Keeps its own offset and stops at the first short or empty page: `next` is set even on
    /// the last page (DIGEST §3.5). After a first full page, the following pages are fetched
    /// several at once (their offsets are known), 4, then `LIST_FANOUT`; the requests wasted
    /// past the end are fewer than the pages read. `batch` is how many pages to read at first.
    async fn list_from<T: DeserializeOwned>(
        &self,
        path: &str,
        workspace: Option<Uuid>,
        mut all: Vec<T>,
        batch: usize,
        on_page: impl Fn(&[T]),
    ) -> Result<Vec<T>, ApiError> {
        let query = |offset: usize| list_query(workspace, offset);
        let mut batch = batch.min(LIST_FANOUT.min(self.inner.concurrency)).max(1);
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
                on_page(&page.data);
                all.extend(page.data);
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

/// The query of one list page.
fn list_query(workspace: Option<Uuid>, offset: usize) -> Vec<(&'static str, String)> {
    let mut query = vec![
        ("limit", PAGE_SIZE.to_string()),
        ("offset", offset.to_string()),
    ];
    if let Some(ws) = workspace {
        query.push(("workspaceIds", ws.to_string()));
    }
    query
}

/// The first page of a list, over every workspace the token sees; finished by
/// [`Client::rest_of`].
pub struct FirstPage<T> {
    path: &'static str,
    items: Vec<T>,
}

/// A listed item's workspace.
pub trait InWorkspace {
    fn workspace(&self) -> Uuid;
}

impl InWorkspace for SourceResponse {
    fn workspace(&self) -> Uuid {
        self.workspace_id
    }
}

impl InWorkspace for ConnectionResponse {
    fn workspace(&self) -> Uuid {
        self.workspace_id
    }
}
