//! Airbyte's public API wire types, shared by the client and the sandbox.
//!
//! Field names are spelled exactly as the official `OpenAPI` spec spells them (camelCase, except the
//! token endpoint's `client_id`/`grant-type` and the streams endpoint's `streamnamespace`).
//! Enums reject unknown values instead of dropping them. Unknown *fields* are ignored, as the
//! server's Jackson configuration does, so newer servers keep working.
//!
//! The sandbox serializes these types and the client deserializes them, so the two sides cannot
//! drift apart silently. Section and line references (`L3976`) point into
//! `../shared/airbyte-api/public-api.openapi.yaml`.

use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use uuid::Uuid;

/// `ConnectionStatusEnum` (L4071). `deprecated` means deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    Active,
    Inactive,
    Deprecated,
    Locked,
}

/// `ScheduleTypeEnum` (L4044): what a create or patch may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleType {
    Manual,
    Cron,
}

/// `ScheduleTypeWithBasicEnum` (L4064): what a read may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleTypeWithBasic {
    Manual,
    Cron,
    Basic,
}

/// `NamespaceDefinitionEnum` (L4079).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NamespaceDefinition {
    Source,
    Destination,
    CustomFormat,
}

/// `NonBreakingSchemaUpdatesBehaviorEnum` (L4088).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NonBreakingSchemaUpdatesBehavior {
    Ignore,
    DisableConnection,
    PropagateColumns,
    PropagateFully,
}

/// `ConnectionSyncModeEnum` (L5146).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    FullRefreshOverwrite,
    FullRefreshOverwriteDeduped,
    FullRefreshAppend,
    FullRefreshUpdate,
    FullRefreshSoftDelete,
    IncrementalAppend,
    IncrementalDedupedHistory,
    IncrementalUpdate,
    IncrementalSoftDelete,
}

impl SyncMode {
    pub const ALL: [SyncMode; 9] = [
        SyncMode::FullRefreshOverwrite,
        SyncMode::FullRefreshOverwriteDeduped,
        SyncMode::FullRefreshAppend,
        SyncMode::FullRefreshUpdate,
        SyncMode::FullRefreshSoftDelete,
        SyncMode::IncrementalAppend,
        SyncMode::IncrementalDedupedHistory,
        SyncMode::IncrementalUpdate,
        SyncMode::IncrementalSoftDelete,
    ];

    /// The wire spelling, e.g. `incremental_deduped_history`.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::FullRefreshOverwrite => "full_refresh_overwrite",
            SyncMode::FullRefreshOverwriteDeduped => "full_refresh_overwrite_deduped",
            SyncMode::FullRefreshAppend => "full_refresh_append",
            SyncMode::FullRefreshUpdate => "full_refresh_update",
            SyncMode::FullRefreshSoftDelete => "full_refresh_soft_delete",
            SyncMode::IncrementalAppend => "incremental_append",
            SyncMode::IncrementalDedupedHistory => "incremental_deduped_history",
            SyncMode::IncrementalUpdate => "incremental_update",
            SyncMode::IncrementalSoftDelete => "incremental_soft_delete",
        }
    }

    /// Incremental modes need a cursor.
    pub fn is_incremental(self) -> bool {
        matches!(
            self,
            SyncMode::IncrementalAppend
                | SyncMode::IncrementalDedupedHistory
                | SyncMode::IncrementalUpdate
                | SyncMode::IncrementalSoftDelete
        )
    }

    /// Dedup, update and soft-delete modes need a primary key.
    pub fn needs_primary_key(self) -> bool {
        matches!(
            self,
            SyncMode::FullRefreshOverwriteDeduped
                | SyncMode::FullRefreshUpdate
                | SyncMode::FullRefreshSoftDelete
                | SyncMode::IncrementalDedupedHistory
                | SyncMode::IncrementalUpdate
                | SyncMode::IncrementalSoftDelete
        )
    }
}

impl fmt::Display for SyncMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `StreamMapperType` (L3207).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StreamMapperType {
    Hashing,
    FieldRenaming,
    RowFiltering,
    Encryption,
    FieldFiltering,
}

/// `AirbyteApiConnectionSchedule` (L4032): the schedule of a create or patch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionSchedule {
    pub schedule_type: ScheduleType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_expression: Option<String>,
}

/// `ConnectionScheduleResponse` (L4050): the schedule as a read returns it. A cron expression
/// comes back with its time zone appended (`0 0 2 * * ? UTC`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionScheduleResponse {
    pub schedule_type: ScheduleTypeWithBasic,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_expression: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_timing: Option<String>,
}

