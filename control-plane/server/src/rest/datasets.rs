//! `/datasets`: create from a manifest, list, get, rename, delete, visibility, roles,
//! lineage and the indexed metadata chain.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use weir_function_runtime::ApiError;
use weir_metastore::{BlockEntry, DatasetFilter, Role, Visibility};

use super::accounts::json_body;
use super::{AppState, caller};
use crate::node::ControlPlane;
use crate::services::datasets::{DatasetView, Lineage, RoleView};

pub fn routes() -> Router<Arc<ControlPlane>> {
    Router::new()
        .route(
            "/datasets",
            post(create_dataset)
                .layer(axum::extract::DefaultBodyLimit::max(
                    weir_odf::manifest::MAX_MANIFEST_BYTES,
                ))
                .get(list_datasets),
        )
        .route(
            "/datasets/{owner}/{name}",
            get(get_dataset).delete(delete_dataset),
        )
        .route("/datasets/{owner}/{name}/rename", post(rename_dataset))
        .route("/datasets/{owner}/{name}/visibility", put(set_visibility))
        .route("/datasets/{owner}/{name}/roles", get(list_roles))
        .route(
            "/datasets/{owner}/{name}/roles/{account}",
            put(set_role).delete(remove_role),
        )
        .route("/datasets/{owner}/{name}/lineage", get(lineage))
        .route("/datasets/{owner}/{name}/blocks", get(blocks))
}

fn parse_visibility(text: &str) -> Result<Visibility, ApiError> {
    Visibility::parse(text).ok_or_else(|| {
        ApiError::invalid_input(format!(
            "invalid visibility `{text}`: expected `public` or `private`"
        ))
    })
}

fn parse_role(text: &str) -> Result<Role, ApiError> {
    Role::parse(text).ok_or_else(|| {
        ApiError::invalid_input(format!(
            "invalid role `{text}`: expected reader, editor, maintainer or owner"
        ))
    })
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CreateParameters {
    /// Owning account (default: the caller).
    account: Option<String>,
    /// `public` or `private` (default: the node's default, private unless configured).
    visibility: Option<String>,
}

/// Creates a dataset from a YAML manifest (DatasetSnapshot or RFC-018 Dataset form).
#[utoipa::path(post, path = "/datasets", tag = "datasets", params(CreateParameters),
    request_body(content = String, content_type = "application/yaml"),
    responses((status = 201, body = DatasetView), (status = 400, description = "invalid manifest"),
        (status = 409, description = "name taken"), (status = 415, description = "not YAML")))]
pub async fn create_dataset(
    State(control_plane): AppState,
    Query(parameters): Query<CreateParameters>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<DatasetView>), ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("application/yaml");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !matches!(
        media_type,
        "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml"
    ) {
        return Err(ApiError::new(
            weir_function_runtime::ErrorKind::UnsupportedMediaType,
            format!(
                "manifests are YAML: send `Content-Type: application/yaml`, not `{content_type}`"
            ),
        ));
    }
    let manifest =
        std::str::from_utf8(&body).map_err(|_| ApiError::invalid_input("manifest is not UTF-8"))?;
    if manifest.trim().is_empty() {
        return Err(ApiError::invalid_input("manifest is empty"));
    }
    let visibility = parameters
        .visibility
        .as_deref()
        .map(parse_visibility)
        .transpose()?;
    let view = control_plane
        .datasets
        .create(&caller, manifest, parameters.account.as_deref(), visibility)
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParameters {
    /// A search expression: conditions on name, owner, kind, keywords, license, description,
    /// numRecords, dataSize, lastUpdated, visibility, openIssues with `= != < <= > >= LIKE IN`,
    /// `AND OR NOT` and parentheses; a quoted text (or plain words) is a full-text search.
    /// E.g. `license = 'CC0-1.0' AND (keywords = 'weather' OR 'rain gauge')`.
    search: Option<String>,
    account: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// Datasets the caller may read.
#[utoipa::path(get, path = "/datasets", tag = "datasets", params(ListParameters),
    responses((status = 200, body = [DatasetView])))]
pub async fn list_datasets(
    State(control_plane): AppState,
    parameters: Result<Query<ListParameters>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Json<Vec<DatasetView>>, ApiError> {
    let Query(parameters) =
        parameters.map_err(|error| ApiError::invalid_input(error.body_text()))?;
    let caller = caller(&control_plane, &headers).await?;
    let filter = DatasetFilter {
        owner_name: parameters.account,
        expression: crate::services::datasets::search_expression(parameters.search.as_deref())?,
        limit: parameters.limit.unwrap_or(100).clamp(1, 1000),
        offset: parameters.offset.unwrap_or(0).max(0),
        ..Default::default()
    };
    Ok(Json(control_plane.datasets.list(&caller, &filter).await?))
}

/// One dataset with statistics and the caller's role.
#[utoipa::path(get, path = "/datasets/{owner}/{name}", tag = "datasets",
    params(("owner" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = DatasetView), (status = 404)))]
