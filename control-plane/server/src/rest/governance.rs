//! Issues and discussions of a dataset (`/datasets/{owner}/{name}/issues|discussions/...`),
//! their comments, and who may post. Handlers translate HTTP to `GovernanceApi` calls.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, put};
use axum::{Json, Router};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use weir_function_runtime::ApiError;
use weir_metastore::governance::{
    Comment, CommentEdit, Posting, Thread, ThreadFilter, ThreadKind, ThreadState,
};

use super::{AppState, body, caller};
use crate::node::ControlPlane;
use crate::services::governance::{
    CommentChange, NewCommentRequest, NewThreadRequest, ThreadChange, ThreadView,
};

pub fn routes() -> Router<Arc<ControlPlane>> {
    Router::new()
        .route(
            "/datasets/{owner}/{name}/{kind}",
            get(list_threads).post(open_thread),
        )
        .route(
            "/datasets/{owner}/{name}/{kind}/{number}",
            get(get_thread).patch(change_thread).delete(delete_thread),
        )
        .route(
            "/datasets/{owner}/{name}/{kind}/{number}/comments",
            axum::routing::post(add_comment),
        )
        .route(
            "/datasets/{owner}/{name}/comments/{comment}",
            axum::routing::patch(change_comment).delete(delete_comment),
        )
        .route(
            "/datasets/{owner}/{name}/comments/{comment}/history",
            get(comment_history),
        )
        .route(
            "/datasets/{owner}/{name}/comments/{comment}/reactions/{reaction}",
            put(add_reaction).delete(remove_reaction),
        )
        .route(
            "/datasets/{owner}/{name}/governance",
            get(get_settings).put(put_settings),
        )
}

/// `issues` or `discussions`; anything else is not a route.
fn kind(segment: &str) -> Result<ThreadKind, ApiError> {
    match segment {
        "issues" => Ok(ThreadKind::Issue),
        "discussions" => Ok(ThreadKind::Discussion),
        other => Err(ApiError::not_found(format!("no route `{other}`"))),
    }
}

type Answer<T> = Result<Json<T>, ApiError>;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThreadParameters {
    /// `open` or `closed`.
    state: Option<String>,
    label: Option<String>,
    /// Threads numbered below this (paging, newest first).
    before: Option<i64>,
    limit: Option<i64>,
}

/// Issues (or discussions) of a dataset, newest first.
#[utoipa::path(get, path = "/datasets/{owner}/{name}/{kind}", tag = "governance",
    params(("owner" = String, Path), ("name" = String, Path), ("kind" = String, Path, description = "issues or discussions"), ThreadParameters),
    responses((status = 200, description = "threads"), (status = 404, description = "no such dataset, or not readable")))]
async fn list_threads(
    State(control_plane): AppState,
    Path((owner, name, segment)): Path<(String, String, String)>,
    parameters: Result<Query<ThreadParameters>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Answer<Vec<Thread>> {
    let kind = kind(&segment)?;
    let Query(parameters) =
        parameters.map_err(|error| ApiError::invalid_input(error.body_text()))?;
    let state = match parameters.state.as_deref() {
        None => None,
        Some(text) => Some(ThreadState::parse(text).ok_or_else(|| {
            ApiError::invalid_input(format!("state: `{text}` is not `open` or `closed`"))
        })?),
    };
    let caller = caller(&control_plane, &headers).await?;
    let filter = ThreadFilter {
        kind: Some(kind),
        state,
        label: parameters.label,
        before_number: parameters.before,
        limit: parameters.limit.unwrap_or(50),
    };
    Ok(Json(
        control_plane
            .governance_api()
            .list_threads(&caller, (&owner, &name), filter)
            .await?,
    ))
}

/// Opens an issue or discussion: `{title, body, labels?, assignees?}` (labels and assignees:
/// maintainers).
#[utoipa::path(post, path = "/datasets/{owner}/{name}/{kind}", tag = "governance",
    params(("owner" = String, Path), ("name" = String, Path), ("kind" = String, Path)),
    responses((status = 201, description = "the thread with its opening post"), (status = 401, description = "anonymous"), (status = 403, description = "posting needs a higher role")))]