/// `SelectedFieldInfo` (L3196).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SelectedFieldInfo {
    #[serde(default)]
    pub field_path: Vec<String>,
}

/// `ConfiguredStreamMapper` (L3216). The configuration is one of several shapes (hashing,
/// encryption, …); it is kept as a JSON object so no field is lost on the way through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfiguredStreamMapper {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    #[serde(rename = "type")]
    pub mapper_type: StreamMapperType,
    pub mapper_configuration: Map<String, Value>,
}

/// `StreamConfiguration` (L5051). `selectedFields` distinguishes absent (all fields) from `[]`
/// (which create rejects).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamConfiguration {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_mode: Option<SyncMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_field: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_key: Option<Vec<Vec<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_files: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_object_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_fields: Option<Vec<SelectedFieldInfo>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mappers: Option<Vec<ConfiguredStreamMapper>>,
}

/// `StreamConfigurations` (L5099).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamConfigurations {
    #[serde(default)]
    pub streams: Vec<StreamConfiguration>,
}

/// `Tag` (L3119); connections carry full tag objects, not bare ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    pub tag_id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub color: String,
}

/// `TagCreateRequest` (L3861): every field is required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagCreateRequest {
    pub name: String,
    /// Six hex digits, without `#` (e.g. `FF5733`).
    pub color: String,
    pub workspace_id: Uuid,
}

/// `TagPatchRequest` (L3876): both fields are required; the tag is replaced, not merged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagPatchRequest {
    pub name: String,
    pub color: String,
}

/// `ConnectionResponse` (L3976).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionResponse {
    pub connection_id: Uuid,
    pub name: String,
    pub source_id: Uuid,
    pub destination_id: Uuid,
    pub workspace_id: Uuid,
    pub status: ConnectionStatus,
    pub schedule: ConnectionScheduleResponse,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_breaking_schema_updates_behavior: Option<NonBreakingSchemaUpdatesBehavior>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_definition: Option<NamespaceDefinition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    pub configurations: StreamConfigurations,
    pub created_at: i64,
    pub tags: Vec<Tag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
}

/// `ConnectionCreateRequest` (L3665). Only `sourceId` and `destinationId` are required; the
/// server fills in the rest (DIGEST §3.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionCreateRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub source_id: Uuid,
    pub destination_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configurations: Option<StreamConfigurations>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ConnectionSchedule>,
    /// Deprecated; accepted and ignored by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_residency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_definition: Option<NamespaceDefinition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_breaking_schema_updates_behavior: Option<NonBreakingSchemaUpdatesBehavior>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ConnectionStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
}

/// `ConnectionPatchRequest` (L3716): only the fields sent are changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionPatchRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configurations: Option<StreamConfigurations>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ConnectionSchedule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_residency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_definition: Option<NamespaceDefinition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_breaking_schema_updates_behavior: Option<NonBreakingSchemaUpdatesBehavior>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ConnectionStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
}

/// `SourceResponse` (L4157). `configuration` holds the connector's settings with secrets masked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceResponse {
    pub source_id: Uuid,
    pub name: String,
    pub source_type: String,
    pub definition_id: Uuid,
    pub workspace_id: Uuid,
    pub configuration: Map<String, Value>,
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_allocation: Option<Value>,
}

/// `DestinationResponse` (L4117).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationResponse {
    pub destination_id: Uuid,
    pub name: String,
    pub destination_type: String,
    pub definition_id: Uuid,
    pub workspace_id: Uuid,
    pub configuration: Map<String, Value>,
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_allocation: Option<Value>,
}

/// `WorkspaceResponse` (L4342).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceResponse {
    pub workspace_id: Uuid,
    pub name: String,
    pub data_residency: String,
    pub notifications: Map<String, Value>,
}

/// `StreamProperties` (L5115), one item of the bare array `GET /streams` returns.
/// `syncModes` is absent when no `destinationId` was given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamProperties {
    pub stream_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_modes: Option<Vec<SyncMode>>,
    #[serde(
        rename = "streamnamespace",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_namespace: Option<String>,
    #[serde(default)]
    pub default_cursor_field: Vec<String>,
    #[serde(default)]
    pub source_defined_cursor_field: bool,
    #[serde(default)]
    pub source_defined_primary_key: Vec<Vec<String>>,
    #[serde(default)]
    pub property_fields: Vec<Vec<String>>,
}