pub async fn get_dataset(
    State(control_plane): AppState,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<DatasetView>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    Ok(Json(
        control_plane.datasets.get(&caller, &owner, &name).await?,
    ))
}

/// Deletes a dataset and its data (owners).
#[utoipa::path(delete, path = "/datasets/{owner}/{name}", tag = "datasets",
    params(("owner" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = 404), (status = 409, description = "has downstream datasets")))]
pub async fn delete_dataset(
    State(control_plane): AppState,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    control_plane
        .datasets
        .delete(&caller, &owner, &name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RenameRequest {
    new_name: String,
}

/// Renames a dataset within its account (maintainers).
#[utoipa::path(post, path = "/datasets/{owner}/{name}/rename", tag = "datasets",
    params(("owner" = String, Path), ("name" = String, Path)), request_body = inline(RenameRequest),
    responses((status = 200, body = DatasetView), (status = 409)))]
pub async fn rename_dataset(
    State(control_plane): AppState,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<DatasetView>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    let request: RenameRequest = json_body(&body)?;
    Ok(Json(
        control_plane
            .datasets
            .rename(&caller, &owner, &name, &request.new_name)
            .await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisibilityRequest {
    visibility: String,
}

/// Makes a dataset public or private (maintainers).
#[utoipa::path(put, path = "/datasets/{owner}/{name}/visibility", tag = "datasets",
    params(("owner" = String, Path), ("name" = String, Path)), request_body = inline(VisibilityRequest),
    responses((status = 200, body = DatasetView)))]
pub async fn set_visibility(
    State(control_plane): AppState,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<DatasetView>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    let request: VisibilityRequest = json_body(&body)?;
    let visibility = parse_visibility(&request.visibility)?;
    Ok(Json(
        control_plane
            .datasets
            .set_visibility(&caller, &owner, &name, visibility)
            .await?,
    ))
}

/// Roles granted on a dataset (maintainers).
#[utoipa::path(get, path = "/datasets/{owner}/{name}/roles", tag = "datasets",
    params(("owner" = String, Path), ("name" = String, Path)), responses((status = 200, body = [RoleView])))]
pub async fn list_roles(
    State(control_plane): AppState,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Vec<RoleView>>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    Ok(Json(
        control_plane.datasets.roles(&caller, &owner, &name).await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    role: String,
}

/// Grants a role to an account.
#[utoipa::path(put, path = "/datasets/{owner}/{name}/roles/{account}", tag = "datasets",
    params(("owner" = String, Path), ("name" = String, Path), ("account" = String, Path)),
    request_body = inline(RoleRequest), responses((status = 200, body = [RoleView])))]
pub async fn set_role(
    State(control_plane): AppState,
    Path((owner, name, account)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Vec<RoleView>>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    let request: RoleRequest = json_body(&body)?;
    let role = parse_role(&request.role)?;
    Ok(Json(
        control_plane
            .datasets
            .set_role(&caller, &owner, &name, &account, Some(role))
            .await?,
    ))
}

/// Removes an account's role.
#[utoipa::path(delete, path = "/datasets/{owner}/{name}/roles/{account}", tag = "datasets",
    params(("owner" = String, Path), ("name" = String, Path), ("account" = String, Path)),
    responses((status = 200, body = [RoleView])))]
pub async fn remove_role(
    State(control_plane): AppState,
    Path((owner, name, account)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Json<Vec<RoleView>>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    Ok(Json(
        control_plane
            .datasets
            .set_role(&caller, &owner, &name, &account, None)
            .await?,
    ))
}

/// Upstream and downstream datasets the caller may see.
#[utoipa::path(get, path = "/datasets/{owner}/{name}/lineage", tag = "datasets",
    params(("owner" = String, Path), ("name" = String, Path)), responses((status = 200, body = Lineage)))]
pub async fn lineage(
    State(control_plane): AppState,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Lineage>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    Ok(Json(
        control_plane
            .datasets
            .lineage(&caller, &owner, &name)
            .await?,
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BlocksParameters {
    /// Only blocks with a smaller sequence number (the previous page's last).
    before: Option<i64>,
    limit: Option<i64>,
}

/// The metadata chain from the index, newest block first.
#[utoipa::path(get, path = "/datasets/{owner}/{name}/blocks", tag = "datasets",
    params(("owner" = String, Path), ("name" = String, Path), BlocksParameters),
    responses((status = 200, description = "blocks, newest first")))]
pub async fn blocks(
    State(control_plane): AppState,
    Path((owner, name)): Path<(String, String)>,
    parameters: Result<Query<BlocksParameters>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Json<Vec<BlockEntry>>, ApiError> {
    let Query(parameters) =
        parameters.map_err(|error| ApiError::invalid_input(error.body_text()))?;
    let caller = caller(&control_plane, &headers).await?;
    Ok(Json(
        control_plane
            .datasets
            .blocks(
                &caller,
                &owner,
                &name,
                parameters.before,
                parameters.limit.unwrap_or(50),
            )
            .await?,
    ))
}
