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
    report.mode = Mode::Apply;
    let workspace = report.template.as_ref().map(|t| t.workspace_id);
    let mut creates = Vec::new();
    for (i, row) in report.targets.iter_mut().enumerate() {
        row.outcome = Some(match row.action {
            Action::Unchanged => Outcome::Unchanged,
            Action::Error => Outcome::Failed,
            Action::Create | Action::Update => match row.body.clone() {
                Some(body) => {
                    creates.push((i, body));
                    Outcome::NotRun
                }
                None => Outcome::Failed,
            },
        });
    }

    reporter.writes_started(creates.len() as u64);
    let finder = CopyFinder {
        client,
        workspace,
        latest: Mutex::new(None),
    };
    let finder = &finder;
    let started: Vec<AtomicBool> = report
        .targets
        .iter()
        .map(|_| AtomicBool::new(false))
        .collect();
    let started = &started;
    let mut results = stream::iter(creates)
        .map(|(i, body)| async move {
            if interrupt.is_raised() {
                return (i, None);
            }
            started[i].store(true, Ordering::SeqCst);
            let write = tokio::time::timeout(
                options.target_timeout,
                create_once(client, finder, &body, &options.retry, reporter),
            )
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "gave up after {} s; the copy may or may not exist, a re-run will find it",
                    options.target_timeout.as_secs()
                ))
            });
            (i, Some(write))
        })
        .buffer_unordered(options.concurrency.max(1));

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
        let Some((i, write)) = next else { break };
        let row = &mut report.targets[i];
        match write {
            None => {}
            Some(Ok(copy)) => {
                row.outcome = Some(Outcome::Created);
                row.connection_id = Some(copy);
                reporter.write_finished(WriteResult::Created);
            }
            Some(Err(message)) => {
                row.outcome = Some(Outcome::Failed);
                row.error = Some(message);
                reporter.write_finished(WriteResult::Failed);
            }
        }
    }
    drop(results);
    // Creates still in flight when the grace period ended: nobody knows how they ended.
    for (row, started) in report.targets.iter_mut().zip(started) {
        if row.outcome == Some(Outcome::NotRun) && started.load(Ordering::SeqCst) {
            row.outcome = Some(Outcome::Failed);
            row.error = Some(
                "interrupted while the create was in flight: the copy may or may not exist, a \
                 re-run will find it"
                    .into(),
            );
        }
    }
    reporter.writes_finished();
    report.tally();
}

/// Creates one copy, adopting it instead when an ambiguous failure turns out to have created it.
/// Returns the copy's id, or why it could not be made.
async fn create_once(
    client: &Client,
    finder: &CopyFinder<'_>,
    body: &ConnectionCreateRequest,
    retry: &RetryPolicy,
    reporter: &Arc<dyn Reporter>,
) -> Result<Uuid, String> {
    let mut delays = retry.delays();
    loop {
        let error = match client.create_connection(body).await {
            Ok(created) => return Ok(created.connection_id),
            Err(e) if e.is_ambiguous() => e,
            Err(e) => return Err(e.to_string()),
        };
        // Only a listing that starts after the failure was seen can be trusted to show the
        // create's effect.
        let failed_at = Instant::now();
        match finder.find(failed_at, body).await {
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
    workspace: Option<Uuid>,
    latest: Mutex<Option<(Instant, Arc<Vec<ConnectionResponse>>)>>,
}

impl CopyFinder<'_> {
    /// The id of the copy `body` describes, if the server has it now.
    async fn find(
        &self,
        failed_at: Instant,
        body: &ConnectionCreateRequest,
    ) -> Result<Option<Uuid>, ApiError> {
        let connections = {
            let mut latest = self.latest.lock().await;
            match latest.as_ref() {
                Some((started, list)) if *started >= failed_at => Arc::clone(list),
                _ => {
                    let started = Instant::now();
                    let list = Arc::new(self.client.connections(self.workspace, |_| {}).await?);
                    *latest = Some((started, Arc::clone(&list)));
                    list
                }
            }
        };
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
