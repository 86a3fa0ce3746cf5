//! REST API of the control plane, documented at `/openapi.json`. Handlers only translate HTTP
//! to service calls.

mod accounts;
mod datasets;
mod devices;
mod flows;
mod governance;
mod platform;
mod webhooks;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;
use weir_function_runtime::{ApiError, Caller};

use crate::indexer::IndexReport;
use crate::node::ControlPlane;

pub type AppState = State<Arc<ControlPlane>>;

pub async fn caller(control_plane: &ControlPlane, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let authorization = weir_function_runtime::authorization_header(headers)?;
    Ok(control_plane.accounts.authenticate(authorization).await?)
}

/// A JSON body, or 400 naming the field at fault (`invalid <what> field `a.b`: ...`).
pub(crate) fn body<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if matches!(path.as_str(), "." | "?" | "") {
            ApiError::invalid_input(format!("invalid {what}: {inner}"))
        } else {
            ApiError::invalid_input(format!("invalid {what} field `{path}`: {inner}"))
        }
    })
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Weir control plane", description = "Datasets, accounts, tokens, roles and lineage of a Weir node."),
    paths(
        accounts::login, accounts::logout, accounts::create_account, accounts::list_accounts, accounts::me,
        accounts::add_member, accounts::create_token, accounts::list_tokens, accounts::revoke_token,
        datasets::create_dataset, datasets::list_datasets, datasets::get_dataset,
        datasets::delete_dataset, datasets::rename_dataset, datasets::set_visibility,
        datasets::list_roles, datasets::set_role, datasets::remove_role, datasets::lineage,
        datasets::blocks, reindex, sweep, leader, platform::keys, platform::decision,
        platform::report_commit, flows::list_flows, flows::get_flow, flows::put_flow,
        flows::delete_flow, flows::flow_action, flows::dataset_runs, flows::system_runs,
        flows::get_system_flow, flows::put_system_flow, flows::system_action, flows::get_run,
        flows::cancel_run, flows::lease_task, flows::task_depth, flows::heartbeat_task, flows::finish_task,
        flows::apply_manifest, devices::list_applications, devices::create_application,
        devices::get_application, devices::delete_application, devices::list_versions,
        devices::create_version, devices::delete_version, devices::create_endpoint,
        devices::list_endpoints, devices::get_endpoint, devices::put_attributes,
        devices::delete_endpoint, devices::list_tokens, devices::issue_token,
        devices::revoke_token, devices::resolve, devices::report_usage, devices::usage,
        devices::get_quota, devices::put_quota, devices::delete_quota,
        governance::list_threads, governance::open_thread, governance::get_thread,
        governance::change_thread, governance::delete_thread, governance::add_comment,
        governance::change_comment, governance::delete_comment, governance::comment_history,
        governance::add_reaction, governance::remove_reaction, governance::get_settings,
        governance::put_settings, webhooks::create_dataset_webhook,
        webhooks::list_dataset_webhooks, webhooks::create_account_webhook,
        webhooks::list_account_webhooks, webhooks::get_webhook, webhooks::delete_webhook,
        webhooks::enable_webhook, webhooks::deliveries,
    ),
    components(schemas(
        crate::services::accounts::CreateAccountRequest, crate::services::accounts::LoginResponse,
        crate::services::accounts::CreatedToken, crate::services::datasets::DatasetView,
        crate::services::datasets::Lineage, crate::services::datasets::RoleView, IndexReport,
        LeaderView, platform::JsonWebKeySet, platform::JsonWebKey, platform::DecisionView,
        platform::CommitReport,
    )),
    tags((name = "datasets"), (name = "accounts"), (name = "admin"),
        (name = "flows", description = "Flows and their runs (docs/protocols/flows.md)"),
        (name = "devices", description = "Device registry and metering (docs/protocols/devices.md)"),
        (name = "governance", description = "Issues and discussions of datasets"),
        (name = "webhooks", description = "Signed webhooks on dataset events (docs/protocols/webhooks.md)"),
        (name = "tasks", description = "What executors of flow tasks call"),
        (name = "platform", description = "What functions deployed apart from the control plane ask it"))
)]
pub struct ApiDoc;

pub fn router(control_plane: Arc<ControlPlane>) -> Router {
    let router = Router::new()
        .route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
        .route("/admin/reindex", post(reindex))
        .route("/admin/sweep", post(sweep))
        .route("/leader", get(leader))
        .merge(accounts::routes())
        .merge(datasets::routes())
        .merge(flows::routes())
        .merge(devices::routes())
        .merge(governance::routes())
        .merge(webhooks::routes())
        .merge(platform::routes())
        .merge(crate::graphql::routes(control_plane.clone()))
        .with_state(control_plane);
    weir_function_runtime::with_json_errors(router)
}

/// Rebuilds the index from storage (administrators only).
#[utoipa::path(post, path = "/admin/reindex", tag = "admin",
    responses((status = 200, body = IndexReport), (status = 403, description = "not an administrator")))]
async fn reindex(
    State(control_plane): AppState,
    headers: HeaderMap,
) -> Result<Json<IndexReport>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    if !caller.is_admin {
        return Err(ApiError::forbidden(
            "reindexing needs an administrator token",
        ));
    }
    Ok(Json(control_plane.indexer.index_all().await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SweepParameters {
    /// Only objects older than this are removed (default: `sweep_grace_seconds`).
    grace_seconds: Option<u64>,
}

/// Removes objects no chain refers to, as the leader does periodically (administrators only).
#[utoipa::path(post, path = "/admin/sweep", tag = "admin", params(SweepParameters),
    responses((status = 200, description = "what was removed"), (status = 403, description = "not an administrator")))]
async fn sweep(
    State(control_plane): AppState,
    Query(parameters): Query<SweepParameters>,
    headers: HeaderMap,
) -> Result<Json<weir_dataset::sweep::SweepReport>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    if !caller.is_admin {
        return Err(ApiError::forbidden("sweeping needs an administrator token"));
    }
    let grace = parameters
        .grace_seconds
        .unwrap_or(control_plane.config.sweep_grace_seconds);
    let report = control_plane
        .store
        .sweep_unreferenced(std::time::Duration::from_secs(grace))
        .await
        .map_err(|error| ApiError::internal(format!("sweep failed: {error}")))?;
    Ok(Json(report))
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeaderView {
    instance_id: String,
    leader: bool,
}

/// Whether this replica currently runs the singleton loops.
#[utoipa::path(get, path = "/leader", tag = "admin", responses((status = 200, body = LeaderView)))]
async fn leader(State(control_plane): AppState) -> Json<LeaderView> {
    Json(LeaderView {
        instance_id: control_plane.leadership.instance_id.clone(),
        leader: control_plane.leadership.is_leader(),
    })
}
