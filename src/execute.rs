//! Execute: the writes of `apply`, bounded, concurrent, and never made twice.
//!
//! build → **execute** → report. Takes one [`Write`] per target that needs one (a create, a
//! patch, a delete) and returns one [`TargetOutcome`] per write that ended, at most `concurrency`
//! at once (the client's pace bounds the requests in flight across the run as well). A failed
//! target is a value, never an early return: the other targets carry on.
//!
//! Airbyte has no idempotency key, so a create whose answer was lost (a timeout, a reset, a 5xx)
//! may or may not have happened. Such a create is never simply sent again: the workspace's
//! connections are listed first, and a copy that is there is adopted (`created`). A create that
//! may still be running on the server (our timeout fired, the connection broke, a gateway gave
//! up) is looked for again, with fresh listings and backoff, for `settle` (the request timeout)
//! before it is sent again, so that at most one create of a target is ever running. Concurrent
//! lookups share one listing. A patch and a delete are idempotent: the client retries them like
//! reads (a delete whose first answer was lost may then find the copy gone: that is success).
//!
//! A create or patch that carries the owner tag's placeholder (the tag did not exist when the run
//! began) first has the tag made, once for the whole run ([`OwnerTag::ensure`]), and carries the
//! real one; if it cannot be made, those writes fail with the reason and nothing is sent.
//!
//! An interrupt stops new writes (and new tries) from starting; those still in flight get a
//! bounded grace period to finish, a second interrupt ends the wait at once, and the rest are
//! reported truthfully (`not_run`, or `failed` with "may or may not").

use crate::client::{ApiError, ApiErrorKind, Client, RetryPolicy};
use crate::diff::TargetError;
use crate::existing::{Existing, ExistingCopies};
use crate::owner::{self, OwnerTag, OwnerTagError};
use crate::report::events::{Reporter, WriteResult};
use crate::wire::{ConnectionCreateRequest, ConnectionPatchRequest, ConnectionResponse};
use futures::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Notify};
use uuid::Uuid;

/// How the writes run.
#[derive(Debug, Clone)]
pub struct ExecuteOptions {
    /// Targets written at once.
    pub concurrency: usize,
    /// After this long, a target gives up with a clear reason.
    pub target_timeout: Duration,
    /// How long in-flight creates may take to finish after an interrupt.
    pub grace: Duration,
    /// Waits between tries of an ambiguous create.
    pub retry: RetryPolicy,
    /// After a create that may still be running on the server fails, how long the copy is
    /// looked for before the create is sent again: at least the request timeout.
    pub settle: Duration,
}

/// An interrupt request (Ctrl-C, SIGTERM), shared between the signal handler and the run. The
/// first winds the run down; the second ends the wait for the creates in flight.
#[derive(Debug, Default)]
pub struct Interrupt {
    times: AtomicU8,
    notify: Notify,
}

impl Interrupt {
    pub fn raise(&self) {
        let _ = self
            .times
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_add(1))
            });
        self.notify.notify_waiters();
    }

    /// Raised at least once: start nothing new.
    pub fn is_raised(&self) -> bool {
        self.times.load(Ordering::SeqCst) >= 1
    }

    /// Raised twice: wait for nothing more.
    pub fn is_urgent(&self) -> bool {
        self.times.load(Ordering::SeqCst) >= 2
    }

    /// Resolves once the interrupt is raised.
    pub async fn raised(&self) {
        self.raised_times(1).await;
    }

    /// Resolves once the interrupt is raised a second time.
    pub async fn urgent(&self) {
        self.raised_times(2).await;
    }

    async fn raised_times(&self, n: u8) {
        loop {
            // Made before the check, so a raise in between still wakes it.
            let notified = self.notify.notified();
            if self.times.load(Ordering::SeqCst) >= n {
                return;
            }
            notified.await;
        }
    }
}

/// One target's write: its report row, the workspace it lands in, and what to send.
#[derive(Debug, Clone)]
pub struct Write {
    pub row: usize,
    pub workspace: Uuid,
    pub kind: WriteKind,
}

/// What a [`Write`] sends.
#[derive(Debug, Clone)]
pub enum WriteKind {
    /// `POST /connections`.
    Create(ConnectionCreateRequest),
    /// `PATCH /connections/{id}`: only the fields that differ.
    Update {
        connection_id: Uuid,
        patch: ConnectionPatchRequest,
    },
    /// `DELETE /connections/{id}` (a soft delete).
    Delete { connection_id: Uuid },
}

