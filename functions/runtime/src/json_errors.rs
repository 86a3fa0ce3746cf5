//! Every error answer in the `{"error","message"}` shape, including those no handler wrote:
//! extractor rejections (bad query strings, missing parameters, bodies over a limit), unknown
//! routes and methods, and over-long URLs.

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Longest URL (path and query) a request may have; longer answers 414.
pub const MAX_URL_BYTES: usize = 16 << 10;

/// Most bytes of a non-JSON error body kept as the message.
const MAX_MESSAGE_BYTES: usize = 4 << 10;

/// Wraps `router` so that every 4xx/5xx answer is JSON and over-long URLs answer 414.
pub fn with_json_errors(router: Router) -> Router {
    router.layer(axum::middleware::from_fn(json_errors))
}

async fn json_errors(request: Request, next: Next) -> Response {
    let url_length = request
        .uri()
        .path_and_query()
        .map_or(0, |path| path.as_str().len());
    if url_length > MAX_URL_BYTES {
        return error_response(
            StatusCode::URI_TOO_LONG,
            format!("the URL is {url_length} bytes; the limit is {MAX_URL_BYTES} bytes"),
        );
    }
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_MESSAGE_BYTES)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        parts
            .status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_string()
    } else {
        text
    };
    let mut json = error_response(parts.status, message);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            json.headers_mut().insert(name.clone(), value.clone());
        }
    }
    json
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json") || value.contains("+json"))
}

/// The error code of a status no handler chose a kind for.
pub fn code_for_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::URI_TOO_LONG => "uri_too_long",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => "retryable",
        status if status.is_server_error() => "internal",
        _ => "invalid_input",
    }
}

fn error_response(status: StatusCode, message: String) -> Response {
    let body = serde_json::json!({ "error": code_for_status(status), "message": message });
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    *response.body_mut() = Body::from(body.to_string());
    response
}
