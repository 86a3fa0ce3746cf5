//! HTTP surface of the transform function: a derivative's transform status, running a step now,
//! verifying its steps, and resetting a dataset.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use weir_dataset::DatasetStore;
use weir_function_runtime::{AccessDecision, AccessPolicy, ApiError, DatasetAction, ErrorKind};
use weir_odf::{AccountName, DatasetId, DatasetName, Multihash};

use crate::coordinator::{StepOutcome, Transformer};
use crate::error::TransformError;
use crate::reset::ResetOutcome;
use crate::status::{TransformRuns, TransformStatus};
use crate::verify::VerifyReport;

pub struct TransformContext {
    pub store: DatasetStore,
    pub transformer: Transformer,
    pub access: Arc<dyn AccessPolicy>,
    /// Present when steps also run by themselves (flows of the control plane).
    pub runs: Option<Arc<dyn TransformRuns>>,
}

pub fn router(context: Arc<TransformContext>) -> Router {
    let router = Router::new()
        .route(
            "/datasets/{account}/{name}/transform",
            get(status).post(run_now),
        )
        .route("/datasets/{account}/{name}/verify", post(verify))
        .route("/datasets/{account}/{name}/reset", post(reset))
        .with_state(context);
    weir_function_runtime::with_json_errors(router)
}

/// Resolves `account/name` and checks that the caller may do `action`; a dataset the caller
/// may not see is not found.
async fn resolve(
    context: &TransformContext,
    headers: &HeaderMap,
    path: (String, String),
    action: DatasetAction,
) -> Result<DatasetId, ApiError> {
    Ok(resolve_with_caller(context, headers, path, action).await?.0)
}

async fn resolve_with_caller(
    context: &TransformContext,
    headers: &HeaderMap,
    (account, name): (String, String),
    action: DatasetAction,
) -> Result<(DatasetId, weir_function_runtime::Caller), ApiError> {
    let caller = context
        .access
        .authenticate(weir_function_runtime::authorization_header(headers)?)
        .await?;
    let not_found = || {
        ApiError::new(
            ErrorKind::NotFound,
            format!("dataset `{account}/{name}` not found"),
        )
    };
    let account_name: AccountName = account.parse().map_err(|_| not_found())?;
    let dataset_name: DatasetName = name.parse().map_err(|_| not_found())?;
    let id = context
        .store
        .resolve_alias(&account_name, &dataset_name)
        .await
        .map_err(|error| ApiError::new(ErrorKind::Retryable, error.to_string()))?
        .ok_or_else(not_found)?;
    match context
        .access
        .decide(&caller, &id.to_did_string(), action)
        .await?
    {
        AccessDecision::Allowed => Ok((id, caller)),
        AccessDecision::Hidden => Err(not_found()),
        AccessDecision::Forbidden => Err(ApiError::new(
            ErrorKind::Forbidden,
            match action {
                DatasetAction::Maintain => {
                    format!("resetting `{account}/{name}` needs the maintainer role")
                }
                _ => format!("running the transform of `{account}/{name}` needs the editor role"),
            },
        )),
    }
}

/// A derivative's transform as shown on the dataset.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusView {
    /// No step is running or waiting, and the inputs hold nothing the dataset has not seen.
    up_to_date: bool,
    #[serde(flatten)]
    status: TransformStatus,
}

async fn status(
    State(context): State<Arc<TransformContext>>,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<StatusView>, ApiError> {
    let id = resolve(&context, &headers, path, DatasetAction::Read).await?;
    let status = match &context.runs {
        Some(runs) => runs.status(&id).await,
        None => TransformStatus::default(),
    };
    let idle = !status.running && !status.pending;
    // A step that cannot run (its error is in `lastError`) is not up to date.
    let caught_up = context
        .transformer
        .is_up_to_date(&id)
        .await
        .unwrap_or(false);
    Ok(Json(StatusView {
        up_to_date: idle && caught_up,
        status,
    }))
}

async fn run_now(
    State(context): State<Arc<TransformContext>>,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<StepOutcome>, ApiError> {
    let id = resolve(&context, &headers, path, DatasetAction::Write).await?;
    Ok(Json(context.transformer.run_step(&id).await?))
}

async fn verify(
    State(context): State<Arc<TransformContext>>,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<VerifyReport>, ApiError> {
    let id = resolve(&context, &headers, path, DatasetAction::Read).await?;
    Ok(Json(context.transformer.verify(&id).await?))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ResetBody {
    /// The block to go back to; a derivative without it goes back to its metadata.
    to_block: Option<String>,
}

async fn reset(
    State(context): State<Arc<TransformContext>>,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<ResetOutcome>, ApiError> {
    let (id, caller) =
        resolve_with_caller(&context, &headers, path, DatasetAction::Maintain).await?;
    let body: ResetBody = if body.iter().all(u8::is_ascii_whitespace) {
        ResetBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|error| {
            ApiError::new(ErrorKind::InvalidInput, format!("invalid body: {error}"))
        })?
    };
    let to = match body.to_block.as_deref() {
        Some(text) => Some(text.parse::<Multihash>().map_err(|error| {
            ApiError::new(
                ErrorKind::InvalidInput,
                format!("`toBlock` is not a block hash: {error}"),
            )
        })?),
        None => None,
    };
    let outcome = context.transformer.reset(&id, to).await?;
    if let Some(runs) = &context.runs {
        // A derivative computes itself again from its inputs.
        runs.request_run(&id, caller.account_id.as_deref().unwrap_or_default())
            .await;
    }
    Ok(Json(outcome))
}

impl From<TransformError> for ApiError {
    fn from(error: TransformError) -> Self {
        let kind = match &error {
            TransformError::NotDerivative
            | TransformError::NoTransform
            | TransformError::ResetNeedsBlock
            | TransformError::Commit(weir_dataset::CommitError::NotInChain { .. }) => {
                ErrorKind::InvalidInput
            }
            TransformError::Engine(crate::engine::EngineError::InvalidQuery(_))
            | TransformError::OutputSchema(_)
            | TransformError::InputRewritten { .. }
            | TransformError::UnresolvedInput { .. }
            | TransformError::InputNotFound { .. } => ErrorKind::Unprocessable,
            TransformError::Commit(weir_dataset::CommitError::TooManyConflicts { .. }) => {
                ErrorKind::Conflict
            }
            error if error.is_retryable() => ErrorKind::Retryable,
            _ => ErrorKind::Internal,
        };
        ApiError::new(kind, error.to_string())
    }
}