impl WriteKind {
    /// The body a `-v` preview shows for it.
    pub fn body(&self) -> Option<serde_json::Value> {
        match self {
            WriteKind::Create(body) => serde_json::to_value(body).ok(),
            WriteKind::Update { patch, .. } => serde_json::to_value(patch).ok(),
            WriteKind::Delete { .. } => None,
        }
    }

    fn what(&self) -> &'static str {
        match self {
            WriteKind::Create(_) => "create",
            WriteKind::Update { .. } => "update",
            WriteKind::Delete { .. } => "delete",
        }
    }
}

/// How one target's write ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetOutcome {
    Created(Uuid),
    Updated(Uuid),
    Deleted(Uuid),
    Failed(WriteError),
}

/// Why a write failed; every message says what the user can know about the server's state.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WriteError {
    /// The server refused it, or it failed in a way that changed nothing.
    #[error("{0}")]
    Refused(String),
    #[error(
        "gave up after {secs} s; the {what} may or may not have happened, a re-run will find out"
    )]
    TimedOut { secs: u64, what: &'static str },
    #[error(
        "{error}; then looking for the copy failed too ({lookup}): it may or may not exist, a \
         re-run will find it"
    )]
    LookupFailed { error: String, lookup: String },
    #[error("{error} (gave up after {tries} tries; no copy was made)")]
    GaveUp { error: String, tries: usize },
    #[error("{error}; no copy was made, and it was not tried again: interrupted")]
    Interrupted { error: String },
    #[error(
        "interrupted while the {what} was in flight: it may or may not have happened, a re-run \
         will find out"
    )]
    Abandoned { what: &'static str },
    /// A lookup after a lost answer found several copies: never a third.
    #[error(transparent)]
    Ambiguous(TargetError),
    /// The owner tag this write must carry could not be made; nothing was sent.
    #[error("{0}; nothing was written for this target")]
    OwnerTag(OwnerTagError),
}

/// Sends every write `writes` yields, at most `options.concurrency` at once, as they come: the
/// build stage may still be reading catalogs. Returns how each started write ended, by report
/// row; a write never started is absent. The caller starts the progress bar (it knows the
/// run's rows); each write that ends is reported here.
pub async fn write(
    writes: impl futures::Stream<Item = Write>,
    client: &Client,
    owner: &OwnerTag,
    options: &ExecuteOptions,
    interrupt: &Interrupt,
    reporter: &Arc<dyn Reporter>,
) -> Vec<(usize, TargetOutcome)> {
    let finder = CopyFinder {
        client,
        latest: Mutex::new(None),
    };
    let finder = &finder;
    let in_flight = std::sync::Mutex::new(std::collections::BTreeMap::new());
    let in_flight = &in_flight;
    let results = writes
        .map(|write| async move {
            let i = write.row;
            if interrupt.is_raised() {
                return (i, None);
            }
            let what = write.kind.what();
            if let Ok(mut map) = in_flight.lock() {
                map.insert(i, what);
            }
            let outcome = tokio::time::timeout(
                options.target_timeout,
                write_once(client, finder, owner, write, options, interrupt, reporter),
            )
            .await
            .unwrap_or(TargetOutcome::Failed(WriteError::TimedOut {
                secs: options.target_timeout.as_secs(),
                what,
            }));
            if let Ok(mut map) = in_flight.lock() {
                map.remove(&i);
            }
            (i, Some(outcome))
        })
        .buffer_unordered(options.concurrency.max(1));
    let mut results = std::pin::pin!(results);

    let mut outcomes = Vec::new();
    let mut deadline: Option<Instant> = None;
    loop {
        let next = match deadline {
            None => tokio::select! {
                next = results.next() => next,
                () = interrupt.raised() => {
                    deadline = Some(Instant::now() + options.grace);
                    continue;
                }
            },
            Some(at) => tokio::select! {
                next = tokio::time::timeout_at(at.into(), results.next()) => match next {
                    Ok(next) => next,
                    Err(_) => break,
                },
                () = interrupt.urgent() => break,
            },
        };
        let Some((i, outcome)) = next else { break };
        let Some(outcome) = outcome else { continue };
        reporter.write_finished(match outcome {
            TargetOutcome::Created(_) => WriteResult::Created,
            TargetOutcome::Updated(_) => WriteResult::Updated,
            TargetOutcome::Deleted(_) => WriteResult::Deleted,
            TargetOutcome::Failed(_) => WriteResult::Failed,
        });
        outcomes.push((i, outcome));
    }
    if let Ok(map) = in_flight.lock() {
        outcomes.extend(
            map.iter()
                .map(|(&i, &what)| (i, TargetOutcome::Failed(WriteError::Abandoned { what }))),
        );
    }
    reporter.writes_finished();
    outcomes
}

