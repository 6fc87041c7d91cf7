//! Execute: the writes of `apply`, bounded, concurrent, and never made twice.
//!
//! Takes the preview's report and posts the body of every `create` row, at most `concurrency` at
//! once (the client's pace bounds the requests in flight across the run as well). A failed target
//! is a value in its row, never an early return: the other targets carry on.
//!
//! Airbyte has no idempotency key, so a create whose answer was lost (a timeout, a reset, a 5xx)
//! may or may not have happened. Such a create is never simply sent again: the workspace's
//! connections are listed first, and a copy that is there is adopted (`created`). A create that
//! may still be running on the server (our timeout fired, the connection broke, a gateway gave
//! up) is looked for again, with fresh listings and backoff, for `settle` (the request timeout)
//! before it is sent again, so that at most one create of a target is ever running. Concurrent
//! lookups share one listing.
//!
//! An interrupt stops new creates (and new tries) from starting; those still in flight get a
//! bounded grace period to finish, a second interrupt ends the wait at once, and the rest are
//! reported truthfully (`not_run`, or `failed` with "may or may not exist").

use crate::client::{ApiError, ApiErrorKind, Client, RetryPolicy};
use crate::existing::{Existing, ExistingCopies};
use crate::preview;
use crate::report::events::{Reporter, WriteResult};
use crate::report::{Action, Mode, Outcome, Report};
use crate::wire::{ConnectionCreateRequest, ConnectionResponse, ConnectionStatus};
use futures::{StreamExt, stream};
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

/// Creates the copies the report's `create` rows describe and records each outcome.
pub async fn execute(
    report: &mut Report,
    client: &Client,
    options: &ExecuteOptions,
    interrupt: &Interrupt,
    reporter: &Arc<dyn Reporter>,
) {
    let workspace = report.template.as_ref().map(|t| t.workspace_id);
    let creates: Vec<Create> = report
        .targets
        .iter()
        .enumerate()
        .filter(|(_, row)| matches!(row.action, Action::Create | Action::Update))
        .filter_map(|(row, target)| {
            Some(Create {
                row,
                workspace: workspace?,
                body: target.body.clone()?,
            })
        })
        .collect();
    let writes = write(stream::iter(creates), client, options, interrupt, reporter).await;
    record(report, &writes);
}

/// How one target's create ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    Created(Uuid),
    Failed(String),
    /// Still in flight when the grace period after an interrupt ran out.
    Abandoned,
}

/// One copy to create: its report row, the workspace it lands in, and the body to post.
#[derive(Debug, Clone)]
pub struct Create {
    pub row: usize,
    pub workspace: Uuid,
    pub body: ConnectionCreateRequest,
}

/// Posts every create `creates` yields, at most `options.concurrency` at once, as they come:
/// the preview may still be reading catalogs. Returns how each started create ended, by report
/// row; a create never started is absent.
pub async fn write(
    creates: impl futures::Stream<Item = Create>,
    client: &Client,
    options: &ExecuteOptions,
    interrupt: &Interrupt,
    reporter: &Arc<dyn Reporter>,
) -> Vec<(usize, Written)> {
    // The bar appears with the first create, below the resolve spinners.
    let bar = std::sync::Once::new();
    let bar = &bar;
    let finder = CopyFinder {
        client,
        latest: Mutex::new(None),
    };
    let finder = &finder;
    let in_flight = std::sync::Mutex::new(std::collections::BTreeSet::new());
    let in_flight = &in_flight;
    let results = creates
        .map(|create| {
            bar.call_once(|| reporter.writes_started(0));
            reporter.writes_queued(1);
            async move {
                let i = create.row;
                if interrupt.is_raised() {
                    return (i, None);
                }
                if let Ok(mut set) = in_flight.lock() {
                    set.insert(i);
                }
                let written = tokio::time::timeout(
                    options.target_timeout,
                    create_once(client, finder, &create, options, interrupt, reporter),
                )
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "gave up after {} s; the copy may or may not exist, a re-run will find it",
                        options.target_timeout.as_secs()
                    ))
                });
                if let Ok(mut set) = in_flight.lock() {
                    set.remove(&i);
                }
                (i, Some(written))
            }
        })
        .buffer_unordered(options.concurrency.max(1));
    let mut results = std::pin::pin!(results);

    let mut writes = Vec::new();
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
        let Some((i, written)) = next else { break };
        match written {
            None => {}
            Some(Ok(copy)) => {
                reporter.write_finished(WriteResult::Created);
                writes.push((i, Written::Created(copy)));
            }
            Some(Err(message)) => {
                reporter.write_finished(WriteResult::Failed);
                writes.push((i, Written::Failed(message)));
            }
        }
    }
    if let Ok(set) = in_flight.lock() {
        writes.extend(set.iter().map(|&i| (i, Written::Abandoned)));
    }
    reporter.writes_finished();
    writes
}

