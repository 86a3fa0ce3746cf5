//! `/datasets/{owner}/{name}/flows/...`, `/system/flows/...`, `/flows/runs/...` and the
//! executors' `/tasks/...`. Handlers translate HTTP to `FlowsApi` calls.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use weir_flows::FlowRun;
use weir_flows::model::FlowConfig;
use weir_flows::service::FlowView;
use weir_function_runtime::ApiError;
use weir_function_runtime::task::{TaskKind, TaskOutcome};
use weir_metastore::Role;

use super::{AppState, caller};
use crate::node::ControlPlane;
use crate::services::flows::{FlowsApi, RunPage, parse_flow_type};

pub fn routes() -> Router<Arc<ControlPlane>> {
    Router::new()
        .route("/datasets/{owner}/{name}/flows", get(list_flows))
        .route("/datasets/{owner}/{name}/flows/runs", get(dataset_runs))
        .route(
            "/datasets/{owner}/{name}/flows/{flow_type}",
            get(get_flow).put(put_flow).delete(delete_flow),
        )
        .route(
            "/datasets/{owner}/{name}/flows/{flow_type}/{action}",
            post(flow_action),
        )
        .route("/system/flows/runs", get(system_runs))
        .route(
            "/system/flows/{flow_type}",
            get(get_system_flow).put(put_system_flow),
        )
        .route("/system/flows/{flow_type}/{action}", post(system_action))
        .route("/flows", post(apply_manifest))
        .route("/flows/runs/{run_id}", get(get_run))
        .route("/flows/runs/{run_id}/cancel", post(cancel_run))
        .route("/tasks/lease", post(lease_task))
        .route("/tasks/depth", get(task_depth))
        .route("/tasks/{task_id}/heartbeat", post(heartbeat_task))
        .route("/tasks/{task_id}/finish", post(finish_task))
}

fn parse_config(body: &[u8]) -> Result<FlowConfig, ApiError> {
    Ok(crate::services::flows::parse_config(body)?)
}

/// Every flow of a dataset: configured ones and the defaults (reader role).
#[utoipa::path(get, path = "/datasets/{owner}/{name}/flows", tag = "flows", params(("owner" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "the flows"), (status = 404, description = "no such dataset, or not readable")))]
async fn list_flows(
    State(control_plane): AppState,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Vec<FlowView>>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    Ok(Json(
        control_plane
            .flows_api()
            .list(&caller, &owner, &name)
            .await?,
    ))
}

/// One flow of a dataset (reader role).
#[utoipa::path(get, path = "/datasets/{owner}/{name}/flows/{flow_type}", tag = "flows", params(("owner" = String, Path), ("name" = String, Path), ("flow_type" = String, Path, description = "transform, reset, gc, ingest or compaction")),
    responses((status = 200, description = "the flow: config, paused, stopReason, consecutiveFailures")))]
async fn get_flow(
    State(control_plane): AppState,
    Path((owner, name, flow_type)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Json<FlowView>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    let api = control_plane.flows_api();
    let (key, target) = api
        .resolve(&caller, Some((&owner, &name)), &flow_type, Role::Reader)
        .await?;
    Ok(Json(api.get(&key, target).await?))
}

/// Configures a flow (maintainer role); see docs/protocols/flows.md for the config.
#[utoipa::path(put, path = "/datasets/{owner}/{name}/flows/{flow_type}", tag = "flows", params(("owner" = String, Path), ("name" = String, Path), ("flow_type" = String, Path, description = "transform, reset, gc, ingest or compaction")),
    request_body(content = String, description = "flow config (JSON): trigger, retry, stop", content_type = "application/json"),
    responses((status = 200, description = "the stored flow"), (status = 400, description = "a field out of range, named")))]
async fn put_flow(
    State(control_plane): AppState,
    Path((owner, name, flow_type)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<FlowView>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    let api = control_plane.flows_api();
    let (key, target) = api
        .resolve(&caller, Some((&owner, &name)), &flow_type, Role::Maintainer)
        .await?;
    let config = parse_config(&body)?;
    Ok(Json(api.configure(&key, target, config).await?))
}

/// Forgets a flow's config: it is back to its default, or none (maintainer role).
#[utoipa::path(delete, path = "/datasets/{owner}/{name}/flows/{flow_type}", tag = "flows", params(("owner" = String, Path), ("name" = String, Path), ("flow_type" = String, Path, description = "transform, reset, gc, ingest or compaction")),
    responses((status = 204, description = "forgotten")))]
