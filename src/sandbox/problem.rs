//! Every error body the sandbox sends, built in one place.
//!
//! Airbyte answers errors with an RFC 9457-shaped body served as `application/json` (DIGEST §6).
//! `type`, `title` and `detail` are constants per problem kind, taken from Airbyte's problem
//! catalogue (`api-problems.yaml`); `data` carries the specifics: `{message}` for most problems,
//! `{resourceType, resourceId}` for a missing resource, nothing for the tag problems, which the
//! server throws without arguments.

use crate::wire::Problem;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer: a [`Problem`] that knows how to become an HTTP response.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError(pub Box<Problem>);

const UNEXPECTED_DETAIL: &str = "An unexpected problem has occurred. If this is an error that \
                                 needs to be addressed, please submit a pull request or github \
                                 issue.";

/// The text real Airbyte puts in place of a secret on reads.
pub const MASK: &str = "**********";

fn problem(
    status: u16,
    kind: &str,
    title: &str,
    detail: &str,
    data: serde_json::Value,
) -> ApiError {
    ApiError(Box::new(Problem {
        status,
        problem_type: kind.to_string(),
        title: title.to_string(),
        detail: detail.to_string(),
        documentation_url: None,
        data: Some(data),
    }))
}

/// A problem Airbyte throws without arguments: no `data` at all.
fn bare(status: u16, kind: &str, title: &str, detail: &str) -> ApiError {
    let mut error = problem(status, kind, title, detail, serde_json::Value::Null);
    error.0.data = None;
    error
}

impl ApiError {
    /// 400 `bad-request`: every validation failure.
    pub fn bad_request(message: impl Into<String>) -> Self {
        problem(
            400,
            "https://reference.airbyte.com/reference/errors#bad-request",
            "bad-request",
            "The request could not be understood by the server due to malformed syntax.",
            json!({ "message": message.into() }),
        )
    }

    /// 401 `invalid-api-key`: a missing, unknown or expired bearer token.
    pub fn invalid_api_key(message: impl Into<String>) -> Self {
        problem(
            401,
            "https://reference.airbyte.com/reference/errors#invalid-api-key",
            "invalid-api-key",
            "The API key in the Authorization header is invalid.",
            json!({ "message": message.into() }),
        )
    }

    /// 403 `forbidden`: the token endpoint's answer to wrong client credentials.
    pub fn forbidden(message: impl Into<String>) -> Self {
        problem(
            403,
            "https://reference.airbyte.com/reference/errors#forbidden",
            "forbidden",
            "The request is forbidden.",
            json!({ "message": message.into() }),
        )
    }

    /// 404 `resource-not-found`, naming the kind of resource and the id asked for.
    pub fn not_found(resource_type: &str, resource_id: impl Into<String>) -> Self {
        problem(
            404,
            "https://reference.airbyte.com/reference/errors#resource-not-found",
            "resource-not-found",
            "The requested resource could not be found.",
            json!({ "resourceType": resource_type, "resourceId": resource_id.into() }),
        )
    }

    /// 409 `error:connection/locked`: a PATCH on a connection whose status is `locked`.
    pub fn connection_locked(connection_id: uuid::Uuid) -> Self {
        problem(
            409,
            "error:connection/locked",
            "Connection is locked",
            "The connection is locked and cannot be modified.",
            json!({
                "message": format!(
                    "Connection {connection_id} is locked (status `locked`) and cannot be updated."
                )
            }),
        )
    }

    /// 409 `try-again-later` (`TryAgainLaterConflictProblem`): what a sync start answers when
    /// the connection already runs a job.
    pub fn try_again_later(message: impl Into<String>) -> Self {
        problem(
            409,
            "https://reference.airbyte.com/reference/errors#try-again-later",
            "try-again-later",
            "Please try again later.",
            json!({ "message": message.into() }),
        )
    }

    /// 409 `state-conflict` (`StateConflictProblem`): a sync of a connection that is not
    /// active, a cancel of a job that is not running.
    pub fn state_conflict(message: impl Into<String>) -> Self {
        problem(
            409,
            "https://reference.airbyte.com/reference/errors#409-state-conflict",
            "state-conflict",
            "State conflict",
            json!({ "message": message.into() }),
        )
    }

    /// 422 `unprocessable-entity`: e.g. a refresh job through the public API.
    pub fn unprocessable_entity(message: impl Into<String>) -> Self {
        problem(
            422,
            "https://reference.airbyte.com/reference/errors#unprocessable-entity",
            "unprocessable-entity",
            "The body of the request was not understood",
            json!({ "message": message.into() }),
        )
    }