/// The owner tag's placeholder in a write's tags, replaced by the real tag (made now if need be).
async fn with_owner_tag(
    mut kind: WriteKind,
    client: &Client,
    owner: &OwnerTag,
) -> Result<WriteKind, OwnerTagError> {
    let tags = match &mut kind {
        WriteKind::Create(body) => body.tags.as_mut(),
        WriteKind::Update { patch, .. } => patch.tags.as_mut(),
        WriteKind::Delete { .. } => None,
    };
    if let Some(tags) = tags {
        if tags.iter().any(owner::is_placeholder) {
            let real = owner.ensure(client).await?;
            owner::fill(tags, &real);
        }
    }
    Ok(kind)
}

/// One write, start to end.
async fn write_once(
    client: &Client,
    finder: &CopyFinder<'_>,
    owner: &OwnerTag,
    mut write: Write,
    options: &ExecuteOptions,
    interrupt: &Interrupt,
    reporter: &Arc<dyn Reporter>,
) -> TargetOutcome {
    write.kind = match with_owner_tag(write.kind, client, owner).await {
        Ok(kind) => kind,
        Err(e) => return TargetOutcome::Failed(WriteError::OwnerTag(e)),
    };
    match &write.kind {
        WriteKind::Create(body) => {
            match create_once(
                client,
                finder,
                write.workspace,
                body,
                options,
                interrupt,
                reporter,
            )
            .await
            {
                Ok(id) => TargetOutcome::Created(id),
                Err(e) => TargetOutcome::Failed(e),
            }
        }
        WriteKind::Update {
            connection_id,
            patch,
        } => {
            let id = *connection_id;
            again(options, interrupt, reporter, || {
                client.patch_connection(id, patch)
            })
            .await
            .map_or_else(TargetOutcome::Failed, |_| TargetOutcome::Updated(id))
        }
        WriteKind::Delete { connection_id } => {
            let id = *connection_id;
            again(options, interrupt, reporter, || {
                client.delete_connection(id)
            })
            .await
            .map_or_else(TargetOutcome::Failed, |()| TargetOutcome::Deleted(id))
        }
    }
}

/// An idempotent write, sent again after a transient failure once the client's own tries are
/// spent (a run of lost answers, a long throttle): the same effect twice is the same state, so
/// only the target's timeout and an interrupt end it.
async fn again<T, F: Future<Output = Result<T, ApiError>>>(
    options: &ExecuteOptions,
    interrupt: &Interrupt,
    reporter: &Arc<dyn Reporter>,
    mut send: impl FnMut() -> F,
) -> Result<T, WriteError> {
    let mut delays = options.retry.delays();
    loop {
        let error = match send().await {
            Ok(value) => return Ok(value),
            Err(e) if e.is_transient() => e,
            Err(e) => return Err(WriteError::Refused(e.to_string())),
        };
        let Some(delay) = delays.next().filter(|_| !interrupt.is_raised()) else {
            return Err(WriteError::Refused(error.to_string()));
        };
        reporter.log(
            1,
            &format!("{error}; sending it again in {} ms", delay.as_millis()),
        );
        tokio::time::sleep(delay).await;
    }
}

/// Creates one copy, adopting it instead when an ambiguous failure turns out to have created it.
/// Returns the copy's id, or why it could not be made.
async fn create_once(
    client: &Client,
    finder: &CopyFinder<'_>,
    workspace: Uuid,
    body: &ConnectionCreateRequest,
    options: &ExecuteOptions,
    interrupt: &Interrupt,
    reporter: &Arc<dyn Reporter>,
) -> Result<Uuid, WriteError> {
    let mut delays = options.retry.delays();
    loop {
        let error = match client.create_connection(body).await {
            Ok(created) => return Ok(created.connection_id),
            Err(e) if e.is_ambiguous() => e,
            Err(e) => return Err(WriteError::Refused(e.to_string())),
        };
        let failed_at = Instant::now();
        // A create the server may still be running can land later: look until it could no
        // longer, or a second create would race the first.
        let settle = if may_still_land(&error) {
            options.settle
        } else {
            Duration::ZERO
        };
        match finder
            .settle(failed_at, settle, workspace, body, &options.retry)
            .await
        {
            Ok(Some(id)) => {
                reporter.log(
                    1,
                    &format!("{error}; the copy exists after all ({id}): adopted"),
                );
                return Ok(id);
            }
            Ok(None) => {}
            Err(Lookup::Ambiguous(e)) => return Err(WriteError::Ambiguous(e)),
            Err(Lookup::Failed(lookup)) => {
                return Err(WriteError::LookupFailed {
                    error: error.to_string(),
                    lookup,
                });
            }
        }
        let Some(delay) = delays.next() else {
            return Err(WriteError::GaveUp {
                error: error.to_string(),
                tries: options.retry.attempts,
            });
        };
        if interrupt.is_raised() {
            return Err(WriteError::Interrupted {
                error: error.to_string(),
            });
        }
        reporter.log(
            1,
            &format!(
                "{error}; no copy appeared within {} ms, creating again in {} ms",
                settle.as_millis(),
                delay.as_millis()
            ),
        );
        tokio::time::sleep(delay).await;
    }
}

