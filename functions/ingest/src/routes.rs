//! HTTP surface of the ingest function (kamu-node compatible path).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::post;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Deserialize;
use weir_function_runtime::ApiError;

use crate::error::IngestError;
use crate::read::MediaFormat;
use crate::service::{IngestContext, IngestRequest, IngestResponse};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestQuery {
    source_name: Option<String>,
}

pub fn router(context: Arc<IngestContext>) -> Router {
    let router = Router::new()
        .route("/{account}/{dataset}/ingest", post(ingest))
        .layer(DefaultBodyLimit::disable())
        .with_state(context);
    weir_function_runtime::with_json_errors(router)
}

/// Longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The `Idempotency-Key` header: absent, or 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, IngestError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bad = |message: &str| IngestError::BadIdempotencyKey(message.to_string());
    let key = value
        .to_str()
        .map_err(|_| bad("it must be visible ASCII characters"))?
        .trim();
    if key.is_empty() {
        return Err(bad("it is empty; send a unique key per request, or none"));
    }
    if key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(bad(&format!(
            "it is {} characters long; the limit is {MAX_IDEMPOTENCY_KEY}",
            key.len()
        )));
    }
    Ok(Some(key.to_string()))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

async fn ingest(
    State(context): State<Arc<IngestContext>>,
    Path((account, dataset)): Path<(String, String)>,
    Query(query): Query<IngestQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IngestResponse>, ApiError> {
    let content_type = header(&headers, "content-type").unwrap_or_default();
    let format = MediaFormat::from_content_type(content_type)?;
    let limit = context.config.max_body_bytes;
    if let Some(length) = header(&headers, "content-length").and_then(|v| v.parse::<u64>().ok())
        && length > limit
    {
        return Err(IngestError::TooLarge { limit }.into());
    }
    let event_time = match header(&headers, "odf-event-time") {
        None => None,
        Some(value) => Some(
            DateTime::parse_from_rfc3339(value)
                .map_err(|_| IngestError::BadEventTimeHeader(value.to_string()))?
                .with_timezone(&Utc),
        ),
    };
    let caller = context
        .access
        .authenticate(weir_function_runtime::authorization_header(&headers)?)
        .await?;
    let request = IngestRequest {
        caller,
        account,
        dataset,
        source_name: query.source_name,
        format,
        event_time,
        idempotency_key: idempotency_key(&headers)?,
    };
    let mut received = 0u64;
    let mut data = body.into_data_stream();
    let stream = (&mut data).map(|chunk| {
        let chunk = chunk.map_err(|error| IngestError::Malformed {
            format: "HTTP",
            message: format!("body could not be read: {error}"),
        })?;
        received += chunk.len() as u64;
        if received > limit {
            return Err(IngestError::TooLarge { limit });
        }
        Ok(chunk)
    });
    match context.ingest(request, stream).await {
        Ok(response) => Ok(Json(response)),
        Err(error) => {
            if !matches!(error, IngestError::TooLarge { .. }) {
                drain_rest(&mut data, limit.saturating_sub(received)).await;
            }
            Err(error.into())
        }
    }
}

/// Reads and drops what the client is still sending after a push was rejected part way, so
/// that the client gets to read the 4xx instead of a connection reset in the middle of its
/// upload. Bounded by what is left of the body limit and by [`DRAIN_TIME`]; past either, the
/// connection is closed as before.
async fn drain_rest(data: &mut axum::body::BodyDataStream, mut budget: u64) {
    let deadline = tokio::time::Instant::now() + DRAIN_TIME;
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, data.next()).await {
        match budget.checked_sub(chunk.len() as u64) {
            Some(left) => budget = left,
            None => return,
        }
    }
}

const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);