async fn delete_flow(
    State(control_plane): AppState,
    Path((owner, name, flow_type)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    let api = control_plane.flows_api();
    let (key, _) = api
        .resolve(&caller, Some((&owner, &name)), &flow_type, Role::Maintainer)
        .await?;
    api.reset_config(&key).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn act(
    api: &FlowsApi,
    caller: &weir_function_runtime::Caller,
    dataset: Option<(&str, &str)>,
    flow_type: &str,
    action: &str,
) -> Result<Response, ApiError> {
    let role = match action {
        "trigger" => Role::Editor,
        "pause" | "resume" => Role::Maintainer,
        other => {
            return Err(ApiError::not_found(format!(
                "unknown flow action `{other}`: expected trigger, pause or resume"
            )));
        }
    };
    let (key, target) = api.resolve(caller, dataset, flow_type, role).await?;
    let who = caller.account_id.clone().unwrap_or_default();
    Ok(match action {
        "trigger" => (
            StatusCode::ACCEPTED,
            Json(
                api.flows
                    .trigger_manual(&key, target, &who)
                    .await
                    .map_err(crate::ServiceError::from)?,
            ),
        )
            .into_response(),
        "pause" => {
            api.flows
                .pause(&key, target)
                .await
                .map_err(crate::ServiceError::from)?;
            Json(api.get(&key, target).await?).into_response()
        }
        _ => {
            api.flows
                .resume(&key, target)
                .await
                .map_err(crate::ServiceError::from)?;
            Json(api.get(&key, target).await?).into_response()
        }
    })
}

/// `trigger` (editor role; 202 with the run), `pause` or `resume` (maintainer role).
#[utoipa::path(post, path = "/datasets/{owner}/{name}/flows/{flow_type}/{action}", tag = "flows", params(("owner" = String, Path), ("name" = String, Path), ("flow_type" = String, Path, description = "transform, reset, gc, ingest or compaction"), ("action" = String, Path, description = "trigger, pause or resume")),
    responses((status = 202, description = "triggered: the run"), (status = 200, description = "paused or resumed: the flow")))]
async fn flow_action(
    State(control_plane): AppState,
    Path((owner, name, flow_type, action)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    act(
        &control_plane.flows_api(),
        &caller,
        Some((&owner, &name)),
        &flow_type,
        &action,
    )
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RunsQuery {
    flow_type: Option<String>,
    before: Option<i64>,
    limit: Option<i64>,
}

/// Runs of a dataset's flows, newest first (reader role).
#[utoipa::path(get, path = "/datasets/{owner}/{name}/flows/runs", tag = "flows", params(("owner" = String, Path), ("name" = String, Path), ("flowType" = Option<String>, Query), ("before" = Option<i64>, Query), ("limit" = Option<i64>, Query, description = "1 to 100, default 20")),
    responses((status = 200, description = "{runs, nextBefore}")))]
async fn dataset_runs(
    State(control_plane): AppState,
    Path((owner, name)): Path<(String, String)>,
    Query(query): Query<RunsQuery>,
    headers: HeaderMap,
) -> Result<Json<RunPage>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    let entry = control_plane
        .datasets
        .authorize(&caller, &owner, &name, Role::Reader)
        .await?;
    let flow_type = query
        .flow_type
        .as_deref()
        .map(parse_flow_type)
        .transpose()?;
    Ok(Json(
        control_plane
            .flows_api()
            .runs(&entry.id, flow_type, query.before, query.limit)
            .await?,
    ))
}

/// Runs of the system flows (administrators).
#[utoipa::path(get, path = "/system/flows/runs", tag = "flows",
    params(("flowType" = Option<String>, Query), ("before" = Option<i64>, Query), ("limit" = Option<i64>, Query)),
    responses((status = 200, description = "{runs, nextBefore}")))]
async fn system_runs(
    State(control_plane): AppState,
    Query(query): Query<RunsQuery>,
    headers: HeaderMap,
) -> Result<Json<RunPage>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    let api = control_plane.flows_api();
    let flow_type = query.flow_type.as_deref().unwrap_or("gc");
    let (key, _) = api.resolve(&caller, None, flow_type, Role::Reader).await?;
    Ok(Json(
        api.runs(
            &key.dataset_id,
            Some(key.flow_type),
            query.before,
            query.limit,
        )
        .await?,
    ))
}

/// A system flow (administrators): `gc`.
#[utoipa::path(get, path = "/system/flows/{flow_type}", tag = "flows", params(("flow_type" = String, Path)),
    responses((status = 200, description = "the flow")))]
async fn get_system_flow(
    State(control_plane): AppState,
    Path(flow_type): Path<String>,
    headers: HeaderMap,
) -> Result<Json<FlowView>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    let api = control_plane.flows_api();
    let (key, target) = api.resolve(&caller, None, &flow_type, Role::Reader).await?;
    Ok(Json(api.get(&key, target).await?))
}

