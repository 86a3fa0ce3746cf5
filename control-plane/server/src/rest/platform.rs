//! What functions deployed apart from the control plane ask it: the token public key
//! (`/auth/keys`, a JSON Web Key Set), access decisions for a caller (`/access/decision`) and
//! commit reports (`/commits`). `weir_function_runtime::ControlPlaneLink` is the client.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use weir_function_runtime::{AccessDecision, ApiError, DatasetAction};

use super::accounts::json_body;
use super::{AppState, caller};
use crate::node::ControlPlane;

pub fn routes() -> Router<Arc<ControlPlane>> {
    Router::new()
        .route("/auth/keys", get(keys))
        .route("/access/decision", get(decision))
        .route("/commits", post(report_commit))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct JsonWebKey {
    kty: &'static str,
    crv: &'static str,
    alg: &'static str,
    #[serde(rename = "use")]
    key_use: &'static str,
    /// The Ed25519 public key, base64url without padding (RFC 8037).
    x: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct JsonWebKeySet {
    keys: Vec<JsonWebKey>,
}

/// The public key that verifies every token this control plane signs.
#[utoipa::path(get, path = "/auth/keys", tag = "platform",
    responses((status = 200, body = JsonWebKeySet)))]
pub async fn keys(State(control_plane): AppState) -> Json<JsonWebKeySet> {
    let key = control_plane.accounts.signer().verifying_key();
    Json(JsonWebKeySet {
        keys: vec![JsonWebKey {
            kty: "OKP",
            crv: "Ed25519",
            alg: "EdDSA",
            key_use: "sig",
            x: URL_SAFE_NO_PAD.encode(key.as_bytes()),
        }],
    })
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecisionParameters {
    /// The dataset's DID (`did:odf:...`).
    dataset_id: String,
    /// `read` or `write`.
    action: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DecisionView {
    /// `allowed`, `forbidden` (may see the dataset, not do this) or `hidden` (answer 404).
    decision: &'static str,
}

fn parse_action(text: &str) -> Result<DatasetAction, ApiError> {
    DatasetAction::parse(text).ok_or_else(|| {
        ApiError::invalid_input(format!(
            "invalid action `{text}`: expected `read` or `write`"
        ))
    })
}

/// What the caller (by the forwarded `Authorization` header) may do with a dataset; 401 when
/// the token is invalid or revoked.
#[utoipa::path(get, path = "/access/decision", tag = "platform", params(DecisionParameters),
    responses((status = 200, body = DecisionView), (status = 400, description = "bad action"),
        (status = 401, description = "invalid or revoked token")))]
pub async fn decision(
    State(control_plane): AppState,
    Query(parameters): Query<DecisionParameters>,
    headers: HeaderMap,
) -> Result<Json<DecisionView>, ApiError> {
    let action = parse_action(&parameters.action)?;
    let caller = caller(&control_plane, &headers).await?;
    let decision = control_plane
        .access
        .decide(&caller, &parameters.dataset_id, action)
        .await?;
    Ok(Json(DecisionView {
        decision: match decision {
            AccessDecision::Allowed => "allowed",
            AccessDecision::Forbidden => "forbidden",
            AccessDecision::Hidden => "hidden",
        },
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommitReport {
    dataset_id: String,
    block_hash: String,
    sequence_number: u64,
}

/// A function committed a block: index it and publish `block-committed`. The index is read
/// from storage, so the report only says where to look. Needs write access to the dataset.
#[utoipa::path(post, path = "/commits", tag = "platform", request_body = CommitReport,
    responses((status = 202, description = "indexing"), (status = 401), (status = 403),
        (status = 404, description = "no such dataset, or hidden from the caller")))]
pub async fn report_commit(
    State(control_plane): AppState,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    let report: CommitReport = json_body(&body)?;
    match control_plane
        .access
        .decide(&caller, &report.dataset_id, DatasetAction::Write)
        .await?
    {
        AccessDecision::Allowed => {}
        AccessDecision::Forbidden => {
            return Err(ApiError::forbidden(
                "writing this dataset needs the editor role",
            ));
        }
        AccessDecision::Hidden => {
            return Err(ApiError::not_found(format!(
                "dataset `{}` not found",
                report.dataset_id
            )));
        }
    }
    control_plane
        .commit_notifier("function")
        .block_committed(
            &caller,
            &report.dataset_id,
            &report.block_hash,
            report.sequence_number,
        )
        .await;
    Ok(StatusCode::ACCEPTED)
}
