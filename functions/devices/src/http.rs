//! `POST /kp1/{appVersionName}/dcx/{endpointToken}/json`: data collection over HTTP. Concurrent
//! requests are committed together (within `max_batch_wait_millis`), each answered after its
//! commit: 200 `{}`, or the failure's status with `{"statusCode", "reasonPhrase"}`, or 503 with
//! `Retry-After` when storage or the registry is unreachable.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use weir_function_runtime::messages::next_batch;

use crate::handler::DeviceIngest;
use crate::protocol::{DeviceRequest, Failure, Outcome};

type Submission = (DeviceRequest, oneshot::Sender<Outcome>);

pub fn router(ingest: Arc<DeviceIngest>, max_batch: usize, wait: Duration) -> Router {
    let limit = ingest.max_payload_bytes;
    let (sender, mut receiver) = mpsc::channel::<Submission>(max_batch.max(1) * 4);
    tokio::spawn(async move {
        while let Some(batch) = next_batch(&mut receiver, max_batch, wait).await {
            let (requests, answers): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            let outcomes = ingest.handle(&requests).await;
            for (answer, outcome) in answers.into_iter().zip(outcomes) {
                let _ = answer.send(outcome);
            }
        }
    });
    Router::new()
        .route("/kp1/{version}/dcx/{token}/json", post(collect))
        .layer(DefaultBodyLimit::max(limit))
        .with_state((sender, limit))
}

async fn collect(
    State((sender, limit)): State<(mpsc::Sender<Submission>, usize)>,
    Path((version, token)): Path<(String, String)>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return failed(Failure::new(
                413,
                format!("the payload is over the limit of {limit} bytes"),
            ));
        }
        Err(rejection) => return failed(Failure::new(400, rejection.body_text())),
    };
    let request = DeviceRequest {
        version,
        token,
        request_id: None,
        payload: body,
        redelivered: false,
    };
    let (answer, outcome) = oneshot::channel();
    if sender.send((request, answer)).await.is_err() {
        return unavailable("the device ingest is shutting down");
    }
    match outcome.await {
        Ok(Outcome::Committed) => (StatusCode::OK, Json(serde_json::json!({}))).into_response(),
        Ok(Outcome::Failed(failure)) => failed(failure),
        Ok(Outcome::Retry(reason)) => unavailable(&reason),
        Err(_) => unavailable("the device ingest is shutting down"),
    }
}

fn failed(failure: Failure) -> Response {
    let status = StatusCode::from_u16(failure.status_code).unwrap_or(StatusCode::BAD_REQUEST);
    (status, Json(failure)).into_response()
}

fn unavailable(reason: &str) -> Response {
    let mut response = failed(Failure::new(503, format!("try again: {reason}")));
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}