/// Configures a system flow (administrators).
#[utoipa::path(put, path = "/system/flows/{flow_type}", tag = "flows", params(("flow_type" = String, Path)),
    request_body(content = String, description = "flow config (JSON)", content_type = "application/json"),
    responses((status = 200, description = "the stored flow")))]
async fn put_system_flow(
    State(control_plane): AppState,
    Path(flow_type): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<FlowView>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    let api = control_plane.flows_api();
    let (key, target) = api
        .resolve(&caller, None, &flow_type, Role::Maintainer)
        .await?;
    let config = parse_config(&body)?;
    Ok(Json(api.configure(&key, target, config).await?))
}

/// Triggers, pauses or resumes a system flow (administrators).
#[utoipa::path(post, path = "/system/flows/{flow_type}/{action}", tag = "flows",
    params(("flow_type" = String, Path), ("action" = String, Path)),
    responses((status = 202, description = "triggered: the run"), (status = 200, description = "the flow")))]
async fn system_action(
    State(control_plane): AppState,
    Path((flow_type, action)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    act(
        &control_plane.flows_api(),
        &caller,
        None,
        &flow_type,
        &action,
    )
    .await
}

/// One run (reader role on its dataset).
#[utoipa::path(get, path = "/flows/runs/{run_id}", tag = "flows", params(("run_id" = i64, Path)),
    responses((status = 200, description = "the run"), (status = 404, description = "no such run, or not readable")))]
async fn get_run(
    State(control_plane): AppState,
    Path(run_id): Path<i64>,
    headers: HeaderMap,
) -> Result<Json<FlowRun>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    Ok(Json(
        control_plane
            .flows_api()
            .run(&caller, run_id, Role::Reader)
            .await?,
    ))
}

/// Cancels a run not finished (maintainer role on its dataset).
#[utoipa::path(post, path = "/flows/runs/{run_id}/cancel", tag = "flows", params(("run_id" = i64, Path)),
    responses((status = 200, description = "the aborted run"), (status = 409, description = "already finished")))]
