//! HTTP surface of the governance function: a dataset's documentation.
//!
//! - `GET /datasets/{account}/{name}/docs`: description, keywords, license, attachments (readers)
//! - `PATCH /datasets/{account}/{name}/docs`: `{description?, keywords?, license?, readme?}`
//!   (maintainers), committed as `SetInfo` / `SetLicense` / `SetAttachments`
//! - `GET|PUT|DELETE /datasets/{account}/{name}/docs/attachments/{path}`: one text attachment
//! - `POST /datasets/{account}/{name}/files`: a file for issues and comments (signed-in readers);
//!   `GET …/files/{sha3}.{ext}` serves it back

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use weir_dataset::{Dataset, DatasetStore};
use weir_function_runtime::{
    AccessDecision, AccessPolicy, ApiError, Caller, CommitNotifier, DatasetAction, ErrorKind,
};
use weir_odf::{AccountName, DatasetName};

use crate::config::GovernanceConfig;
use crate::docs::attachments::{check_content, check_declared_type, check_path};
use crate::docs::change::{DocsChange, DocsPatch, checked_path};
use crate::docs::writer::{DocsCommitted, commit_change};
use crate::docs::{CurrentDocs, Documentation};
use crate::error::GovernanceError;

pub struct GovernanceContext {
    pub store: DatasetStore,
    pub access: Arc<dyn AccessPolicy>,
    pub notifier: Option<Arc<dyn CommitNotifier>>,
    pub config: GovernanceConfig,
}

pub fn router(context: Arc<GovernanceContext>) -> Router {
    // Room for the largest attachment and its JSON escaping in a PATCH's readme.
    let docs_limit =
        DefaultBodyLimit::max(context.config.docs.max_attachment_bytes * 2 + 64 * 1024);
    let file_limit = DefaultBodyLimit::max(context.config.max_file_bytes + 1024);
    let router = Router::new()
        .route(
            "/datasets/{account}/{name}/docs",
            get(read_docs).patch(patch_docs).layer(docs_limit),
        )
        .route(
            "/datasets/{account}/{name}/docs/attachments/{*path}",
            get(read_attachment)
                .put(put_attachment)
                .delete(delete_attachment)
                .layer(docs_limit),
        )
        .route(
            "/datasets/{account}/{name}/files",
            axum::routing::post(upload_file).layer(file_limit),
        )
        .route(
            "/datasets/{account}/{name}/files/{file}",
            get(download_file),
        )
        .with_state(context);
    weir_function_runtime::with_json_errors(router)
}

/// The one "resolve and authorize" step of the governance routes: `account/name` if the caller
/// may do `action`; a dataset the caller may not see is not found, like one that does not exist.
async fn resolve(
    context: &GovernanceContext,
    headers: &HeaderMap,
    (account, name): &(String, String),
    action: DatasetAction,
) -> Result<(Dataset, Caller), ApiError> {
    let caller = context
        .access
        .authenticate(weir_function_runtime::authorization_header(headers)?)
        .await?;
    let not_found = || ApiError::not_found(format!("dataset `{account}/{name}` not found"));
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
        AccessDecision::Allowed => Ok((context.store.dataset(&id), caller)),
        AccessDecision::Hidden => Err(not_found()),
        AccessDecision::Forbidden => Err(ApiError::new(
            ErrorKind::Forbidden,
            format!("changing the documentation of `{account}/{name}` needs the maintainer role"),
        )),
    }
}

