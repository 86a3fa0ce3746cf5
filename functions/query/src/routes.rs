//! HTTP surface of the query function (kamu-node compatible paths).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use ed25519_dalek::SigningKey;
use serde::Deserialize;
use weir_function_runtime::{ApiError, Caller};
use weir_odf::{AccountName, DatasetName, Multihash};

use crate::api::{QueryRequest, VerifyRequest, run_query, verify};
use crate::error::QueryError;
use crate::execute::{QueryEngine, QueryOptions};
use crate::formats::{DataFormat, SchemaFormat, arrow_ipc_stream, parquet_file};
use crate::metadata::dataset_metadata;

pub struct QueryContext {
    pub engine: Arc<QueryEngine>,
    pub key: SigningKey,
}

pub fn router(context: Arc<QueryContext>) -> Router {
    let router = Router::new()
        .route("/query", post(post_query).get(get_query))
        .route("/verify", post(post_verify))
        .route("/{account}/{dataset}/tail", get(tail))
        .route("/{account}/{dataset}/metadata", get(metadata))
        .route("/{account}/{dataset}/refs/head", get(head_ref))
        .route("/{account}/{dataset}/blocks/{hash}", get(block))
        .route("/{account}/{dataset}/data/{hash}", get(data))
        .route("/{account}/{dataset}/checkpoints/{hash}", get(checkpoint))
        .with_state(context);
    weir_function_runtime::with_json_errors(router)
}

const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";
const PARQUET: &str = "application/vnd.apache.parquet";

fn accepts(headers: &HeaderMap, media_type: &str) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| {
            value
                .split(',')
                .any(|part| part.split(';').next().unwrap_or("").trim() == media_type)
        })
}

fn binary(content_type: &'static str, bytes: Bytes) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        bytes,
    )
        .into_response()
}

async fn answer(
    context: &QueryContext,
    headers: &HeaderMap,
    request: QueryRequest,
) -> Result<Response, ApiError> {
    let caller = caller_of(context, headers).await?;
    type Encoder =
        fn(&arrow::datatypes::SchemaRef, &[arrow::array::RecordBatch]) -> Result<Bytes, QueryError>;
    let encoders: [(&str, Encoder); 2] =
        [(ARROW_STREAM, arrow_ipc_stream), (PARQUET, parquet_file)];
    for (media_type, encode) in encoders {
        if accepts(headers, media_type) {
            let options = QueryOptions {
                caller: caller.clone(),
                skip: request.skip,
                limit: request.limit,
                ..Default::default()
            };
            let result = context.engine.execute(&request.query, &options).await?;
            let bytes = encode(&result.schema, &result.batches)?;
            let content_type = if media_type == ARROW_STREAM {
                ARROW_STREAM
            } else {
                PARQUET
            };
            return Ok(binary(content_type, bytes));
        }
    }
    let response = run_query(&context.engine, &context.key, request, &caller).await?;
    Ok(Json(response).into_response())
}

