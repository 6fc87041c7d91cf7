//! First syncs (SPEC §10): after apply's writes, start one sync per new copy, and follow them.
//!
//! build → execute → **sync** → report. At most `concurrency` starts run at once (a hundred syncs
//! started together would flood the sources and the workers). Starting a job has no idempotency
//! key, so a start is never simply sent again: after an ambiguous failure (no answer, a gateway
//! error) the connection's jobs decide. For a copy this run created, any sync job at all is the
//! one we started (nothing else knows the copy yet); for an older copy (`--sync-all`) a pending
//! or running one is. Airbyte answers 409 when a sync already runs: that counts as started.
//!
//! With `wait`, each started job is read (`GET /jobs/{id}`) every `poll` until it ends; an
//! interrupt stops the waiting (the syncs go on in Airbyte) but never cancels a job.

use crate::client::{ApiError, Client, RetryPolicy};
use crate::execute::Interrupt;
use crate::report::events::Reporter;
use crate::wire::{JobResponse, JobStatus};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How syncs are started and followed.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Starts in flight at once (`--sync-concurrency`).
    pub concurrency: usize,
    /// Follow the jobs to an end state (`--wait`).
    pub wait: bool,
    /// How often one job is read while waiting (`--poll-interval`).
    pub poll: Duration,
    /// Waits between tries of a start that surely did not happen.
    pub retry: RetryPolicy,
    /// `--sync-all`: also the copies that existed before the run.
    pub all: bool,
}

/// One copy to sync: its report row, its connection, and whether this run created it.
#[derive(Debug, Clone, Copy)]
pub struct SyncTarget {
    pub row: usize,
    pub connection: Uuid,
    pub created_now: bool,
}

/// How one copy's sync went, as far as the run followed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// Started (or found already running); not followed.
    Started(i64),
    /// Followed to its end.
    Ended(JobResponse),
    /// Started, but the run stopped waiting (interrupted): it goes on in Airbyte.
    StillRunning(i64),
    /// Could not be started; why.
    NotStarted(String),
}

impl SyncOutcome {
    pub fn job_id(&self) -> Option<i64> {
        match self {
            SyncOutcome::Started(id) | SyncOutcome::StillRunning(id) => Some(*id),
            SyncOutcome::Ended(job) => Some(job.job_id),
            SyncOutcome::NotStarted(_) => None,
        }
    }
}

/// Starts a sync for each target, at most `options.concurrency` at once, and with `wait` follows
/// each to its end. Returns one outcome per target, by report row.
pub async fn sync(
    targets: Vec<SyncTarget>,
    client: &Client,
    options: &SyncOptions,
    interrupt: &Interrupt,
    reporter: &Arc<dyn Reporter>,
) -> Vec<(usize, SyncOutcome)> {
    if targets.is_empty() {
        return Vec::new();
    }
    reporter.syncs_started(targets.len() as u64);
    // The starts are bounded; the waits are not (each is one read per poll, under the client's
    // own cap on requests in flight).
    let starts = tokio::sync::Semaphore::new(options.concurrency.max(1));
    let starts = &starts;
    let outcomes = futures::future::join_all(targets.into_iter().map(|target| async move {
        let started = {
            let Ok(_permit) = starts.acquire().await else {
                return (target.row, SyncOutcome::NotStarted("the run ended".into()));
            };
            if interrupt.is_raised() {
                return (
                    target.row,
                    SyncOutcome::NotStarted("interrupted before the sync was started".into()),
                );
            }
            start(client, target, &options.retry, reporter).await
        };
        let outcome = match started {
            Ok(id) if options.wait => follow(client, id, options.poll, interrupt).await,
            Ok(id) => SyncOutcome::Started(id),
            Err(message) => SyncOutcome::NotStarted(message),
        };
        reporter.sync_finished(match &outcome {
            SyncOutcome::Ended(job) => Some(job.status),
            _ => None,
        });
        (target.row, outcome)
    }))
    .await;
    reporter.syncs_finished();
    outcomes
}

/// Starts one sync; returns its job id, or why it could not be started.
async fn start(
    client: &Client,
    target: SyncTarget,
    retry: &RetryPolicy,
    reporter: &Arc<dyn Reporter>,
) -> Result<i64, String> {
    let mut delays = retry.delays();
    loop {
        let error = match client.start_sync(target.connection).await {
            Ok(job) => return Ok(job.job_id),
            Err(e) => e,
        };
        let decided_by_jobs = error.status() == Some(409) || error.is_ambiguous();
        if !decided_by_jobs && !error.is_transient() {
            return Err(format!("starting its sync: {error}"));
        }
        if decided_by_jobs {
            match started_already(client, target).await {
                Ok(Some(id)) => {
                    reporter.log(1, &format!("{error}; its sync runs already (job {id})"));
                    return Ok(id);
                }
                Ok(None) => {}
                Err(lookup) => {
                    return Err(format!(
                        "starting its sync: {error}; then reading its jobs failed too ({lookup}): \
                         a sync may or may not have started"
                    ));
                }
            }
        }
        let Some(delay) = delays.next() else {
            return Err(format!(
                "starting its sync: {error} (gave up after {} tries; no sync was started)",
                retry.attempts
            ));
        };
        tokio::time::sleep(delay).await;
    }
}

/// The job a start may have made: for a copy created by this run, any sync job; otherwise a
/// pending or running one.
async fn started_already(client: &Client, target: SyncTarget) -> Result<Option<i64>, ApiError> {
    if target.created_now {
        let jobs = client.sync_jobs(target.connection, None, 1).await?;
        return Ok(jobs.first().map(|j| j.job_id));
    }
    for status in [JobStatus::Running, JobStatus::Pending] {
        let jobs = client.sync_jobs(target.connection, Some(status), 1).await?;
        if let Some(job) = jobs.first() {
            return Ok(Some(job.job_id));
        }
    }
    Ok(None)
}

/// Reads the job every `poll` until it ends, or the run is interrupted. A read that fails is
/// tried again at the next poll.
async fn follow(client: &Client, id: i64, poll: Duration, interrupt: &Interrupt) -> SyncOutcome {
    loop {
        if let Ok(job) = client.job(id).await {
            if job.status.is_terminal() {
                return SyncOutcome::Ended(job);
            }
        }
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            () = interrupt.raised() => return SyncOutcome::StillRunning(id),
        }
    }
}