async fn open_thread(
    State(control_plane): AppState,
    Path((owner, name, segment)): Path<(String, String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<(StatusCode, Json<ThreadView>), ApiError> {
    let kind = kind(&segment)?;
    let caller = caller(&control_plane, &headers).await?;
    let request: NewThreadRequest = body(&bytes, "thread")?;
    let view = control_plane
        .governance_api()
        .open_thread(&caller, (&owner, &name), kind, request)
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

async fn thread_of_kind(
    control_plane: &ControlPlane,
    headers: &HeaderMap,
    (owner, name, segment, number): &(String, String, String, i64),
) -> Result<ThreadView, ApiError> {
    let kind = kind(segment)?;
    let caller = caller(control_plane, headers).await?;
    let view = control_plane
        .governance_api()
        .thread(&caller, (owner, name), *number)
        .await?;
    if view.thread.kind != kind {
        return Err(ApiError::not_found(format!(
            "{segment} #{number} not found"
        )));
    }
    Ok(view)
}

/// One thread with its comments (hidden comments without their text, except for maintainers).
#[utoipa::path(get, path = "/datasets/{owner}/{name}/{kind}/{number}", tag = "governance",
    params(("owner" = String, Path), ("name" = String, Path), ("kind" = String, Path), ("number" = i64, Path)),
    responses((status = 200, description = "the thread and its comments")))]
async fn get_thread(
    State(control_plane): AppState,
    Path(path): Path<(String, String, String, i64)>,
    headers: HeaderMap,
) -> Answer<ThreadView> {
    Ok(Json(thread_of_kind(&control_plane, &headers, &path).await?))
}

/// Changes a thread: `{title?, state?}` (author or maintainer), `{locked?, labels?, assignees?}`
/// (maintainers).
#[utoipa::path(patch, path = "/datasets/{owner}/{name}/{kind}/{number}", tag = "governance",
    params(("owner" = String, Path), ("name" = String, Path), ("kind" = String, Path), ("number" = i64, Path)),
    responses((status = 200, description = "the thread")))]
async fn change_thread(
    State(control_plane): AppState,
    Path(path): Path<(String, String, String, i64)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Answer<Thread> {
    thread_of_kind(&control_plane, &headers, &path).await?;
    let caller = caller(&control_plane, &headers).await?;
    let change: ThreadChange = body(&bytes, "change")?;
    Ok(Json(
        control_plane
            .governance_api()
            .change_thread(&caller, (&path.0, &path.1), path.3, change)
            .await?,
    ))
}

/// Deletes a thread with its comments (maintainers).
#[utoipa::path(delete, path = "/datasets/{owner}/{name}/{kind}/{number}", tag = "governance",
    params(("owner" = String, Path), ("name" = String, Path), ("kind" = String, Path), ("number" = i64, Path)),
    responses((status = 204, description = "deleted")))]
async fn delete_thread(
    State(control_plane): AppState,
    Path(path): Path<(String, String, String, i64)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    thread_of_kind(&control_plane, &headers, &path).await?;
    let caller = caller(&control_plane, &headers).await?;
    control_plane
        .governance_api()
        .delete_thread(&caller, (&path.0, &path.1), path.3)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Comments on a thread: `{body, parentId?}`; `@name` mentions accounts.
#[utoipa::path(post, path = "/datasets/{owner}/{name}/{kind}/{number}/comments", tag = "governance",
    params(("owner" = String, Path), ("name" = String, Path), ("kind" = String, Path), ("number" = i64, Path)),
    responses((status = 201, description = "the comment")))]
async fn add_comment(
    State(control_plane): AppState,
    Path(path): Path<(String, String, String, i64)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Comment>), ApiError> {
    thread_of_kind(&control_plane, &headers, &path).await?;
    let caller = caller(&control_plane, &headers).await?;
    let request: NewCommentRequest = body(&bytes, "comment")?;
    let comment = control_plane
        .governance_api()
        .add_comment(&caller, (&path.0, &path.1), path.3, request)
        .await?;
    Ok((StatusCode::CREATED, Json(comment)))
}

/// Edits a comment (`{body}`, its author; the earlier body is kept) or hides it (`{hidden}`,
/// maintainers).
#[utoipa::path(patch, path = "/datasets/{owner}/{name}/comments/{comment}", tag = "governance",
    params(("owner" = String, Path), ("name" = String, Path), ("comment" = String, Path)),
    responses((status = 200, description = "the comment")))]
