//! The HTTP surface: the router, its layers, and the handlers that call the store.
//!
//! Every API route is served under both `/v1` (Cloud) and `/api/public/v1` (self-managed).
//! Handlers read their input through [`super::request`] and answer wire types or an
//! [`ApiError`]. The layers, outermost first: [`stats::observe`] (accounting and latency, with
//! its own state), Airbyte-shaped bodies for the framework's own 4xx answers, then per matched
//! route [`stats::tag_route`], [`faults::inject`] (with its own state) and, on secured routes,
//! the auth check and rate limit.

use super::auth::Auth;
use super::churn;
use super::faults::{self, Faults};
use super::jobs::{JobFilter, JobOrder, Now};
use super::problem::ApiError;
use super::request::{
    ListParams, api_base, bool_param, enum_param, int_param, page_links, parse_json, path_uuid,
    query_pairs, query_uuid, single, uuid_list,
};
use super::stats::{self, Stats};
use super::store::{Store, rendered};
use crate::wire::{
    ConnectionCreateRequest, ConnectionPatchRequest, ConnectionResponse, DestinationResponse,
    JobCreateRequest, JobResponse, JobStatus, JobType, Page, SourceResponse, StreamProperties, Tag,
    TagCreateRequest, TagPatchRequest, TagsResponse, TokenResponse, WorkspaceResponse,
};
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use uuid::Uuid;

/// Everything the handlers share.
#[derive(Debug)]
pub struct App {
    pub store: RwLock<Store>,
    pub auth: Arc<Auth>,
    /// Also the state of the accounting layer.
    pub stats: Arc<Stats>,
    /// Also the state of the fault layer.
    pub faults: Arc<Faults>,
    /// Where the sandbox listens; names the host in paging links when a request has no `Host`.
    pub addr: SocketAddr,
}

