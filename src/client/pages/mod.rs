//! Lists: every page of a list endpoint, read with the client's own offset (Airbyte's `next` is
//! set even on the last page), the first page alone and the rest several at once, so that an
//! item that exists for the whole of a listing is in its result even while others are deleted
//! or created.
//!
//! Airbyte pages by offset, so a delete ahead of the offset moves every later item one place
//! left and a naive pager skips one. Two things keep a listing whole:
//!
//! - Connections are listed with `includeDeleted=true`, and the deleted ones (`deprecated`)
//!   dropped here. Airbyte deletes a connection by setting its status (DIGEST §3.4), so the
//!   listed rows never go away and a delete moves nothing. Sources have no status to filter
//!   on; they are listed as they are.
//! - Pages overlap and are checked ([`anchor`]): page `k` is read at offset
//!   `k × (PAGE_SIZE − OVERLAP)` (each page starts `OVERLAP` items before the end of the one
//!   before it, also when a server sends more than asked), and each page after the first must
//!   hold one of the last `OVERLAP` items of the page before it (an *anchor*). A page without
//!   one means the list moved left by more than the overlap between the two reads (sources
//!   deleted, connections removed for good); the pass is not trusted and the whole list is
//!   read again, at most [`PASSES`] times, then given up with an error. Items are merged by id:
//!   a create ahead of the offset moves the list right, which only repeats items.
//!
//! Why this is enough: each page is a contiguous slice of the list's order as it stood when
//! the page was read. Page 0 starts at offset 0, so it holds every item up to its last. If
//! page `k` holds an anchor `a` of page `k − 1`, it holds every item that exists when it is
//! read from `a` to its own last item; `a` is no later than page `k − 1`'s last item, so no
//! item that exists throughout lies between the two pages unread. A short page ends the list
//! when it is read, so an item that exists throughout and comes after its anchor is in it. By
//! induction, a whole pass holds every item that existed for the whole listing, whatever the
//! order in time in which its pages were read, which is why the pages can still be read in
//! parallel: their offsets are known in advance. An item created or deleted during the listing
//! may or may not be in the result; an item read twice is kept as first read.
//!
//! What it assumes: the server orders a list by a key that does not change, so that items that
//! stay keep their order among themselves (the sandbox orders by creation; the DIGEST does not
//! say what Airbyte orders by, and its ids and creation times do not change). Under an order
//! by name, a renamed item could be missed and nothing here would notice.
//!
//! A list may also start before its workspace is known ([`Client::first_page`], read together
//! with the template that names the workspace) and be finished once it is ([`Client::rest_of`]).

mod anchor;

use super::{ApiError, ApiErrorKind, Client, route};
use crate::wire::{ConnectionResponse, ConnectionStatus, Page, SourceResponse};
pub use anchor::Listed;
use anchor::{Joined, Paging, Pass};
use reqwest::Method;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// The most items a list page may hold (the API's maximum `limit`).
pub const PAGE_SIZE: usize = 100;

/// The items each page shares with the next. It costs a tenth more pages, and it is how far
/// the list may move left between the reads of two neighbouring pages (up to 9 items removed
/// ahead of them) before the pass is read again: enough for a busy workspace's sources, whose
/// neighbouring pages are read a round trip apart at most, and for a server that would ignore
/// `includeDeleted`.
const OVERLAP: usize = 10;

/// The pages of every list.
const PAGING: Paging = Paging {
    size: PAGE_SIZE,
    overlap: OVERLAP,
};

