//! Sync and reset jobs (SPEC §10): their timeline, their answers and the rules of `POST /jobs`.
//!
//! A job that a request started follows the clock, computed on every read, so no task runs in
//! the background: `pending` for the first tenth of `--job-duration`, then `running`, then
//! `succeeded`, or `failed` when the fault dice said so at its start (`--job-fail-rate`). A
//! cancelled job, and every job a seed brings, is frozen in its status. Rows and bytes are made
//! up from the job id, so the same job always reports the same numbers.
//!
//! The rules follow Airbyte's `JobsController`, `SchedulerHandler` and `TemporalClient`: a sync
//! needs an `active` connection (else 409 `state-conflict`), and none of the connection's jobs
//! may be pending or running (else 409 `try-again-later`, "A sync is already running for: …");
//! a reset or clear cancels the connection's running job and starts at once; a refresh is 422.
//! Answers are shaped by Airbyte's `JobResponseMapper`: `startTime` from the creation,
//! `lastUpdatedAt` only once the job ended, `duration` once it left `pending`.

use super::problem::ApiError;
use crate::clock::iso_datetime;
use crate::wire::{JobResponse, JobStatus, JobType};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The clock a request reads: monotonic for the timeline, wall time for what is shown.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub instant: Instant,
    /// Milliseconds since the Unix epoch.
    pub epoch_ms: i64,
}

impl Now {
    pub fn system() -> Self {
        let epoch_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Self {
            instant: Instant::now(),
            epoch_ms,
        }
    }
}

/// A past job as a seed gives it, with ids resolved; times in seconds since the epoch.
#[derive(Debug, Clone)]
pub struct SeededJob {
    pub id: i64,
    pub connection_id: Uuid,
    pub workspace_id: Uuid,
    pub job_type: JobType,
    pub status: JobStatus,
    pub created_at: i64,
    pub updated_at: i64,
    pub rows: Option<i64>,
    pub bytes: Option<i64>,
}

/// One job.
#[derive(Debug, Clone)]
#[allow(clippy::struct_field_names)] // `job_type` is the API's name
pub struct Job {
    pub id: i64,
    pub connection_id: Uuid,
    pub workspace_id: Uuid,
    pub job_type: JobType,
    /// Milliseconds since the epoch.
    created_ms: i64,
    timeline: Timeline,
}

#[derive(Debug, Clone)]
enum Timeline {
    /// Started by a request: follows the clock from `started`.
    Live {
        started: Instant,
        duration: Duration,
        fails: bool,
    },
    /// Seeded or cancelled: this status for good.
    Frozen {
        status: JobStatus,
        updated_ms: i64,
        rows: Option<i64>,
        bytes: Option<i64>,
    },
}

/// A job as of one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct State {
    status: JobStatus,
    /// When the status last changed, in milliseconds since the epoch.
    updated_ms: i64,
    rows: Option<i64>,
    bytes: Option<i64>,
}

impl Job {
    /// A job a seed describes, frozen in its status. Rows and bytes default to made-up numbers
    /// for a succeeded job and to none otherwise.
    pub fn seeded(record: &SeededJob) -> Self {
        let (made_rows, made_bytes) = volume(record.id);
        let succeeded = record.status == JobStatus::Succeeded;
        Self {
            id: record.id,
            connection_id: record.connection_id,
            workspace_id: record.workspace_id,
            job_type: record.job_type,
            created_ms: record.created_at.saturating_mul(1000),
            timeline: Timeline::Frozen {
                status: record.status,
                updated_ms: record.updated_at.saturating_mul(1000),
                rows: record.rows.or(succeeded.then_some(made_rows)),
                bytes: record.bytes.or(succeeded.then_some(made_bytes)),
            },
        }
    }