async fn change_comment(
    State(control_plane): AppState,
    Path((owner, name, comment)): Path<(String, String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Answer<Comment> {
    let caller = caller(&control_plane, &headers).await?;
    let change: CommentChange = body(&bytes, "change")?;
    Ok(Json(
        control_plane
            .governance_api()
            .change_comment(&caller, (&owner, &name), &comment, change)
            .await?,
    ))
}

/// Deletes a comment (its author or a maintainer); replies keep their place.
#[utoipa::path(delete, path = "/datasets/{owner}/{name}/comments/{comment}", tag = "governance",
    params(("owner" = String, Path), ("name" = String, Path), ("comment" = String, Path)),
    responses((status = 204, description = "deleted")))]
async fn delete_comment(
    State(control_plane): AppState,
    Path((owner, name, comment)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    control_plane
        .governance_api()
        .delete_comment(&caller, (&owner, &name), &comment)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Earlier bodies of an edited comment, oldest first.
#[utoipa::path(get, path = "/datasets/{owner}/{name}/comments/{comment}/history", tag = "governance",
    params(("owner" = String, Path), ("name" = String, Path), ("comment" = String, Path)),
    responses((status = 200, description = "earlier bodies")))]
async fn comment_history(
    State(control_plane): AppState,
    Path((owner, name, comment)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Answer<Vec<CommentEdit>> {
    let caller = caller(&control_plane, &headers).await?;
    Ok(Json(
        control_plane
            .governance_api()
            .comment_history(&caller, (&owner, &name), &comment)
            .await?,
    ))
}

async fn reaction(
    control_plane: &ControlPlane,
    headers: &HeaderMap,
    (owner, name, comment, reaction): (String, String, String, String),
    on: bool,
) -> Answer<Comment> {
    let caller = caller(control_plane, headers).await?;
    Ok(Json(
        control_plane
            .governance_api()
            .react(&caller, (&owner, &name), &comment, &reaction, on)
            .await?,
    ))
}

/// Adds the caller's reaction (`+1 -1 laugh hooray confused heart rocket eyes`).
#[utoipa::path(put, path = "/datasets/{owner}/{name}/comments/{comment}/reactions/{reaction}", tag = "governance",
    params(("owner" = String, Path), ("name" = String, Path), ("comment" = String, Path), ("reaction" = String, Path)),
    responses((status = 200, description = "the comment")))]
async fn add_reaction(
    State(control_plane): AppState,
    Path(path): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Answer<Comment> {
    reaction(&control_plane, &headers, path, true).await
}

/// Removes the caller's reaction.
#[utoipa::path(delete, path = "/datasets/{owner}/{name}/comments/{comment}/reactions/{reaction}", tag = "governance",
    params(("owner" = String, Path), ("name" = String, Path), ("comment" = String, Path), ("reaction" = String, Path)),
    responses((status = 200, description = "the comment")))]
async fn remove_reaction(
    State(control_plane): AppState,
    Path(path): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Answer<Comment> {
    reaction(&control_plane, &headers, path, false).await
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// Who may open threads and comment: `readers` (default), `editors` or `maintainers`.
    posting: Posting,
}

/// Who may post on the dataset.
#[utoipa::path(get, path = "/datasets/{owner}/{name}/governance", tag = "governance",
    params(("owner" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "`{posting}`")))]
async fn get_settings(
    State(control_plane): AppState,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer<Settings> {
    let caller = caller(&control_plane, &headers).await?;
    let posting = control_plane
        .governance_api()
        .posting(&caller, (&owner, &name))
        .await?;
    Ok(Json(Settings { posting }))
}

/// Sets who may post (maintainers): `{posting: readers|editors|maintainers}`.
#[utoipa::path(put, path = "/datasets/{owner}/{name}/governance", tag = "governance",
    params(("owner" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "`{posting}`")))]
async fn put_settings(
    State(control_plane): AppState,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Answer<Settings> {
    let caller = caller(&control_plane, &headers).await?;
    let settings: Settings = body(&bytes, "settings")?;
    let posting = control_plane
        .governance_api()
        .set_posting(&caller, (&owner, &name), settings.posting)
        .await?;
    Ok(Json(Settings { posting }))
}