/// How many times a list is read before it is deemed to change too fast to be listed.
const PASSES: usize = 3;

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
        let page: Page<T> = self.get(path, &list_query::<T>(None, 0)).await?;
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
        let all = if items.len() < PAGE_SIZE || only_this {
            self.list_from(path, None, Some(items), 4, on_page).await?
        } else {
            return self.list(path, Some(workspace), on_page).await;
        };
        Ok(all
            .into_iter()
            .filter(|item| item.workspace() == workspace)
            .collect())
    }

    /// All pages of a list endpoint.
    async fn list<T: DeserializeOwned + Listed>(
        &self,
        path: &str,
        workspace: Option<Uuid>,
        on_page: impl Fn(&[T]),
    ) -> Result<Vec<T>, ApiError> {
        self.list_from(path, workspace, None, 1, on_page).await
    }

    /// A list endpoint, read in passes ([`Client::pass`]) until one is whole, at most
    /// [`PASSES`]. The first pass may start from a page already read (`first`). `on_page` is
    /// given the items found beyond the most a pass held before, as they are read (`resolve`
    /// counts them for the progress, `status` starts reading the copies' last syncs from them),
    /// so that a list read again is not told twice.
    async fn list_from<T: DeserializeOwned + Listed>(
        &self,
        path: &str,
        workspace: Option<Uuid>,
        mut first: Option<Vec<T>>,
        batch: usize,
        on_page: impl Fn(&[T]),
    ) -> Result<Vec<T>, ApiError> {
        let mut found = 0;
        let mut on_pass = |items: &[T]| {
            if items.len() > found {
                on_page(&items[found..]);
                found = items.len();
            }
        };
        for _ in 0..PASSES {
            if let Some(items) = self
                .pass(path, workspace, first.take(), batch, &mut on_pass)
                .await?
            {
                return Ok(items);
            }
        }
        let whose = if workspace.is_some() {
            "the workspace's"
        } else {
            "the"
        };
        let what = path.trim_start_matches('/');
        Err(ApiError::new(
            &Method::GET,
            &route(path, &list_query::<T>(workspace, 0)),
            ApiErrorKind::Unstable(format!(
                "{whose} {what} changed too fast to list reliably: {PASSES} times, a page held \
                 none of the last {OVERLAP} items of the page before it (more than {} {what} \
                 removed between the two reads); try again when fewer are being deleted",
                OVERLAP - 1
            )),
        ))
    }

    /// One pass over a list: every page from offset 0 (or after `first`, page 0 read already),
    /// until a short or empty page; `next` is set even on the last page (DIGEST §3.5). After a
    /// first full page, the following pages are fetched several at once (their offsets are
    /// known), 4, then `LIST_FANOUT`; the requests wasted past the end are fewer than the pages
    /// read. `batch` is how many pages to read at first (after `first`, when given). `None`: a
    /// page was not anchored, and the pass is not to be trusted. `on_pass` is given the
    /// items the pass holds so far.
    async fn pass<T: DeserializeOwned + Listed>(
        &self,
        path: &str,
        workspace: Option<Uuid>,
        first: Option<Vec<T>>,
        batch: usize,
        on_pass: &mut impl FnMut(&[T]),
    ) -> Result<Option<Vec<T>>, ApiError> {
        let mut pass = Pass::new(PAGING);
        let fanout = LIST_FANOUT.min(self.inner.concurrency).max(1);
        // A long list: fetch 4 pages at once, then 8, so that 1,000 items take 2 more round
        // trips, not 4, for at most 3 wasted requests on a list of 2 pages.
        let grow = |batch: usize| (batch * 4).min(fanout);
        let batch = batch.clamp(1, fanout);
        let (mut pages, mut batch) = match first {
            Some(items) => (vec![(0, Ok(items))], batch),
            None => (self.pages(path, workspace, &pass, batch).await, grow(batch)),
        };
        loop {
            // In order: a short page ends the list, and what came after it does not matter. A
            // page longer than asked for moves the pages after it: those read already are not
            // where the pass goes on, and are read again.
            for (offset, page) in pages {
                if offset != pass.next_offset() {
                    break;
                }
                let joined = pass.add(page?);
                on_pass(pass.items());
                match joined {
                    Joined::More => {}
                    Joined::End => return Ok(Some(pass.into_items())),
                    Joined::Shifted => return Ok(None),
                }
            }
            if pass.next_offset() >= MAX_LIST_ITEMS {
                return Err(ApiError::new(
                    &Method::GET,
                    &route(path, &list_query::<T>(workspace, pass.next_offset())),
                    ApiErrorKind::Decode(format!(
                        "the server kept sending full pages past {MAX_LIST_ITEMS} items; giving up"
                    )),
                ));
            }
            pages = self.pages(path, workspace, &pass, batch).await;
            batch = grow(batch);
        }
    }

    /// The next `batch` pages of a pass, read at once, with their offsets.
    async fn pages<T: DeserializeOwned + Listed>(
        &self,
        path: &str,
        workspace: Option<Uuid>,
        pass: &Pass<T>,
        batch: usize,
    ) -> Vec<(usize, Result<Vec<T>, ApiError>)> {
        let offsets: Vec<usize> = (0..batch).map(|k| pass.offset_ahead(k)).collect();
        let queries: Vec<_> = offsets
            .iter()
            .map(|offset| list_query::<T>(workspace, *offset))
            .collect();
        let pages = queries.iter().map(|q| self.get::<Page<T>>(path, q));
        let pages = futures::future::join_all(pages).await;
        offsets
            .into_iter()
            .zip(pages.into_iter().map(|page| page.map(|page| page.data)))
            .collect()
    }
}

/// The query of one list page.
fn list_query<T: Listed>(workspace: Option<Uuid>, offset: usize) -> Vec<(&'static str, String)> {
    let mut query = vec![
        ("limit", PAGE_SIZE.to_string()),
        ("offset", offset.to_string()),
    ];
    if let Some(ws) = workspace {
        query.push(("workspaceIds", ws.to_string()));
    }
    if T::INCLUDE_DELETED {
        query.push(("includeDeleted", "true".to_string()));
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
pub trait InWorkspace: Listed {
    fn workspace(&self) -> Uuid;
}

impl Listed for SourceResponse {
    fn id(&self) -> Uuid {
        self.source_id
    }
}

impl InWorkspace for SourceResponse {
    fn workspace(&self) -> Uuid {
        self.workspace_id
    }
}

impl Listed for ConnectionResponse {
    const INCLUDE_DELETED: bool = true;

    fn id(&self) -> Uuid {
        self.connection_id
    }

    fn deleted(&self) -> bool {
        self.status == ConnectionStatus::Deprecated
    }
}

impl InWorkspace for ConnectionResponse {
    fn workspace(&self) -> Uuid {
        self.workspace_id
    }
}
