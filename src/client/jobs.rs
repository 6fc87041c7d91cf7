//! The jobs endpoints (SPEC §10): start a sync, read one job, list a connection's jobs.
//!
//! Starting a job is a write with no idempotency key, like a create: it is tried again here only
//! when it surely had no effect (a 429, or never sent). A 409 is not a throttle here: Airbyte
//! answers it when a sync of the connection is already pending or running, which the caller
//! counts as started. Reads are tried again like any read.

use super::{ApiError, Client};
use crate::wire::{JobCreateRequest, JobResponse, JobStatus, JobType, Page};
use reqwest::Method;
use uuid::Uuid;

impl Client {
    /// `POST /jobs {connectionId, jobType: sync}`.
    pub async fn start_sync(&self, connection: Uuid) -> Result<JobResponse, ApiError> {
        let body = JobCreateRequest {
            connection_id: connection,
            job_type: JobType::Sync,
        };
        let no_effect =
            |e: &ApiError| e.status() == Some(429) || (e.not_sent() && e.is_transient());
        self.call(Method::POST, "/jobs", &[], Some(&body), no_effect)
            .await
    }

    /// `GET /jobs/{jobId}`.
    pub async fn job(&self, id: i64) -> Result<JobResponse, ApiError> {
        self.get(&format!("/jobs/{id}"), &[]).await
    }

    /// The connection's sync jobs, newest first: `GET /jobs?connectionId=…&jobType=sync&
    /// orderBy=createdAt|DESC&limit=…`, only those in `status` when given.
    pub async fn sync_jobs(
        &self,
        connection: Uuid,
        status: Option<JobStatus>,
        limit: u32,
    ) -> Result<Vec<JobResponse>, ApiError> {
        let mut query = vec![
            ("connectionId", connection.to_string()),
            ("jobType", JobType::Sync.as_str().to_string()),
            ("orderBy", "createdAt|DESC".to_string()),
            ("limit", limit.to_string()),
        ];
        if let Some(status) = status {
            query.push(("status", status.as_str().to_string()));
        }
        let page: Page<JobResponse> = self.get("/jobs", &query).await?;
        Ok(page.data)
    }
}