async fn post_query(
    State(context): State<Arc<QueryContext>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: QueryRequest = serde_json::from_slice(&body)
        .map_err(|error| QueryError::InvalidRequest(format!("request body: {error}")))?;
    answer(&context, &headers, request).await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GetQueryParameters {
    query: String,
    #[serde(default)]
    data_format: DataFormat,
    #[serde(default)]
    schema_format: SchemaFormat,
    skip: Option<u64>,
    limit: Option<u64>,
}

async fn get_query(
    State(context): State<Arc<QueryContext>>,
    headers: HeaderMap,
    parameters: Result<Query<GetQueryParameters>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(parameters) =
        parameters.map_err(|error| QueryError::InvalidRequest(error.body_text()))?;
    let mut request = QueryRequest::simple(parameters.query);
    request.data_format = parameters.data_format;
    request.schema_format = parameters.schema_format;
    request.skip = parameters.skip;
    request.limit = parameters.limit;
    answer(&context, &headers, request).await
}

async fn post_verify(
    State(context): State<Arc<QueryContext>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = caller_of(&context, &headers).await?;
    let request: VerifyRequest = serde_json::from_slice(&body)
        .map_err(|error| QueryError::InvalidRequest(format!("request body: {error}")))?;
    Ok(Json(verify(&context.engine, request, &caller).await?).into_response())
}

pub async fn caller_of(context: &QueryContext, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let authorization = weir_function_runtime::authorization_header(headers)?;
    context
        .engine
        .catalog
        .access
        .authenticate(authorization)
        .await
}

async fn resolve(
    context: &QueryContext,
    caller: &Caller,
    account: &str,
    name: &str,
) -> Result<weir_dataset::Dataset, ApiError> {
    let alias = format!("{account}/{name}");
    let not_found = || QueryError::DatasetNotFound(alias.clone());
    let account: AccountName = account.parse().map_err(|_| not_found())?;
    let name: DatasetName = name.parse().map_err(|_| not_found())?;
    let catalog = &context.engine.catalog;
    let id = catalog
        .store
        .resolve_alias(&account, &name)
        .await
        .map_err(|error| QueryError::Internal(error.to_string()))?
        .ok_or_else(not_found)?;
    let dataset_alias = weir_odf::DatasetAlias::new(Some(account), name);
    catalog.check_read(caller, &dataset_alias, &id).await?;
    Ok(catalog.store.dataset(&id))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TailParameters {
    #[serde(default = "default_tail")]
    limit: u64,
    #[serde(default)]
    data_format: DataFormat,
}

fn default_tail() -> u64 {
    20
}

async fn tail(
    State(context): State<Arc<QueryContext>>,
    Path((account, dataset)): Path<(String, String)>,
    parameters: Result<Query<TailParameters>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(parameters) =
        parameters.map_err(|error| QueryError::InvalidRequest(error.body_text()))?;
    let caller = caller_of(&context, &headers).await?;
    resolve(&context, &caller, &account, &dataset).await?;
    // Account and dataset names were validated by `resolve`: letters, digits, `-` and `.` only.
    let table = format!("\"{account}/{dataset}\"");
    // More rows than one response may carry would be refused anyway; SQL limits are i64.
    let limit = parameters
        .limit
        .min(context.engine.config.max_result_rows)
        .min(i64::MAX as u64);
    let mut request = QueryRequest::simple(format!(
        "SELECT * FROM (SELECT * FROM {table} ORDER BY \"offset\" DESC LIMIT {limit}) ORDER BY \"offset\""
    ));
    request.data_format = parameters.data_format;
    let response = run_query(&context.engine, &context.key, request, &caller).await?;
    Ok(Json(response).into_response())
}

async fn metadata(
    State(context): State<Arc<QueryContext>>,
    Path((account, dataset)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = caller_of(&context, &headers).await?;
    let dataset = resolve(&context, &caller, &account, &dataset).await?;
    Ok(Json(
        dataset_metadata(
            &dataset,
            &format!(
                "{account}/{dataset_name}",
                dataset_name = dataset_name(&dataset).await
            ),
        )
        .await?,
    )
    .into_response())
}

async fn dataset_name(dataset: &weir_dataset::Dataset) -> String {
    match dataset.get_info("alias").await {
        Ok(bytes) => String::from_utf8_lossy(&bytes)
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string(),
        Err(_) => String::new(),
    }
}

fn storage_error(error: weir_dataset::StorageError) -> ApiError {
    match error {
        weir_dataset::StorageError::NotFound { .. } => ApiError::not_found("object not found"),
        other => ApiError::internal(other.to_string()),
    }
}

fn parse_hash(text: &str) -> Result<Multihash, ApiError> {
    text.parse()
        .map_err(|error| ApiError::invalid_input(format!("invalid hash `{text}`: {error}")))
}

async fn head_ref(
    State(context): State<Arc<QueryContext>>,
    Path((account, dataset)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = caller_of(&context, &headers).await?;
    let dataset = resolve(&context, &caller, &account, &dataset).await?;
    let head = dataset
        .head()
        .await
        .map_err(storage_error)?
        .ok_or_else(|| ApiError::not_found("dataset has no head"))?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain")],
        head.hash.to_string(),
    )
        .into_response())
}

/// Which content-addressed object of the simple transfer protocol is asked for.
#[derive(Clone, Copy)]
enum ObjectKind {
    Block,
    Data,
    Checkpoint,
}

async fn object(
    context: &QueryContext,
    headers: &HeaderMap,
    (account, dataset, hash): (String, String, String),
    kind: ObjectKind,
) -> Result<Response, ApiError> {
    let caller = caller_of(context, headers).await?;
    let dataset = resolve(context, &caller, &account, &dataset).await?;
    let hash = parse_hash(&hash)?;
    let bytes = match kind {
        ObjectKind::Block => dataset.get_block_bytes(&hash).await,
        ObjectKind::Data => dataset.get_data(&hash).await,
        ObjectKind::Checkpoint => dataset.get_checkpoint(&hash).await,
    }
    .map_err(storage_error)?;
    Ok(binary("application/octet-stream", bytes))
}

async fn block(
    State(context): State<Arc<QueryContext>>,
    Path(path): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    object(&context, &headers, path, ObjectKind::Block).await
}

async fn data(
    State(context): State<Arc<QueryContext>>,
    Path(path): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    object(&context, &headers, path, ObjectKind::Data).await
}

async fn checkpoint(
    State(context): State<Arc<QueryContext>>,
    Path(path): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    object(&context, &headers, path, ObjectKind::Checkpoint).await
}