    fn state(&self, now: Now) -> State {
        match &self.timeline {
            Timeline::Frozen {
                status,
                updated_ms,
                rows,
                bytes,
            } => State {
                status: *status,
                updated_ms: *updated_ms,
                rows: *rows,
                bytes: *bytes,
            },
            Timeline::Live {
                started,
                duration,
                fails,
            } => {
                let elapsed = now.instant.saturating_duration_since(*started);
                let pending = *duration / 10;
                let ms = |d: Duration| {
                    self.created_ms
                        .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                };
                let (made_rows, made_bytes) = volume(self.id);
                if elapsed < pending {
                    State {
                        status: JobStatus::Pending,
                        updated_ms: self.created_ms,
                        rows: None,
                        bytes: None,
                    }
                } else if elapsed < *duration {
                    State {
                        status: JobStatus::Running,
                        updated_ms: ms(pending),
                        rows: Some(0),
                        bytes: Some(0),
                    }
                } else if *fails {
                    State {
                        status: JobStatus::Failed,
                        updated_ms: ms(*duration),
                        rows: Some(made_rows / 2),
                        bytes: Some(made_bytes / 2),
                    }
                } else {
                    State {
                        status: JobStatus::Succeeded,
                        updated_ms: ms(*duration),
                        rows: Some(made_rows),
                        bytes: Some(made_bytes),
                    }
                }
            }
        }
    }

    /// Still pending or running at `now`.
    fn is_active(&self, now: Now) -> bool {
        !self.state(now).status.is_terminal()
    }

    /// The answer of a read at `now`.
    pub fn response(&self, now: Now) -> JobResponse {
        let state = self.state(now);
        let created = self.created_ms.div_euclid(1000);
        let updated = state.updated_ms.div_euclid(1000);
        JobResponse {
            job_id: self.id,
            status: state.status,
            job_type: self.job_type,
            start_time: iso_datetime(created),
            connection_id: self.connection_id,
            last_updated_at: state.status.is_terminal().then(|| iso_datetime(updated)),
            duration: (state.status != JobStatus::Pending)
                .then(|| iso_duration(updated.saturating_sub(created))),
            bytes_synced: state.bytes,
            rows_synced: state.rows,
        }
    }

    fn cancel(&mut self, now: Now) {
        self.timeline = Timeline::Frozen {
            status: JobStatus::Cancelled,
            updated_ms: now.epoch_ms,
            rows: Some(0),
            bytes: Some(0),
        };
    }
}

/// Made-up rows and bytes of a job, the same for the same id.
fn volume(id: i64) -> (i64, i64) {
    // SplitMix64: a well-spread hash of the id.
    let mut z = u64::from_ne_bytes(id.to_ne_bytes()).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let rows = 1_000 + i64::try_from(z % 99_000).unwrap_or(0);
    let row_size = 120 + i64::try_from((z >> 32) % 900).unwrap_or(0);
    (rows, rows * row_size)
}

/// Seconds as Java's `Duration.toString()` prints them: `PT0S`, `PT2S`, `PT8H6M12S`.
pub fn iso_duration(seconds: i64) -> String {
    if seconds == 0 {
        return "PT0S".to_string();
    }
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    let part = |n: i64, unit: char| {
        if n == 0 {
            String::new()
        } else {
            format!("{n}{unit}")
        }
    };
    format!("PT{}{}{}", part(h, 'H'), part(m, 'M'), part(s, 'S'))
}

/// What `GET /jobs` filters and sorts by.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub connection_id: Option<Uuid>,
    pub workspace_ids: Vec<Uuid>,
    pub status: Option<JobStatus>,
    pub job_type: Option<JobType>,
    pub order: JobOrder,
    pub offset: usize,
    pub limit: usize,
}

/// `orderBy`: `createdAt|ASC` (Airbyte's default), `createdAt|DESC`, `updatedAt|…`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobOrder {
    pub by_updated: bool,
    pub descending: bool,
}

