//! Webhook subscriptions: `/datasets/{owner}/{name}/webhooks`, `/accounts/{name}/webhooks`,
//! `/webhooks/{id}` with its `enable` and `deliveries`. Handlers translate HTTP to
//! `WebhooksApi` calls.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use weir_function_runtime::ApiError;
use weir_webhooks::{Delivery, Subscription};

use super::{AppState, body, caller};
use crate::node::ControlPlane;
use crate::services::webhooks::{CreatedSubscription, Scope};

pub fn routes() -> Router<Arc<ControlPlane>> {
    Router::new()
        .route(
            "/datasets/{owner}/{name}/webhooks",
            get(list_dataset_webhooks).post(create_dataset_webhook),
        )
        .route(
            "/accounts/{name}/webhooks",
            get(list_account_webhooks).post(create_account_webhook),
        )
        .route("/webhooks/{id}", get(get_webhook).delete(delete_webhook))
        .route("/webhooks/{id}/enable", post(enable_webhook))
        .route("/webhooks/{id}/deliveries", get(deliveries))
}

type Created = Result<(StatusCode, Json<CreatedSubscription>), ApiError>;

/// Subscribes to a dataset's events (maintainers): `{url, events}`; the answer holds the
/// signing secret, shown this once.
#[utoipa::path(post, path = "/datasets/{owner}/{name}/webhooks", tag = "webhooks",
    params(("owner" = String, Path), ("name" = String, Path)),
    responses((status = 201, description = "the subscription and its secret"), (status = 400, description = "a bad URL (not http(s), or a private address) or event type")))]
async fn create_dataset_webhook(
    State(control_plane): AppState,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Created {
    let caller = caller(&control_plane, &headers).await?;
    let created = control_plane
        .webhooks_api()
        .create(
            &caller,
            Scope::Dataset {
                owner: &owner,
                name: &name,
            },
            body(&bytes, "webhook")?,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/datasets/{owner}/{name}/webhooks", tag = "webhooks",
    params(("owner" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "the dataset's subscriptions")))]
async fn list_dataset_webhooks(
    State(control_plane): AppState,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Vec<Subscription>>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    Ok(Json(
        control_plane
            .webhooks_api()
            .list(
                &caller,
                Scope::Dataset {
                    owner: &owner,
                    name: &name,
                },
            )
            .await?,
    ))
}

/// Subscribes to the events of every dataset of an account (that account or an administrator).
#[utoipa::path(post, path = "/accounts/{name}/webhooks", tag = "webhooks",
    params(("name" = String, Path)),
    responses((status = 201, description = "the subscription and its secret")))]
async fn create_account_webhook(
    State(control_plane): AppState,
    Path(name): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Created {
    let caller = caller(&control_plane, &headers).await?;
    let created = control_plane
        .webhooks_api()
        .create(
            &caller,
            Scope::Account { name: &name },
            body(&bytes, "webhook")?,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/accounts/{name}/webhooks", tag = "webhooks",
    params(("name" = String, Path)),
    responses((status = 200, description = "the account's subscriptions")))]
async fn list_account_webhooks(
    State(control_plane): AppState,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Vec<Subscription>>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    Ok(Json(
        control_plane
            .webhooks_api()
            .list(&caller, Scope::Account { name: &name })
            .await?,
    ))
}

/// A subscription, with its status and the reason it was disabled.
#[utoipa::path(get, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, description = "the subscription"), (status = 404, description = "unknown, or not the caller's to manage")))]
async fn get_webhook(
    State(control_plane): AppState,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Subscription>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    Ok(Json(control_plane.webhooks_api().get(&caller, &id).await?))
}

#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 204, description = "deleted with its history")))]
async fn delete_webhook(
    State(control_plane): AppState,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    control_plane.webhooks_api().delete(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Activates a disabled subscription again, its failure count reset.
#[utoipa::path(post, path = "/webhooks/{id}/enable", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, description = "the subscription")))]
async fn enable_webhook(
    State(control_plane): AppState,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Subscription>, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    Ok(Json(
        control_plane.webhooks_api().enable(&caller, &id).await?,
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveryParameters {
    limit: Option<i64>,
}

/// The subscription's deliveries, newest first: status, attempts, last HTTP status and error.
#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path), DeliveryParameters),
    responses((status = 200, description = "deliveries")))]
async fn deliveries(
    State(control_plane): AppState,
    Path(id): Path<String>,
    parameters: Result<Query<DeliveryParameters>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Json<Vec<Delivery>>, ApiError> {
    let Query(parameters) =
        parameters.map_err(|error| ApiError::invalid_input(error.body_text()))?;
    let caller = caller(&control_plane, &headers).await?;
    Ok(Json(
        control_plane
            .webhooks_api()
            .deliveries(&caller, &id, parameters.limit.unwrap_or(50))
            .await?,
    ))
}