/// One page of a list endpoint (`ConnectionsResponse`, `SourcesResponse`, …). `next` is not to
/// be trusted (DIGEST §3.5): callers keep their own offset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    pub data: Vec<T>,
}

/// `TagsResponse` (L5039): tags are not paged. Its items are `TagResponse` (L4228), which has
/// exactly the fields of [`Tag`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagsResponse {
    pub data: Vec<Tag>,
}

/// The only grant the token endpoint knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    ClientCredentials,
}

/// `ApplicationTokenRequestWithGrant` (L3558). The wire name is `grant-type`, with a hyphen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRequest {
    pub client_id: String,
    pub client_secret: Secret,
    #[serde(
        rename = "grant-type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub grant_type: Option<GrantType>,
}

/// `token_type` of a token response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenType {
    Bearer,
}

/// `PublicAccessTokenResponse` (L3573). `expires_in` is in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: Secret,
    pub token_type: TokenType,
    pub expires_in: i64,
}

/// Airbyte's error body (RFC 9457 shape, sent as `application/json`; DIGEST §6). `data` holds
/// `{message}` for most errors and `{resourceType, resourceId}` for 404s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    pub status: u16,
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub detail: String,
    #[serde(default)]
    pub documentation_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl Problem {
    /// The most specific message the body carries: `data.message`, else `detail`.
    pub fn message(&self) -> &str {
        self.data
            .as_ref()
            .and_then(|d| d.get("message"))
            .and_then(Value::as_str)
            .unwrap_or(&self.detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spec_spellings_are_kept() {
        let req = TokenRequest {
            client_id: "c".into(),
            client_secret: Secret::new("s"),
            grant_type: Some(GrantType::ClientCredentials),
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({"client_id": "c", "client_secret": "s", "grant-type": "client_credentials"})
        );
        let props: StreamProperties =
            serde_json::from_value(json!({"streamName": "orders", "streamnamespace": "public"}))
                .unwrap();
        assert_eq!(props.stream_namespace.as_deref(), Some("public"));
    }

    #[test]
    fn unknown_enum_values_are_errors() {
        let err = serde_json::from_value::<ConnectionSchedule>(json!({"scheduleType": "basic"}))
            .unwrap_err();
        assert!(err.to_string().contains("unknown variant `basic`"), "{err}");
        assert!(serde_json::from_value::<SyncMode>(json!("incremental")).is_err());
    }

    #[test]
    fn empty_selected_fields_survive_a_round_trip() {
        let s: StreamConfiguration =
            serde_json::from_value(json!({"name": "orders", "selectedFields": []})).unwrap();
        assert_eq!(s.selected_fields, Some(vec![]));
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"name": "orders", "selectedFields": []})
        );
    }

    #[test]
    fn problem_message_prefers_data_message() {
        let p: Problem = serde_json::from_value(json!({
            "status": 400, "type": "t", "title": "bad-request", "detail": "d",
            "documentationUrl": null, "data": {"message": "No fields selected"}
        }))
        .unwrap();
        assert_eq!(p.message(), "No fields selected");
    }
}

/// `JobStatusEnum` (L3775).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Pending,
    Queued,
    Running,
    Incomplete,
    Failed,
    Succeeded,
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Incomplete => "incomplete",
            JobStatus::Failed => "failed",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// A job in this status will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Failed | JobStatus::Succeeded | JobStatus::Cancelled
        )
    }
}

/// `JobTypeEnum` (L3786).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobType {
    Sync,
    Reset,
    Refresh,
    Clear,
}

impl JobType {
    pub fn as_str(self) -> &'static str {
        match self {
            JobType::Sync => "sync",
            JobType::Reset => "reset",
            JobType::Refresh => "refresh",
            JobType::Clear => "clear",
        }
    }
}

/// `JobCreateRequest` (L3757): both fields are required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobCreateRequest {
    pub connection_id: Uuid,
    pub job_type: JobType,
}

/// `JobResponse` (L3600). `startTime` and `lastUpdatedAt` are ISO 8601 date-times as text,
/// `duration` an ISO 8601 duration (`PT8H6M12S`); `lastUpdatedAt` only once the job ended,
/// `duration` once it left `pending`. A list of jobs is a [`Page`] of these (`JobsResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobResponse {
    pub job_id: i64,
    pub status: JobStatus,
    pub job_type: JobType,
    pub start_time: String,
    pub connection_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_synced: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_synced: Option<i64>,
}