impl JobOrder {
    /// Parses `orderBy` as Airbyte's `orderByToFieldAndMethod` does: the first
    /// `<letters and digits>|ASC` or `…|DESC` in the text, the field `createdAt` or `updatedAt`
    /// in any case; anything else is a 400.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let invalid = || ApiError::bad_request(format!("Invalid order by clause provided: {text}"));
        let bytes = text.as_bytes();
        for (bar, _) in text.match_indices('|') {
            let rest = &text[bar + 1..];
            let descending = if rest.starts_with("DESC") {
                true
            } else if rest.starts_with("ASC") {
                false
            } else {
                continue;
            };
            let start = bytes[..bar]
                .iter()
                .rposition(|b| !b.is_ascii_alphanumeric())
                .map_or(0, |i| i + 1);
            if start == bar {
                continue;
            }
            let by_updated = match text[start..bar].to_ascii_lowercase().as_str() {
                "createdat" => false,
                "updatedat" => true,
                _ => return Err(invalid()),
            };
            return Ok(Self {
                by_updated,
                descending,
            });
        }
        Err(invalid())
    }
}

/// Every job, in creation order, with an index by id.
#[derive(Debug)]
pub struct Jobs {
    all: Vec<Job>,
    ids: HashMap<i64, usize>,
    next_id: i64,
    /// `--job-duration`: how long a started job takes.
    pub duration: Duration,
}

impl Default for Jobs {
    fn default() -> Self {
        Self {
            all: Vec::new(),
            ids: HashMap::new(),
            next_id: 1,
            duration: Duration::from_secs(2),
        }
    }
}

impl Jobs {
    /// Adds a seeded job; `false` when its id is taken.
    pub fn add(&mut self, job: Job) -> bool {
        if self.ids.contains_key(&job.id) {
            return false;
        }
        self.next_id = self.next_id.max(job.id.saturating_add(1));
        self.ids.insert(job.id, self.all.len());
        self.all.push(job);
        true
    }

    /// The id the next job gets.
    pub fn next_id(&self) -> i64 {
        self.next_id
    }

    pub fn get(&self, id: i64) -> Option<&Job> {
        self.ids.get(&id).map(|&i| &self.all[i])
    }

    /// Whether any job of the connection is pending or running at `now`.
    pub fn any_active(&self, connection_id: Uuid, now: Now) -> bool {
        self.all
            .iter()
            .any(|j| j.connection_id == connection_id && j.is_active(now))
    }

    /// Cancels every pending or running job of the connection (a reset does so).
    pub fn cancel_active(&mut self, connection_id: Uuid, now: Now) {
        for job in &mut self.all {
            if job.connection_id == connection_id && job.is_active(now) {
                job.cancel(now);
            }
        }
    }

    /// Starts a job that follows the clock; `fails` decides how it ends.
    pub fn start(
        &mut self,
        connection_id: Uuid,
        workspace_id: Uuid,
        job_type: JobType,
        fails: bool,
        now: Now,
    ) -> JobResponse {
        let job = Job {
            id: self.next_id,
            connection_id,
            workspace_id,
            job_type,
            created_ms: now.epoch_ms,
            timeline: Timeline::Live {
                started: now.instant,
                duration: self.duration,
                fails,
            },
        };
        let response = job.response(now);
        self.add(job);
        response
    }

    /// `DELETE /jobs/{jobId}`: a pending or running job is cancelled; an ended one is a 409
    /// `state-conflict`, "Job is not currently running".
    pub fn cancel(&mut self, id: i64, now: Now) -> Result<JobResponse, ApiError> {
        let position = *self
            .ids
            .get(&id)
            .ok_or_else(|| ApiError::not_found("job", id.to_string()))?;
        let job = &mut self.all[position];
        if !job.is_active(now) {
            return Err(ApiError::state_conflict("Job is not currently running"));
        }
        job.cancel(now);
        Ok(job.response(now))
    }