/// Why a lookup after a lost answer decided nothing.
enum Lookup {
    Failed(String),
    Ambiguous(TargetError),
}

/// Whether a create that failed this way may still be running on the server: no answer came
/// (a timeout, a broken connection), or a gateway answered for a server it stopped waiting for.
/// A server's own 500 or 503 ends its work on the request.
fn may_still_land(error: &ApiError) -> bool {
    match &error.kind {
        ApiErrorKind::Transport { not_sent, .. } => !not_sent,
        ApiErrorKind::Status { status, .. } => matches!(status, 502 | 504),
        // A failed token exchange: the create was never sent.
        ApiErrorKind::Decode(_) | ApiErrorKind::Unstable(_) | ApiErrorKind::Token(_) => false,
    }
}

/// Looks up copies after ambiguous failures. One listing of the workspace serves every lookup
/// that began before that listing did.
struct CopyFinder<'a> {
    client: &'a Client,
    latest: Mutex<Option<(Instant, Arc<Vec<ConnectionResponse>>)>>,
}

impl CopyFinder<'_> {
    /// Looks for the copy in listings that start after `failed_at`, again and again with
    /// growing waits for `settle`, the last listing starting once `settle` is over.
    async fn settle(
        &self,
        failed_at: Instant,
        settle: Duration,
        workspace: Uuid,
        body: &ConnectionCreateRequest,
        retry: &RetryPolicy,
    ) -> Result<Option<Uuid>, Lookup> {
        let until = failed_at + settle;
        let mut not_before = failed_at;
        let mut wait = retry.min_delay;
        loop {
            if let Some(id) = self.find(not_before, workspace, body).await? {
                return Ok(Some(id));
            }
            let now = Instant::now();
            if now >= until {
                return Ok(None);
            }
            // Half to all of the wait: targets that failed together do not list together.
            let jittered = wait.mul_f64(0.5 + fastrand::f64() / 2.0);
            tokio::time::sleep(jittered.min(until - now)).await;
            wait = (wait * 2).min(retry.max_delay);
            not_before = Instant::now();
        }
    }

    /// The id of the copy `create` describes, in a listing that started at `not_before` or
    /// later.
    async fn find(
        &self,
        not_before: Instant,
        workspace: Uuid,
        body: &ConnectionCreateRequest,
    ) -> Result<Option<Uuid>, Lookup> {
        let connections = {
            let mut latest = self.latest.lock().await;
            match latest.as_ref() {
                Some((started, list)) if *started >= not_before => Arc::clone(list),
                _ => {
                    let started = Instant::now();
                    let list = Arc::new(
                        self.client
                            .connections(Some(workspace), |_| {})
                            .await
                            .map_err(|e| Lookup::Failed(e.to_string()))?,
                    );
                    *latest = Some((started, Arc::clone(&list)));
                    list
                }
            }
        };
        let name = body.name.as_deref().unwrap_or_default();
        match ExistingCopies::new(&connections).find(body.source_id, body.destination_id, name) {
            Existing::One(copy) => Ok(Some(copy.connection_id)),
            Existing::None => Ok(None),
            // Never a third: the copies are named, for the user to choose.
            Existing::Ambiguous(copies) => Err(Lookup::Ambiguous(TargetError::AmbiguousCopies {
                destination: "the destination".into(),
                name: name.to_string(),
                candidates: copies
                    .iter()
                    .map(|c| (c.name.clone(), c.connection_id))
                    .collect(),
            })),
        }
    }
}
