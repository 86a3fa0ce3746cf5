//! `/auth/login`, `/accounts`, `/accounts/me/tokens`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use std::sync::Arc;
use weir_function_runtime::ApiError;
use weir_metastore::{AccessToken, Account};

use super::{AppState, caller};
use crate::node::ControlPlane;
use crate::services::accounts::{CreateAccountRequest, CreatedToken, LoginResponse};

pub fn routes() -> Router<Arc<ControlPlane>> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/accounts", post(create_account).get(list_accounts))
        .route("/accounts/me", get(me))
        .route("/accounts/me/tokens", post(create_token).get(list_tokens))
        .route("/accounts/me/tokens/{id}", delete(revoke_token))
        .route("/accounts/{organization}/members", post(add_member))
}

/// Parses a JSON body, answering 400 with serde's message (field and position).
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|error| ApiError::invalid_input(format!("request body: {error}")))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    login: String,
    password: String,
}

/// Password login; returns a session token (JWT).
#[utoipa::path(post, path = "/auth/login", tag = "accounts", request_body = inline(LoginRequest),
    responses((status = 200, body = LoginResponse), (status = 401, description = "wrong name or password")))]
pub async fn login(
    State(control_plane): AppState,
    body: Bytes,
) -> Result<Json<LoginResponse>, ApiError> {
    let request: LoginRequest = json_body(&body)?;
    Ok(Json(
        control_plane
            .accounts
            .login(&request.login, &request.password)
            .await?,
    ))
}

/// Ends the session (or revokes the token) the request authenticates with; the token is refused
/// from then on.
#[utoipa::path(post, path = "/auth/logout", tag = "accounts",
    responses((status = 204, description = "logged out"), (status = 401, description = "no valid token")))]
pub async fn logout(
    State(control_plane): AppState,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    control_plane.accounts.logout(&caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Creates a user (administrators) or an organization (any account; its creator becomes a member).
#[utoipa::path(post, path = "/accounts", tag = "accounts", request_body = CreateAccountRequest,
    responses((status = 201, description = "account created"), (status = 409, description = "name taken")))]
pub async fn create_account(
    State(control_plane): AppState,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Account>), ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    let request: CreateAccountRequest = json_body(&body)?;
    let account = control_plane
        .accounts
        .create_account(&caller, request)
        .await?;
    Ok((StatusCode::CREATED, Json(account)))
}

/// Every account (name, kind, display name).
#[utoipa::path(get, path = "/accounts", tag = "accounts", responses((status = 200, description = "accounts")))]
pub async fn list_accounts(
    State(control_plane): AppState,
    headers: HeaderMap,
) -> Result<Json<Vec<Account>>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    crate::services::accounts::require_account(&caller)?;
    Ok(Json(control_plane.accounts.list_accounts().await?))
}

/// The calling account.
#[utoipa::path(get, path = "/accounts/me", tag = "accounts", responses((status = 200, description = "the account"), (status = 401)))]
pub async fn me(
    State(control_plane): AppState,
    headers: HeaderMap,
) -> Result<Json<Account>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    Ok(Json(control_plane.accounts.me(&caller).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberRequest {
    account: String,
}

/// Adds an account to an organization (members and administrators).
#[utoipa::path(post, path = "/accounts/{organization}/members", tag = "accounts", request_body = inline(MemberRequest),
    params(("organization" = String, Path)), responses((status = 204)))]
pub async fn add_member(
    State(control_plane): AppState,
    Path(organization): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    let request: MemberRequest = json_body(&body)?;
    control_plane
        .accounts
        .add_member(&caller, &organization, &request.account)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    name: String,
}

/// Creates a personal access token; the token is shown only in this response.
#[utoipa::path(post, path = "/accounts/me/tokens", tag = "accounts", request_body = inline(TokenRequest),
    responses((status = 201, body = CreatedToken)))]
pub async fn create_token(
    State(control_plane): AppState,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    let request: TokenRequest = json_body(&body)?;
    let token = control_plane
        .accounts
        .create_token(&caller, &request.name)
        .await?;
    Ok((StatusCode::CREATED, Json(token)))
}

/// The caller's tokens (without secrets).
#[utoipa::path(get, path = "/accounts/me/tokens", tag = "accounts", responses((status = 200, description = "tokens")))]
pub async fn list_tokens(
    State(control_plane): AppState,
    headers: HeaderMap,
) -> Result<Json<Vec<AccessToken>>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    Ok(Json(control_plane.accounts.list_tokens(&caller).await?))
}

/// Revokes a token; it stops working at once.
#[utoipa::path(delete, path = "/accounts/me/tokens/{id}", tag = "accounts", params(("id" = String, Path)),
    responses((status = 204), (status = 404)))]
pub async fn revoke_token(
    State(control_plane): AppState,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    control_plane.accounts.revoke_token(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