    /// A page of jobs as `GET /jobs` returns them.
    pub fn list(&self, filter: &JobFilter, now: Now) -> Vec<JobResponse> {
        let mut found: Vec<(i64, JobResponse)> = self
            .all
            .iter()
            .filter(|j| filter.connection_id.is_none_or(|c| j.connection_id == c))
            .filter(|j| {
                filter.workspace_ids.is_empty() || filter.workspace_ids.contains(&j.workspace_id)
            })
            .filter(|j| filter.job_type.is_none_or(|t| j.job_type == t))
            .map(|j| {
                let state = j.state(now);
                let key = if filter.order.by_updated {
                    state.updated_ms
                } else {
                    j.created_ms
                };
                (key, j.response(now))
            })
            .filter(|(_, r)| filter.status.is_none_or(|s| r.status == s))
            .collect();
        // Ties (jobs made in the same millisecond) keep their ids' order.
        found.sort_by(|(a, ra), (b, rb)| {
            let order = a.cmp(b).then(ra.job_id.cmp(&rb.job_id));
            if filter.order.descending {
                order.reverse()
            } else {
                order
            }
        });
        found
            .into_iter()
            .skip(filter.offset)
            .take(filter.limit)
            .map(|(_, r)| r)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(now: Now, ms: u64) -> Now {
        Now {
            instant: now.instant + Duration::from_millis(ms),
            epoch_ms: now.epoch_ms + i64::try_from(ms).unwrap(),
        }
    }

    #[test]
    fn dates_and_durations_print_as_java_does() {
        assert_eq!(iso_datetime(1_767_225_600), "2026-01-01T00:00Z");
        assert_eq!(iso_datetime(1_679_707_850), "2023-03-25T01:30:50Z");
        assert_eq!(iso_datetime(951_782_400), "2000-02-29T00:00Z");
        assert_eq!(iso_duration(0), "PT0S");
        assert_eq!(iso_duration(2), "PT2S");
        assert_eq!(iso_duration(29_172), "PT8H6M12S");
        assert_eq!(iso_duration(3600), "PT1H");
    }

    #[test]
    fn a_started_job_goes_pending_running_then_ends() {
        let mut jobs = Jobs {
            duration: Duration::from_secs(10),
            ..Jobs::default()
        };
        let start = Now {
            instant: Instant::now(),
            epoch_ms: 1_767_225_600_000,
        };
        let c = Uuid::new_v4();
        let first = jobs.start(c, Uuid::nil(), JobType::Sync, false, start);
        assert_eq!(first.status, JobStatus::Pending);
        assert_eq!(first.duration, None);
        let job = jobs.get(first.job_id).unwrap();
        let running = job.response(at(start, 5_000));
        assert_eq!(running.status, JobStatus::Running);
        assert_eq!(running.duration.as_deref(), Some("PT1S"));
        assert_eq!(running.last_updated_at, None);
        let done = job.response(at(start, 10_000));
        assert_eq!(done.status, JobStatus::Succeeded);
        assert_eq!(done.duration.as_deref(), Some("PT10S"));
        assert_eq!(
            done.last_updated_at.as_deref(),
            Some("2026-01-01T00:00:10Z")
        );
        assert_eq!(done.rows_synced, Some(volume(first.job_id).0));
        let failing = jobs.start(c, Uuid::nil(), JobType::Sync, true, start);
        let failed = jobs
            .get(failing.job_id)
            .unwrap()
            .response(at(start, 20_000));
        assert_eq!(failed.status, JobStatus::Failed);
        assert!(jobs.cancel(failing.job_id, at(start, 20_000)).is_err());
    }

    #[test]
    fn order_by_follows_airbytes_pattern() {
        let parse = |t: &str| JobOrder::parse(t).map_err(|e| e.0.message().to_string());
        assert_eq!(
            parse("createdAt|DESC"),
            Ok(JobOrder {
                by_updated: false,
                descending: true
            })
        );
        assert_eq!(
            parse("UPDATEDAT|ASC"),
            Ok(JobOrder {
                by_updated: true,
                descending: false
            })
        );
        assert_eq!(
            parse("createdAt"),
            Err("Invalid order by clause provided: createdAt".to_string())
        );
        assert!(parse("name|ASC").is_err());
        assert!(parse("createdAt|desc").is_err());
    }
}