async fn cancel_run(
    State(control_plane): AppState,
    Path(run_id): Path<i64>,
    headers: HeaderMap,
) -> Result<Json<FlowRun>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    Ok(Json(
        control_plane.flows_api().cancel(&caller, run_id).await?,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LeaseRequest {
    kinds: Vec<TaskKind>,
    executor: String,
    lease_millis: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HeartbeatRequest {
    executor: String,
    lease_millis: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FinishRequest {
    executor: String,
    outcome: TaskOutcome,
}

fn lease_duration(millis: u64) -> Result<Duration, ApiError> {
    if !(1000..=3_600_000).contains(&millis) {
        return Err(ApiError::invalid_input(
            "invalid `leaseMillis`: must be between 1000 and 3600000",
        ));
    }
    Ok(Duration::from_millis(millis))
}

fn check_executor(executor: &str) -> Result<(), ApiError> {
    if executor.is_empty() || executor.len() > 200 {
        return Err(ApiError::invalid_input(
            "invalid `executor`: must be 1 to 200 characters",
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DepthQuery {
    /// Comma-separated task kinds; every kind when absent.
    kinds: Option<String>,
}

/// Queued and leased tasks of some kinds (executors: what the engine provisioner scales on).
#[utoipa::path(get, path = "/tasks/depth", tag = "tasks",
    params(("kinds" = Option<String>, Query, description = "comma-separated task kinds, e.g. transform,reset; all when absent")),
    responses((status = 200, description = "{queued, leased}"), (status = 400, description = "an unknown kind"), (status = 403, description = "not an administrator")))]
async fn task_depth(
    State(control_plane): AppState,
    headers: HeaderMap,
    Query(query): Query<DepthQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    FlowsApi::require_executor(&caller)?;
    let mut kinds = Vec::new();
    for name in query.kinds.as_deref().unwrap_or("").split(',') {
        let name = name.trim();
        if name.is_empty() {
            continue;
        }
        let kind = TaskKind::parse(name).ok_or_else(|| {
            ApiError::invalid_input(format!(
                "invalid `kinds`: unknown task kind `{}`",
                name.chars().take(40).collect::<String>()
            ))
        })?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    let (queued, leased) = control_plane
        .flows
        .queue_depth(&kinds)
        .await
        .map_err(crate::ServiceError::from)?;
    Ok(Json(
        serde_json::json!({"queued": queued, "leased": leased}),
    ))
}

/// Leases the next task of `kinds` (204 when none is queued).
#[utoipa::path(post, path = "/tasks/lease", tag = "tasks",
    request_body(content = String, description = "{kinds, executor, leaseMillis}", content_type = "application/json"),
    responses((status = 200, description = "a leased task"), (status = 204, description = "none queued"), (status = 403, description = "not an administrator")))]
async fn lease_task(
    State(control_plane): AppState,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    FlowsApi::require_executor(&caller)?;
    let request: LeaseRequest = super::accounts::json_body(&body)?;
    check_executor(&request.executor)?;
    let lease = lease_duration(request.lease_millis)?;
    let task = control_plane
        .flows
        .lease(&request.kinds, &request.executor, lease)
        .await
        .map_err(crate::ServiceError::from)?;
    Ok(match task {
        Some(task) => Json(task).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// Extends a task's lease (administrators).
#[utoipa::path(post, path = "/tasks/{task_id}/heartbeat", tag = "tasks", params(("task_id" = i64, Path)),
    request_body(content = String, description = "{executor, leaseMillis}", content_type = "application/json"),
    responses((status = 200, description = "{leaseUntilMillis}"), (status = 409, description = "the lease is lost")))]
async fn heartbeat_task(
    State(control_plane): AppState,
    Path(task_id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    FlowsApi::require_executor(&caller)?;
    let request: HeartbeatRequest = super::accounts::json_body(&body)?;
    check_executor(&request.executor)?;
    let until = control_plane
        .flows
        .heartbeat(
            task_id,
            &request.executor,
            lease_duration(request.lease_millis)?,
        )
        .await
        .map_err(crate::ServiceError::from)?;
    Ok(Json(serde_json::json!({ "leaseUntilMillis": until })))
}

/// Reports a task's outcome (administrators).
#[utoipa::path(post, path = "/tasks/{task_id}/finish", tag = "tasks", params(("task_id" = i64, Path)),
    request_body(content = String, description = "{executor, outcome}", content_type = "application/json"),
    responses((status = 200, description = "the run"), (status = 409, description = "the lease is lost")))]
async fn finish_task(
    State(control_plane): AppState,
    Path(task_id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<FlowRun>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    FlowsApi::require_executor(&caller)?;
    let request: FinishRequest = super::accounts::json_body(&body)?;
    check_executor(&request.executor)?;
    Ok(Json(
        control_plane
            .flows
            .finish(task_id, &request.executor, request.outcome)
            .await
            .map_err(crate::ServiceError::from)?,
    ))
}

/// The caller's account name, which a manifest's bare dataset name belongs to.
fn caller_account(caller: &weir_function_runtime::Caller) -> Result<String, ApiError> {
    caller.account_name.clone().ok_or_else(|| {
        ApiError::new(
            weir_function_runtime::ErrorKind::Unauthenticated,
            "applying a flow manifest needs a token",
        )
    })
}

/// Applies an ODF `Flow` manifest (YAML or JSON): every flow it maps to is stored, or none.
#[utoipa::path(post, path = "/flows", tag = "flows",
    request_body(content = String, description = "an ODF Flow manifest", content_type = "application/yaml"),
    responses((status = 200, description = "the flows stored"), (status = 400, description = "what cannot be honoured, named")))]
async fn apply_manifest(
    State(control_plane): AppState,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Vec<FlowView>>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::invalid_input("the flow manifest is not UTF-8"))?;
    let value: serde_json::Value = serde_yaml::from_str(text)
        .map_err(|error| ApiError::invalid_input(format!("invalid flow manifest: {error}")))?;
    let manifest: weir_flows::manifest::FlowManifest = serde_path_to_error::deserialize(value)
        .map_err(|error| {
            ApiError::invalid_input(format!(
                "invalid flow manifest field `{}`: {}",
                error.path(),
                error.inner()
            ))
        })?;
    let planned = weir_flows::manifest::plan(&manifest)
        .map_err(|error| ApiError::invalid_input(format!("invalid flow manifest {error}")))?;
    let api = control_plane.flows_api();
    let mut views = Vec::new();
    for flow in planned {
        let (key, target) = match &flow.dataset {
            None => {
                crate::services::flows::FlowsApi::require_system(&caller)?;
                (flow.key.clone(), weir_flows::Target::System)
            }
            Some(dataset) => {
                let (owner, name) = match dataset.split_once('/') {
                    Some((owner, name)) => (owner.to_string(), name.to_string()),
                    None => (caller_account(&caller)?, dataset.clone()),
                };
                api.resolve(
                    &caller,
                    Some((&owner, &name)),
                    flow.key.flow_type.as_str(),
                    Role::Maintainer,
                )
                .await?
            }
        };
        views.push(api.configure(&key, target, flow.config).await?);
    }
    Ok(Json(views))
}