    /// 400 `error:connection-conflicting-destination-stream`
    /// (`ConnectionConflictingStreamProblem`): streams that would write to the tables of another
    /// active connection to the same destination. `data` is Airbyte's
    /// `{streams: [{connectionIds, streamName, streamNamespace}]}` (the UI reads
    /// `data.streams[0].streamName`); the title and detail are our guess.
    pub fn conflicting_destination_streams(streams: Vec<serde_json::Value>) -> Self {
        problem(
            400,
            "error:connection-conflicting-destination-stream",
            "Conflicting destination streams",
            "This connection has conflicting streams with an existing connection to the same \
             destination: they would write to the same destination tables.",
            json!({ "streams": serde_json::Value::Array(streams) }),
        )
    }

    /// 409 `error:tag-already-exists`: another tag of the workspace has the name. Airbyte's
    /// problem carries no `data`.
    pub fn tag_already_exists() -> Self {
        bare(
            409,
            "error:tag-already-exists",
            "Tag already exists",
            "A tag with this name already exists in this workspace.",
        )
    }

    /// 400 `error:tag-name-too-long`: more than 30 characters.
    pub fn tag_name_too_long() -> Self {
        bare(
            400,
            "error:tag-name-too-long",
            "Tag name too long",
            "The tag name can be maximum 30 characters.",
        )
    }

    /// 400 `error:tag-invalid-hex-color`: not six hex digits.
    pub fn tag_invalid_hex_color() -> Self {
        bare(
            400,
            "error:tag-invalid-hex-color",
            "Invalid hex color",
            "The hex color provided is invalid.",
        )
    }

    /// 400 `error:tag-limit-for-workspace-reached`: the workspace has 100 tags already.
    pub fn tag_limit_reached() -> Self {
        bare(
            400,
            "error:tag-limit-for-workspace-reached",
            "Tag limit for workspace reached",
            "The workspace has reached the maximum number of tags.",
        )
    }

    /// 400 `error:mapper-validation/secret-not-found`: a mapper secret sent back masked.
    pub fn mapper_secret_not_found(message: impl Into<String>) -> Self {
        problem(
            400,
            "error:mapper-validation/secret-not-found",
            "Mapper secret not found",
            "A secret referenced in the mapper configuration could not be found.",
            json!({ "message": message.into() }),
        )
    }

    /// 405 for a known path asked with a method it does not serve.
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        problem(
            405,
            "https://reference.airbyte.com/reference/errors#method-not-allowed",
            "method-not-allowed",
            "The request method is not supported for this resource.",
            json!({ "message": format!("{method} is not allowed on {path}") }),
        )
    }

    /// 500 `unexpected-problem`: what Airbyte answers when something failed on its side. The
    /// type and texts are the catalogue's (`UnexpectedProblemResponse`: no `#` fragment).
    pub fn unexpected_problem(message: impl Into<String>) -> Self {
        problem(
            500,
            "https://reference.airbyte.com/reference/errors",
            "unexpected-problem",
            UNEXPECTED_DETAIL,
            json!({ "message": message.into() }),
        )
    }

    /// 500 `unexpected-problem` without `data`: what the public API's create answers for any
    /// failure inside Airbyte's connection handler (`handleCreateConnectionError` throws a bare
    /// `UnexpectedProblem()`), such as a source and destination in different workspaces.
    pub fn unexpected_problem_bare() -> Self {
        bare(
            500,
            "https://reference.airbyte.com/reference/errors",
            "unexpected-problem",
            UNEXPECTED_DETAIL,
        )
    }

    /// 503 `service-unavailable`: the server cannot take the request right now.
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        problem(
            503,
            "https://reference.airbyte.com/reference/errors",
            "service-unavailable",
            "The server is currently unable to handle the request.",
            json!({ "message": message.into() }),
        )
    }

    /// 415 for a body sent with a content type other than JSON. Micronaut refuses it before
    /// the controller runs; the body's shape and texts are our guess (the message is
    /// Micronaut's wording).
    pub fn unsupported_media_type(content_type: &str) -> Self {
        problem(
            415,
            "https://reference.airbyte.com/reference/errors#unsupported-media-type",
            "unsupported-media-type",
            "The request body's content type is not supported.",
            json!({
                "message": format!(
                    "Content Type [{content_type}] not allowed. Allowed types: [application/json]"
                )
            }),
        )
    }

    /// The problem body for a 4xx that the HTTP framework answered on its own (a path that is
    /// not UTF-8, a body over the size limit, …), so that every client error has Airbyte's shape.
    pub fn client_error(status: StatusCode, message: impl Into<String>) -> Self {
        let message = message.into();
        match status.as_u16() {
            413 => problem(
                413,
                "https://reference.airbyte.com/reference/errors#payload-too-large",
                "payload-too-large",
                "The request body is larger than the server accepts.",
                json!({ "message": message }),
            ),
            400 => Self::bad_request(message),
            code => problem(
                code,
                "https://reference.airbyte.com/reference/errors#bad-request",
                "bad-request",
                "The request could not be understood by the server due to malformed syntax.",
                json!({ "message": message }),
            ),
        }
    }

    /// The status this error is sent with.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), Json(*self.0)).into_response()
    }
}