impl App {
    fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.store
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The whole server: both API bases, the stats route, and the outer accounting layer.
pub fn router(app: Arc<App>) -> Router {
    let open = Router::new()
        .route("/health", get(health))
        .route("/applications/token", post(token));
    let secured = Router::new()
        .route(
            "/connections",
            get(list_connections).post(create_connection),
        )
        .route(
            "/connections/{connectionId}",
            get(get_connection)
                .patch(patch_connection)
                .delete(delete_connection),
        )
        .route("/sources", get(list_sources))
        .route("/sources/{sourceId}", get(get_source))
        .route("/destinations", get(list_destinations))
        .route("/destinations/{destinationId}", get(get_destination))
        .route("/streams", get(streams))
        .route("/workspaces", get(list_workspaces))
        .route("/workspaces/{workspaceId}", get(get_workspace))
        .route("/tags", get(list_tags).post(create_tag))
        .route(
            "/tags/{tagId}",
            get(get_tag).patch(patch_tag).delete(delete_tag),
        )
        .route("/jobs", get(list_jobs).post(create_job))
        .route("/jobs/{jobId}", get(get_job).delete(cancel_job))
        .route_layer(from_fn(require_json))
        .route_layer(from_fn_with_state(app.clone(), require_auth));
    let api = open
        .merge(secured)
        .route_layer(from_fn_with_state(app.faults.clone(), faults::inject))
        .route_layer(from_fn_with_state(app.stats.clone(), stats::tag_route))
        .method_not_allowed_fallback(method_not_allowed);
    Router::new()
        .nest("/v1", api.clone())
        .nest("/api/public/v1", api)
        .route("/_sandbox/stats", get(sandbox_stats).delete(reset_stats))
        .fallback(route_not_found)
        .layer(from_fn(problem_bodies))
        .layer(from_fn_with_state(app.stats.clone(), stats::observe))
        .with_state(app)
}

/// Client errors that axum answers by itself (a path id that is not UTF-8, a body over the size
/// limit, a bad query string) come as plain text; Airbyte answers every one with its problem
/// body. 5xx answers are left alone: the fault knobs' gateway 504 is plain text on purpose.
async fn problem_bodies(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !status.is_client_error() || is_json {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    ApiError::client_error(status, text).into_response()
}

/// Auth, then the per-token rate limit: a request with no valid token is refused before it
/// can spend anyone's budget.
async fn require_auth(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let refusal = match app.auth.check(request.headers()) {
        Ok(token) => app.faults.rate_limit(token),
        Err(e) => Some(e.into_response()),
    };
    match refusal {
        Some(response) => response,
        None => next.run(request).await,
    }
}

/// A body sent as anything but JSON (`Content-Type: text/plain`, a form) is refused with 415,
/// as Micronaut refuses it before Airbyte's controller runs. A body without a content type is
/// read as JSON.
async fn require_json(request: Request, next: Next) -> Response {
    let writes = matches!(
        *request.method(),
        Method::POST | Method::PATCH | Method::PUT
    );
    let content_type = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if let (true, Some(content_type)) = (writes, content_type) {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        if !media.eq_ignore_ascii_case("application/json") {
            return ApiError::unsupported_media_type(media).into_response();
        }
    }
    next.run(request).await
}

async fn route_not_found(method: Method, uri: Uri) -> ApiError {
    let mut error = ApiError::not_found("route", uri.path());
    error.0.data = Some(serde_json::json!({
        "resourceType": "route",
        "resourceId": uri.path(),
        "message": format!("No route for {method} {}", uri.path()),
    }));
    error
}

async fn method_not_allowed(method: Method, OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::method_not_allowed(method.as_str(), uri.path())
}

async fn sandbox_stats(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    let live = app.read().live_connections();
    let mut stats = app.stats.snapshot(live);
    stats["faults"] = app.faults.snapshot();
    Json(stats)
}

/// `DELETE /_sandbox/stats`: the request accounting starts afresh (not the fault counters).
async fn reset_stats(State(app): State<Arc<App>>) -> StatusCode {
    app.stats.reset();
    StatusCode::NO_CONTENT
}

/// `GET /health`: 200 with an empty body, no auth.
async fn health() -> StatusCode {
    StatusCode::OK
}

async fn token(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<TokenResponse>, ApiError> {
    app.auth.issue(&headers, &body).map(Json)
}

async fn list_connections(
    State(app): State<Arc<App>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<ConnectionResponse>>, ApiError> {
    let params = ListParams::parse(query.as_deref())?;
    known_workspaces(&app.read(), &params.workspace_ids)?;
    if let Some(churn) = app.faults.roll_churn() {
        let done = churn::apply(
            &mut app.write(),
            churn,
            &params.workspace_ids,
            params.offset,
            now(),
        );
        if done.is_some() {
            app.faults.churned();
        }
    }
    let data = {
        let store = app.read();
        store.list_connections(
            &params.workspace_ids,
            &params.tag_ids,
            params.include_deleted,
            params.offset,
            params.limit,
        )
    };
    Ok(Json(params.page(
        app.addr,
        &headers,
        &uri,
        "connections",
        data,
    )))
}

/// `POST /connections`. With `--create-delay`, the write happens at the end of the delay (the real
/// server discovers the source's schema first), on its own task so that it completes even if the
/// client stops waiting, as it would on a real server.
async fn create_connection(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Result<Json<ConnectionResponse>, ApiError> {
    let request: ConnectionCreateRequest = parse_json(&body)?;
    let delay = app.faults.create_delay;
    if delay.is_zero() {
        return create_now(&app, request).map(Json);
    }
    app.faults.delayed();
    tokio::spawn(async move {
        super::delay::sleep(delay).await;
        create_now(&app, request)
    })
    .await
    .map_err(|e| ApiError::unexpected_problem(format!("The create did not finish: {e}")))?
    .map(Json)
}

fn create_now(app: &App, request: ConnectionCreateRequest) -> Result<ConnectionResponse, ApiError> {
    let connection =
        app.read()
            .prepare_create(request, Uuid::new_v4(), now(), &mut Uuid::new_v4)?;
    let response = rendered(&connection);
    app.write().insert_connection(connection);
    Ok(response)
}

/// Seconds since the epoch: a new connection's `createdAt`.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

async fn get_connection(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<ConnectionResponse>, ApiError> {
    let id = path_uuid("connectionId", &id)?;
    app.read()
        .connection(id)
        .map(|c| Json(rendered(c)))
        .ok_or_else(|| ApiError::not_found("connection", id.to_string()))
}

async fn patch_connection(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ConnectionResponse>, ApiError> {
    let id = path_uuid("connectionId", &id)?;
    let request: ConnectionPatchRequest = parse_json(&body)?;
    app.write().patch(id, request, &mut Uuid::new_v4).map(Json)
}

async fn delete_connection(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_uuid("connectionId", &id)?;
    app.write().delete(id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_source(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<SourceResponse>, ApiError> {
    let id = path_uuid("sourceId", &id)?;
    app.read()
        .source(id)
        .map(|s| Json(s.response.clone()))
        .ok_or_else(|| ApiError::not_found("source", id.to_string()))
}

async fn list_sources(
    State(app): State<Arc<App>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<SourceResponse>>, ApiError> {
    let params = ListParams::parse(query.as_deref())?;
    let data = {
        let store = app.read();
        known_workspaces(&store, &params.workspace_ids)?;
        store.list_sources(&params.workspace_ids, params.offset, params.limit)
    };
    Ok(Json(params.page(app.addr, &headers, &uri, "sources", data)))
}

async fn get_destination(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<DestinationResponse>, ApiError> {
    let id = path_uuid("destinationId", &id)?;
    app.read()
        .destination(id)
        .map(|d| Json(d.response.clone()))
        .ok_or_else(|| ApiError::not_found("destination", id.to_string()))
}

async fn list_destinations(
    State(app): State<Arc<App>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<DestinationResponse>>, ApiError> {
    let params = ListParams::parse(query.as_deref())?;
    let data = {
        let store = app.read();
        known_workspaces(&store, &params.workspace_ids)?;
        store.list_destinations(&params.workspace_ids, params.offset, params.limit)
    };
    Ok(Json(params.page(
        app.addr,
        &headers,
        &uri,
        "destinations",
        data,
    )))
}

async fn get_workspace(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<WorkspaceResponse>, ApiError> {
    let id = path_uuid("workspaceId", &id)?;
    app.read()
        .workspace(id)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found("workspace", id.to_string()))
}

async fn list_workspaces(
    State(app): State<Arc<App>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<WorkspaceResponse>>, ApiError> {
    let params = ListParams::parse(query.as_deref())?;
    let data = {
        let store = app.read();
        known_workspaces(&store, &params.workspace_ids)?;
        store.list_workspaces(&params.workspace_ids, params.offset, params.limit)
    };
    Ok(Json(params.page(
        app.addr,
        &headers,
        &uri,
        "workspaces",
        data,
    )))
}

async fn list_tags(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
) -> Result<Json<TagsResponse>, ApiError> {
    let pairs = query_pairs(query.as_deref());
    let workspaces = uuid_list(&pairs, "workspaceIds")?;
    let store = app.read();
    known_workspaces(&store, &workspaces)?;
    Ok(Json(TagsResponse {
        data: store.list_tags(&workspaces),
    }))
}

/// `POST /tags`: the workspace must exist, then the tag rules of [`super::tags`] apply.
async fn create_tag(State(app): State<Arc<App>>, body: Bytes) -> Result<Json<Tag>, ApiError> {
    let request: TagCreateRequest = parse_json(&body)?;
    app.write().create_tag(request, Uuid::new_v4()).map(Json)
}

async fn get_tag(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<Tag>, ApiError> {
    let id = path_uuid("tagId", &id)?;
    app.read()
        .tag(id)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found("tag", id.to_string()))
}

async fn patch_tag(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Tag>, ApiError> {
    let id = path_uuid("tagId", &id)?;
    let request: TagPatchRequest = parse_json(&body)?;
    app.write().update_tag(id, request).map(Json)
}

async fn delete_tag(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_uuid("tagId", &id)?;
    app.write().delete_tag(id)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /streams?sourceId=…[&destinationId=…][&ignoreCache=…]`: a bare array; `syncModes` only
/// with a destination.
async fn streams(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<StreamProperties>>, ApiError> {
    let pairs = query_pairs(query.as_deref());
    let source_id = match single(&pairs, "sourceId") {
        Some(v) => query_uuid("sourceId", v)?,
        None => {
            return Err(ApiError::bad_request(
                "Required QueryValue [sourceId] not specified",
            ));
        }
    };
    let destination_id = single(&pairs, "destinationId")
        .map(|v| query_uuid("destinationId", v))
        .transpose()?;
    bool_param(&pairs, "ignoreCache", false)?;
    let store = app.read();
    let source = store
        .source(source_id)
        .ok_or_else(|| ApiError::not_found("source", source_id.to_string()))?;
    let destination = destination_id
        .map(|id| {
            store
                .destination(id)
                .ok_or_else(|| ApiError::not_found("destination", id.to_string()))
        })
        .transpose()?;
    let modes = destination.map(|d| d.sync_modes.as_slice());
    Ok(Json(
        source
            .catalog
            .streams()
            .iter()
            .map(|s| s.properties(modes))
            .collect(),
    ))
}

fn known_workspaces(store: &Store, ids: &[Uuid]) -> Result<(), ApiError> {
    match store.unknown_workspace(ids) {
        Some(id) => Err(ApiError::not_found("workspace", id.to_string())),
        None => Ok(()),
    }
}

/// `POST /jobs`: the rules are [`Store::start_job`]'s; the fault dice decide, once per job
/// started, whether it will fail (`--job-fail-rate`).
async fn create_job(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Result<Json<JobResponse>, ApiError> {
    let request: JobCreateRequest = parse_json(&body)?;
    let faults = app.faults.clone();
    app.write()
        .start_job(&request, Now::system(), || faults.roll_job_failure())
        .map(Json)
}

fn path_job_id(value: &str) -> Result<i64, ApiError> {
    value.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "Failed to convert argument [jobId] for value [{value}]: not an integer."
        ))
    })
}

async fn get_job(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<JobResponse>, ApiError> {
    let id = path_job_id(&id)?;
    app.read()
        .job(id, Now::system())
        .map(Json)
        .ok_or_else(|| ApiError::not_found("job", id.to_string()))
}

/// `DELETE /jobs/{jobId}`: cancels, and answers 200 with the cancelled job.
async fn cancel_job(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<JobResponse>, ApiError> {
    let id = path_job_id(&id)?;
    app.write().cancel_job(id, Now::system()).map(Json)
}

/// `GET /jobs`: by `connectionId` or `workspaceIds` (all when neither), `status`, `jobType`,
/// `orderBy` (`createdAt|ASC` by default, as Airbyte), `limit` and `offset`. The paging links
/// carry `jobType` and `connectionId` or `workspaceIds`, as Airbyte's `JobsResponseMapper` does.
async fn list_jobs(
    State(app): State<Arc<App>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<JobResponse>>, ApiError> {
    let pairs = query_pairs(query.as_deref());
    let limit = int_param(&pairs, "limit", 20, 1, 100)?;
    let offset = int_param(&pairs, "offset", 0, 0, i64::from(i32::MAX))?;
    let connection_id = single(&pairs, "connectionId")
        .map(|v| query_uuid("connectionId", v))
        .transpose()?;
    let filter = JobFilter {
        connection_id,
        workspace_ids: uuid_list(&pairs, "workspaceIds")?,
        status: enum_param::<JobStatus>(&pairs, "status")?,
        job_type: enum_param::<JobType>(&pairs, "jobType")?,
        order: single(&pairs, "orderBy")
            .map(JobOrder::parse)
            .transpose()?
            .unwrap_or_default(),
        offset: usize::try_from(offset).unwrap_or(0),
        limit: usize::try_from(limit).unwrap_or(20),
    };
    let data = {
        let store = app.read();
        if let Some(id) = connection_id {
            if store.connection(id).is_none() {
                return Err(ApiError::not_found("connection", id.to_string()));
            }
        }
        known_workspaces(&store, &filter.workspace_ids)?;
        store.list_jobs(&filter, Now::system())
    };
    let base = api_base(app.addr, &headers, &uri);
    let mut query = Vec::new();
    if let Some(t) = filter.job_type {
        query.push(format!("jobType={}&", t.as_str()));
    }
    if let Some(id) = connection_id {
        query.push(format!("connectionId={id}&"));
    } else if !filter.workspace_ids.is_empty() {
        let ids: Vec<String> = filter.workspace_ids.iter().map(Uuid::to_string).collect();
        query.push(format!("workspaceIds={}&", ids.join(",")));
    }
    let query = query.concat();
    let (next, previous) = page_links(filter.offset, filter.limit, data.is_empty(), |offset| {
        format!("{base}/jobs?{query}limit={}&offset={offset}", filter.limit)
    });
    Ok(Json(Page {
        previous: Some(previous),
        next: Some(next),
        data,
    }))
}
