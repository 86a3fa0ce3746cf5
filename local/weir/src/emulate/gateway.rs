//! An API-Gateway-style front: routes each request to the function the SAM template routes it
//! to (`infra/lambda/template.yaml`), as an HTTP API v2 event, and turns the function's
//! response document back into HTTP. Everything else goes to the control plane, as over its own
//! host name in a deployment.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use super::lambda::LambdaFunction;

/// API Gateway's payload limit.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Ingest,
    Query,
    Governance,
    Transform,
    ControlPlane,
}

/// The function that serves `method path`, by the template's routes.
pub fn route(method: &str, path: &str) -> Target {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["query"] | ["verify"] => Target::Query,
        ["events"] => Target::Ingest,
        ["datasets", _, _, "docs", ..] | ["datasets", _, _, "files", ..] => Target::Governance,
        ["datasets", _, _, "transform" | "reset" | "verify"] => Target::Transform,
        [first, ..] if CONTROL_PLANE.contains(first) => Target::ControlPlane,
        ["admin", "sweep" | "reindex"] => Target::ControlPlane,
        [_, _, "ingest"] if method == "POST" => Target::Ingest,
        [_, _, "blocks" | "checkpoints" | "data", _]
        | [_, _, "metadata" | "tail"]
        | [_, _, "refs", "head"] => Target::Query,
        _ => Target::ControlPlane,
    }
}

const CONTROL_PLANE: &[&str] = &[
    "datasets",
    "accounts",
    "auth",
    "access",
    "commits",
    "devices",
    "flows",
    "system",
    "tasks",
    "webhooks",
    "graphql",
    "openapi.json",
    "leader",
    "healthz",
    "readyz",
    "metrics",
];

pub struct Gateway {
    pub ingest: Arc<LambdaFunction>,
    pub query: Arc<LambdaFunction>,
    pub governance: Arc<LambdaFunction>,
    pub transform: Arc<LambdaFunction>,
    pub control_plane: String,
    pub client: reqwest::Client,
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": "gateway", "message": message})),
    )
        .into_response()
}

/// The HTTP API v2 event of a request.
pub fn event(
    method: &str,
    path: &str,
    query: &str,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Value {
    let mut merged: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).to_string();
        merged
            .entry(name.as_str().to_string())
            .and_modify(|existing| {
                existing.push(',');
                existing.push_str(&value);
            })
            .or_insert(value);
    }
    let mut parameters = serde_json::Map::new();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        parameters.insert(key.to_string(), Value::String(value.to_string()));
    }
    let (body, encoded) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_string(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(body), true),
    };
    let now = chrono::Utc::now();
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": merged,
        "queryStringParameters": parameters,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "weir-emulator",
            "domainName": merged.get("host").cloned().unwrap_or_default(),
            "domainPrefix": "weir",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                     "userAgent": merged.get("user-agent").cloned().unwrap_or_default()},
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "body": body,
        "isBase64Encoded": encoded,
    })
}

/// The HTTP response a function's answer document stands for.
pub fn response(answer: &[u8]) -> Response {
    let Ok(document) = serde_json::from_slice::<Value>(answer) else {
        return error(
            StatusCode::BAD_GATEWAY,
            "the function answered something that is not a response document",
        );
    };
    let status = document["statusCode"]
        .as_u64()
        .and_then(|code| StatusCode::from_u16(code as u16).ok())
        .unwrap_or(StatusCode::OK);
    let body = document["body"].as_str().unwrap_or_default();
    let body = if document["isBase64Encoded"] == true {
        match base64::engine::general_purpose::STANDARD.decode(body) {
            Ok(bytes) => bytes,
            Err(_) => {
                return error(
                    StatusCode::BAD_GATEWAY,
                    "the function's base64 body does not decode",
                );
            }
        }
    } else {
        body.as_bytes().to_vec()
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    if let Some(headers) = document["headers"].as_object() {
        for (name, value) in headers {
            if let (Ok(name), Some(Ok(value))) = (
                HeaderName::from_bytes(name.as_bytes()),
                value.as_str().map(HeaderValue::from_str),
            ) {
                response.headers_mut().append(name, value);
            }
        }
    }
    if let Some(cookies) = document["cookies"].as_array() {
        for cookie in cookies.iter().filter_map(Value::as_str) {
            if let Ok(value) = HeaderValue::from_str(cookie) {
                response.headers_mut().append("set-cookie", value);
            }
        }
    }
    response
}

pub async fn handle(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body): Result<Bytes, _> = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the body is larger than the gateway's 10 MiB limit",
        );
    };
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let method = parts.method.as_str().to_string();
    let function = match route(&method, &path) {
        Target::Ingest => &gateway.ingest,
        Target::Query => &gateway.query,
        Target::Governance => &gateway.governance,
        Target::Transform => &gateway.transform,
        Target::ControlPlane => return proxy(&gateway, parts, &path, &query, body).await,
    };
    let event = event(&method, &path, &query, &parts.headers, &body);
    match function.invoke(event.to_string()).await {
        Ok(answer) => response(&answer),
        Err(message) => {
            tracing::warn!(function = %function.name, %message, "function error");
            error(
                StatusCode::BAD_GATEWAY,
                &format!("{} failed: {message}", function.name),
            )
        }
    }
}