/// Puts the writes into the report: every row gets its outcome (`unchanged`, `failed` for
/// preview errors, `created`/`failed` for writes, `not_run` for creates never started).
pub fn record(report: &mut Report, writes: &[(usize, Written)]) {
    report.mode = Mode::Apply;
    for row in &mut report.targets {
        row.outcome = Some(match row.action {
            Action::Unchanged => Outcome::Unchanged,
            Action::Error => Outcome::Failed,
            Action::Create | Action::Update => Outcome::NotRun,
        });
    }
    for (i, written) in writes {
        let Some(row) = report.targets.get_mut(*i) else {
            continue;
        };
        match written {
            Written::Created(id) => {
                row.outcome = Some(Outcome::Created);
                row.connection_id = Some(*id);
            }
            Written::Failed(message) => {
                row.outcome = Some(Outcome::Failed);
                row.error = Some(message.clone());
            }
            Written::Abandoned => {
                row.outcome = Some(Outcome::Failed);
                row.error = Some(
                    "interrupted while the create was in flight: the copy may or may not exist, \
                     a re-run will find it"
                        .into(),
                );
            }
        }
    }
    report.tally();
}

/// Creates one copy, adopting it instead when an ambiguous failure turns out to have created it.
/// Returns the copy's id, or why it could not be made.
async fn create_once(
    client: &Client,
    finder: &CopyFinder<'_>,
    create: &Create,
    options: &ExecuteOptions,
    interrupt: &Interrupt,
    reporter: &Arc<dyn Reporter>,
) -> Result<Uuid, String> {
    let mut delays = options.retry.delays();
    loop {
        let error = match client.create_connection(&create.body).await {
            Ok(created) => return Ok(created.connection_id),
            Err(e) if e.is_ambiguous() => e,
            Err(e) => return Err(e.to_string()),
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
            .settle(failed_at, settle, create, &options.retry)
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
            Err(lookup) => {
                return Err(format!(
                    "{error}; then looking for the copy failed too ({lookup}): it may or may not \
                     exist, a re-run will find it"
                ));
            }
        }
        let Some(delay) = delays.next() else {
            return Err(format!(
                "{error} (gave up after {} tries; no copy was made)",
                options.retry.attempts
            ));
        };
        if interrupt.is_raised() {
            return Err(format!(
                "{error}; no copy was made, and it was not tried again: interrupted"
            ));
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

/// Whether a create that failed this way may still be running on the server: no answer came
/// (a timeout, a broken connection), or a gateway answered for a server it stopped waiting for.
/// A server's own 500 or 503 ends its work on the request.
fn may_still_land(error: &ApiError) -> bool {
    match &error.kind {
        ApiErrorKind::Transport { not_sent, .. } => !not_sent,
        ApiErrorKind::Status { status, .. } => matches!(status, 502 | 504),
        ApiErrorKind::Decode(_) => false,
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
        create: &Create,
        retry: &RetryPolicy,
    ) -> Result<Option<Uuid>, String> {
        let until = failed_at + settle;
        let mut not_before = failed_at;
        let mut wait = retry.min_delay;
        loop {
            if let Some(id) = self.find(not_before, create).await? {
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
    async fn find(&self, not_before: Instant, create: &Create) -> Result<Option<Uuid>, String> {
        let connections = {
            let mut latest = self.latest.lock().await;
            match latest.as_ref() {
                Some((started, list)) if *started >= not_before => Arc::clone(list),
                _ => {
                    let started = Instant::now();
                    let list = Arc::new(
                        self.client
                            .connections(Some(create.workspace), |_| {})
                            .await
                            .map_err(|e| e.to_string())?,
                    );
                    *latest = Some((started, Arc::clone(&list)));
                    list
                }
            }
        };
        let body = &create.body;
        let name = body.name.as_deref().unwrap_or_default();
        match ExistingCopies::new(&connections).find(body.source_id, body.destination_id, name) {
            Existing::One(copy) => Ok(Some(copy.connection_id)),
            Existing::None => Ok(None),
            // Never a third: the copies are named, for the user to choose.
            Existing::Ambiguous(copies) => {
                Err(preview::ambiguous(&copies, "the destination", name))
            }
        }
    }
}

/// After the writes, one more read of the template: a template deleted while the run went on
/// leaves copies of a connection that is gone, which the summary and the report say. Skipped
/// when nothing was written, or after a second interrupt.
pub async fn check_template(report: &mut Report, client: &Client, interrupt: &Interrupt) {
    let Some(template) = &report.template else {
        return;
    };
    let wrote = report.targets.iter().any(|t| {
        matches!(t.action, Action::Create | Action::Update)
            && matches!(t.outcome, Some(Outcome::Created | Outcome::Failed))
    });
    if !wrote || report.error.is_some() || interrupt.is_urgent() {
        return;
    }
    let deleted = tokio::select! {
        read = client.connection(template.connection_id) => match read {
            Ok(connection) => connection.status == ConnectionStatus::Deprecated,
            Err(e) => e.status() == Some(404),
        },
        () = interrupt.urgent() => false,
    };
    if deleted {
        report.warnings.push(format!(
            "the template \"{}\" ({}) was deleted during the run; the copies were made from it \
             as it was when the run began",
            template.name, template.connection_id
        ));
    }
}
