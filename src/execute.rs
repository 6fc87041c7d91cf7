//! Execute: the writes of `apply`, bounded, concurrent, and never made twice.
//!
//! Takes the preview's report and posts the body of every `create` row, at most `concurrency` at
//! once (the client's pace bounds the requests in flight across the run as well). A failed target
//! is a value in its row, never an early return: the other targets carry on.
//!
//! Airbyte has no idempotency key, so a create whose answer was lost (a timeout, a reset, a 5xx)
//! may or may not have happened. Such a create is never simply sent again: the workspace's
//! connections are listed first, and a copy that is there is adopted (`created`); only when it is
//! not is the create tried again. Concurrent lookups share one listing.
//!
//! An interrupt stops new creates from starting; those still in flight get a bounded grace period
//! to finish, and the rest are reported truthfully (`not_run`, or `failed` with "outcome unknown").

use crate::client::{ApiError, Client, RetryPolicy};
use crate::existing::{Existing, ExistingCopies};
use crate::report::events::{Reporter, WriteResult};
use crate::report::{Action, Mode, Outcome, Report};
use crate::wire::{ConnectionCreateRequest, ConnectionResponse};
use futures::{StreamExt, stream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
}

/// An interrupt request (Ctrl-C), shared between the signal handler and the run.
#[derive(Debug, Default)]
pub struct Interrupt {
    raised: AtomicBool,
    notify: Notify,
}

impl Interrupt {
    pub fn raise(&self) {
        self.raised.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_raised(&self) -> bool {
        self.raised.load(Ordering::SeqCst)
    }

    /// Resolves once the interrupt is raised.
    pub async fn raised(&self) {
        let notified = self.notify.notified();
        if self.is_raised() {
            return;
        }
        notified.await;
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
                    create_once(client, finder, &create, &options.retry, reporter),
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
            Some(at) => match tokio::time::timeout_at(at.into(), results.next()).await {
                Ok(next) => next,
                Err(_) => break,
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
    retry: &RetryPolicy,
    reporter: &Arc<dyn Reporter>,
) -> Result<Uuid, String> {
    let mut delays = retry.delays();
    loop {
        let error = match client.create_connection(&create.body).await {
            Ok(created) => return Ok(created.connection_id),
            Err(e) if e.is_ambiguous() => e,
            Err(e) => return Err(e.to_string()),
        };
        // Only a listing that starts after the failure was seen can be trusted to show the
        // create's effect.
        let failed_at = Instant::now();
        match finder.find(failed_at, create).await {
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
                    "{error}; then looking for the copy failed too ({lookup}): a re-run will find \
                     it if it was made"
                ));
            }
        }
        let Some(delay) = delays.next() else {
            return Err(format!("{error} (gave up after {} tries)", retry.attempts));
        };
        reporter.log(
            1,
            &format!(
                "{error}; no copy was made, creating again in {} ms",
                delay.as_millis()
            ),
        );
        tokio::time::sleep(delay).await;
    }
}

/// Looks up copies after ambiguous failures. One listing of the workspace serves every lookup
/// whose failure happened before that listing began.
struct CopyFinder<'a> {
    client: &'a Client,
    latest: Mutex<Option<(Instant, Arc<Vec<ConnectionResponse>>)>>,
}

impl CopyFinder<'_> {
    /// The id of the copy `create` describes, if the server has it now.
    async fn find(&self, failed_at: Instant, create: &Create) -> Result<Option<Uuid>, ApiError> {
        let connections = {
            let mut latest = self.latest.lock().await;
            match latest.as_ref() {
                Some((started, list)) if *started >= failed_at => Arc::clone(list),
                _ => {
                    let started = Instant::now();
                    let list = Arc::new(
                        self.client
                            .connections(Some(create.workspace), |_| {})
                            .await?,
                    );
                    *latest = Some((started, Arc::clone(&list)));
                    list
                }
            }
        };
        let body = &create.body;
        let name = body.name.as_deref().unwrap_or_default();
        Ok(
            match ExistingCopies::new(&connections).find(body.source_id, body.destination_id, name)
            {
                Existing::One(copy) => Some(copy.connection_id),
                Existing::None | Existing::Ambiguous(_) => None,
            },
        )
    }
}