async fn proxy(
    gateway: &Gateway,
    parts: axum::http::request::Parts,
    path: &str,
    query: &str,
    body: Bytes,
) -> Response {
    let url = if query.is_empty() {
        format!("{}{path}", gateway.control_plane)
    } else {
        format!("{}{path}?{query}", gateway.control_plane)
    };
    let mut request = gateway.client.request(parts.method.clone(), url).body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    match request.send().await {
        Ok(answer) => {
            let status = answer.status();
            let headers = answer.headers().clone();
            let bytes = match answer.bytes().await {
                Ok(bytes) => bytes,
                Err(error_) => {
                    return error(
                        StatusCode::BAD_GATEWAY,
                        &format!("the control plane's answer broke off: {error_}"),
                    );
                }
            };
            let mut response = Response::new(Body::from(bytes));
            *response.status_mut() = status;
            for (name, value) in &headers {
                if name != "transfer-encoding" && name != "content-length" {
                    response.headers_mut().append(name, value.clone());
                }
            }
            response
        }
        Err(error_) => error(
            StatusCode::BAD_GATEWAY,
            &format!("the control plane cannot be reached: {error_}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::{Target, response, route};

    async fn body_of(answer: axum::response::Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(answer.into_body(), 1 << 20)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// A function that answers something other than a response document, or a base64 body that
    /// does not decode, is the gateway's 502 with a JSON body, as API Gateway answers.
    #[tokio::test]
    async fn a_broken_function_answer_is_a_502_naming_the_problem() {
        for (answer, problem) in [
            (&b"not json"[..], "not a response document"),
            (
                &br#"{"statusCode":200,"isBase64Encoded":true,"body":"%%%"}"#[..],
                "base64",
            ),
        ] {
            let answer = response(answer);
            assert_eq!(answer.status(), StatusCode::BAD_GATEWAY);
            let body = body_of(answer).await;
            assert_eq!(body["error"], "gateway");
            let message = body["message"].as_str().unwrap();
            assert!(message.contains(problem), "{message}");
        }
    }

    /// A response document becomes its status, headers, cookies and (decoded) body.
    #[tokio::test]
    async fn a_response_document_becomes_http() {
        let answer = response(
            br#"{"statusCode":201,"headers":{"content-type":"application/json","bad\nname":"x"},
                 "cookies":["a=1","b=2"],"isBase64Encoded":true,"body":"eyJvayI6dHJ1ZX0="}"#,
        );
        assert_eq!(answer.status(), StatusCode::CREATED);
        assert_eq!(answer.headers()["content-type"], "application/json");
        let cookies: Vec<_> = answer.headers().get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert_eq!(body_of(answer).await, serde_json::json!({"ok": true}));
    }

    /// Every HTTP route of the SAM template reaches, in the emulator, the function the template
    /// sends it to (so the emulation stays the deployed shape).
    #[test]
    fn the_emulator_routes_as_the_sam_template_does() {
        let template = include_str!("../../../../infra/lambda/template.yaml");
        let mut function = None;
        let mut method = String::new();
        let mut checked = 0;
        for line in template.lines() {
            let trimmed = line.trim();
            if !line.starts_with("    ") && line.starts_with("  ") && trimmed.ends_with(':') {
                function = match trimmed {
                    "IngestFunction:" => Some(Target::Ingest),
                    "QueryFunction:" => Some(Target::Query),
                    "GovernanceFunction:" => Some(Target::Governance),
                    "TransformFunction:" => Some(Target::Transform),
                    _ => None,
                };
            }
            if let Some(value) = trimmed.strip_prefix("Method: ") {
                method = if value == "ANY" {
                    "GET".to_string()
                } else {
                    value.to_string()
                };
            }
            if let (Some(path), Some(target)) = (trimmed.strip_prefix("Path: "), function) {
                let concrete = path
                    .replace("{proxy+}", "notes/README.md")
                    .replace("{account}", "alice")
                    .replace("{dataset}", "trips")
                    .replace("{hash}", "f1220abc")
                    .replace("{file}", "f1220abc.png");
                assert_eq!(route(&method, &concrete), target, "{method} {path}");
                checked += 1;
            }
        }
        assert!(
            checked >= 15,
            "the template's routes were found ({checked})"
        );
    }

    #[test]
    fn routes_follow_the_sam_template() {
        for (method, path, target) in [
            ("POST", "/admin/sensor.temp/ingest", Target::Ingest),
            ("POST", "/admin/sweep", Target::ControlPlane),
            ("POST", "/events", Target::Ingest),
            ("POST", "/query", Target::Query),
            ("GET", "/admin/sensor.temp/tail", Target::Query),
            ("GET", "/admin/sensor.temp/refs/head", Target::Query),
            ("GET", "/admin/sensor.temp/blocks/f1220abc", Target::Query),
            (
                "GET",
                "/datasets/admin/sensor.temp/docs",
                Target::Governance,
            ),
            (
                "PUT",
                "/datasets/admin/sensor.temp/docs/attachments/README.md",
                Target::Governance,
            ),
            (
                "POST",
                "/datasets/admin/sensor.temp/files",
                Target::Governance,
            ),
            (
                "GET",
                "/datasets/admin/sensor.hourly/transform",
                Target::Transform,
            ),
            (
                "POST",
                "/datasets/admin/sensor.hourly/verify",
                Target::Transform,
            ),
            ("POST", "/datasets", Target::ControlPlane),
            (
                "GET",
                "/datasets/admin/sensor.temp/blocks",
                Target::ControlPlane,
            ),
            ("GET", "/accounts/me/tokens", Target::ControlPlane),
            ("POST", "/graphql", Target::ControlPlane),
            ("GET", "/admin/sensor.temp/ingest", Target::ControlPlane),
        ] {
            assert_eq!(route(method, path), target, "{method} {path}");
        }
    }
}