async fn read_docs(
    State(context): State<Arc<GovernanceContext>>,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Documentation>, ApiError> {
    let (dataset, _) = resolve(&context, &headers, &path, DatasetAction::Read).await?;
    let chain = dataset
        .load_chain(None)
        .await
        .map_err(GovernanceError::from)?;
    Ok(Json(CurrentDocs::of(&chain).view(&chain)))
}

async fn patch_docs(
    State(context): State<Arc<GovernanceContext>>,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<DocsCommitted>, ApiError> {
    let (dataset, caller) = resolve(&context, &headers, &path, DatasetAction::Maintain).await?;
    let patch: DocsPatch = serde_json::from_slice(&body)
        .map_err(|error| GovernanceError::invalid("body", error.to_string()))?;
    let change = DocsChange::from_patch(patch, &context.config.docs)?;
    commit(&context, &dataset, caller, &change).await
}

async fn commit(
    context: &GovernanceContext,
    dataset: &Dataset,
    caller: Caller,
    change: &DocsChange,
) -> Result<Json<DocsCommitted>, ApiError> {
    let notify = context.notifier.clone().map(|notifier| (notifier, caller));
    Ok(Json(
        commit_change(
            dataset,
            change,
            &context.config.docs,
            context.config.max_commit_attempts,
            notify,
        )
        .await?,
    ))
}

async fn read_attachment(
    State(context): State<Arc<GovernanceContext>>,
    Path((account, name, path)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (dataset, _) = resolve(&context, &headers, &(account, name), DatasetAction::Read).await?;
    let chain = dataset
        .load_chain(None)
        .await
        .map_err(GovernanceError::from)?;
    let docs = CurrentDocs::of(&chain);
    let Some(item) = docs.attachment(&path) else {
        return Err(ApiError::not_found(format!(
            "attachment `{path}` not found"
        )));
    };
    let media_type = check_path(&path).unwrap_or("application/octet-stream");
    let file_name = path.rsplit('/').next().unwrap_or("attachment");
    let mut response = item.content.clone().into_response();
    let headers = response.headers_mut();
    let value = |text: String| {
        HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("application/octet-stream"))
    };
    headers.insert(
        header::CONTENT_TYPE,
        value(format!("{media_type}; charset=utf-8")),
    );
    // Served as inert text: never sniffed, never run, shown as a file of its own name.
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    if check_path(&path).is_ok() {
        headers.insert(
            header::CONTENT_DISPOSITION,
            value(format!("inline; filename=\"{file_name}\"")),
        );
    } else {
        headers.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment"),
        );
    }
    Ok(response)
}

async fn put_attachment(
    State(context): State<Arc<GovernanceContext>>,
    Path((account, name, path)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<DocsCommitted>, ApiError> {
    let (dataset, caller) = resolve(
        &context,
        &headers,
        &(account, name),
        DatasetAction::Maintain,
    )
    .await?;
    let declared = headers
        .get(header::CONTENT_TYPE)
        .map(|value| value.to_str().unwrap_or("(not visible ASCII)"));
    check_declared_type(&path, declared)?;
    let content = check_content(&path, &body, context.config.docs.max_attachment_bytes)?;
    commit(
        &context,
        &dataset,
        caller,
        &DocsChange::put_attachment(&path, content),
    )
    .await
}

async fn delete_attachment(
    State(context): State<Arc<GovernanceContext>>,
    Path((account, name, path)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Json<DocsCommitted>, ApiError> {
    let (dataset, caller) = resolve(
        &context,
        &headers,
        &(account, name),
        DatasetAction::Maintain,
    )
    .await?;
    let path = checked_path(&path)?;
    commit(
        &context,
        &dataset,
        caller,
        &DocsChange::remove_attachment(path),
    )
    .await
}

/// What an upload answers: where the file is, to link from a comment.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct FileView {
    path: String,
    sha3_256: String,
    size: usize,
    media_type: &'static str,
}

async fn upload_file(
    State(context): State<Arc<GovernanceContext>>,
    Path((account, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(axum::http::StatusCode, Json<FileView>), ApiError> {
    let path = (account, name);
    let (dataset, caller) = resolve(&context, &headers, &path, DatasetAction::Read).await?;
    // Readers who are signed in upload (as they comment); anonymous callers only where the
    // platform lets them write (an open node).
    if caller.account_id.is_none()
        && context
            .access
            .decide(&caller, &dataset.id().to_did_string(), DatasetAction::Write)
            .await?
            != AccessDecision::Allowed
    {
        return Err(ApiError::unauthenticated("sign in to upload files"));
    }
    let declared = headers
        .get(header::CONTENT_TYPE)
        .map(|value| value.to_str().unwrap_or("(not visible ASCII)"));
    let file = crate::files::check_upload(&body, declared, context.config.max_file_bytes)?;
    let key = file.info_key();
    let stored = dataset.get_info(&key).await.is_ok();
    if !stored {
        dataset
            .put_info(&key, body.clone())
            .await
            .map_err(GovernanceError::from)?;
    }
    let status = if stored {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::CREATED
    };
    Ok((
        status,
        Json(FileView {
            path: format!("/datasets/{}/{}/files/{}", path.0, path.1, file.to_name()),
            sha3_256: file.digest.clone(),
            size: body.len(),
            media_type: file.media_type(),
        }),
    ))
}

async fn download_file(
    State(context): State<Arc<GovernanceContext>>,
    Path((account, name, file)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (dataset, _) = resolve(&context, &headers, &(account, name), DatasetAction::Read).await?;
    let not_found = || ApiError::not_found(format!("file `{file}` not found"));
    let parsed = crate::files::FileName::parse(&file).ok_or_else(not_found)?;
    let bytes = match dataset.get_info(&parsed.info_key()).await {
        Ok(bytes) => bytes,
        Err(weir_dataset::StorageError::NotFound { .. }) => return Err(not_found()),
        Err(error) => return Err(GovernanceError::from(error).into()),
    };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(parsed.media_type()),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    // Images show inline; anything else downloads.
    let disposition = if parsed.media_type().starts_with("image/") {
        format!("inline; filename=\"{}\"", parsed.to_name())
    } else {
        format!("attachment; filename=\"{}\"", parsed.to_name())
    };
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    // Content-addressed: the same name is always the same bytes.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    Ok(response)
}

impl From<GovernanceError> for ApiError {
    fn from(error: GovernanceError) -> Self {
        let kind = match &error {
            GovernanceError::Invalid { .. } => ErrorKind::InvalidInput,
            GovernanceError::TooLarge { .. } => ErrorKind::PayloadTooLarge,
            GovernanceError::UnsupportedMediaType(_) => ErrorKind::UnsupportedMediaType,
            GovernanceError::NotFound { .. } => ErrorKind::NotFound,
            GovernanceError::Empty(_) => ErrorKind::Conflict,
            GovernanceError::Commit(weir_dataset::CommitError::TooManyConflicts { .. }) => {
                ErrorKind::Conflict
            }
            error if error.is_retryable() => ErrorKind::Retryable,
            _ => ErrorKind::Internal,
        };
        ApiError::new(kind, error.to_string())
    }
}
