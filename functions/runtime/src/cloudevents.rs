//! CloudEvents over HTTP (binary and structured content modes, spec 1.0), so that Knative
//! Eventing brokers, channels and sources can push to a function deployed as a Knative Service.
//!
//! Each event becomes a [`QueueMessage`]: `<source> <id>` is its id, its extension attributes
//! and `time` its attributes, its data its body. Events that arrive together are handed to the
//! handler as one batch ([`Combiner`]), and each request is answered only once its event is
//! handled: 200 when done, 503 (with `Retry-After`) when it should come again, 400 with the
//! reason when it never can (Knative retries 404, 409 and 429, so a permanent refusal is 400).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::sync::{mpsc, oneshot};

use crate::AccessPolicy;
use crate::messages::{Disposition, MessageHandler, QueueMessage};

/// The origin of messages that came as CloudEvents.
pub const ORIGIN: &str = "cloudevents";

/// Collects messages submitted at about the same time into batches for one handler.
#[derive(Clone)]
pub struct Combiner {
    sender: mpsc::Sender<(QueueMessage, oneshot::Sender<Disposition>)>,
}

impl Combiner {
    /// Batches of at most `max_messages`, waiting at most `max_wait` after the first message.
    pub fn spawn(
        handler: Arc<dyn MessageHandler>,
        max_messages: usize,
        max_wait: Duration,
    ) -> Self {
        let max_messages = max_messages.max(1);
        let (sender, mut receiver) =
            mpsc::channel::<(QueueMessage, oneshot::Sender<Disposition>)>(max_messages * 4);
        tokio::spawn(async move {
            while let Some(batch) =
                crate::messages::next_batch(&mut receiver, max_messages, max_wait).await
            {
                let (messages, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                let dispositions = handler.handle(&messages).await;
                for (index, reply) in replies.into_iter().enumerate() {
                    let disposition = dispositions
                        .get(index)
                        .cloned()
                        .unwrap_or_else(|| Disposition::Retry("no answer".to_string()));
                    let _ = reply.send(disposition);
                }
            }
        });
        Self { sender }
    }

    /// Hands `message` over and waits for what became of it.
    pub async fn submit(&self, message: QueueMessage) -> Disposition {
        let (reply, answer) = oneshot::channel();
        if self.sender.send((message, reply)).await.is_err() {
            return Disposition::Retry("the function is shutting down".to_string());
        }
        answer
            .await
            .unwrap_or_else(|_| Disposition::Retry("the batch was dropped".to_string()))
    }
}

/// Who an event without an `Authorization` header comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unauthenticated {
    /// An anonymous caller, with what anonymous callers may do.
    Anonymous,
    /// The consumer's own identity: for Knative Eventing inside a cluster whose network policy
    /// lets only the broker reach the function.
    AsConsumer,
}

#[derive(Clone)]
struct Receiver {
    combiner: Combiner,
    access: Arc<dyn AccessPolicy>,
    unauthenticated: Unauthenticated,
}

/// `POST {path}` taking CloudEvents into `combiner`. An event with a bearer token is handled
/// as its caller (401 when the token is refused).
pub fn router(
    path: &str,
    combiner: Combiner,
    access: Arc<dyn AccessPolicy>,
    unauthenticated: Unauthenticated,
) -> Router {
    let router = Router::new()
        .route(path, post(receive))
        .with_state(Receiver {
            combiner,
            access,
            unauthenticated,
        });
    crate::with_json_errors(router)
}

/// Largest event taken (it is held in memory until its batch is committed); larger ones answer
/// 413. Bigger data goes through an S3 object and its notification.
pub const MAX_EVENT_BYTES: usize = 16 << 20;

async fn receive(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let too_large = || {
        crate::ApiError::new(
            crate::ErrorKind::PayloadTooLarge,
            format!("an event is at most {MAX_EVENT_BYTES} bytes"),
        )
        .into_response()
    };
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<usize>().ok());
    if announced.is_some_and(|length| length > MAX_EVENT_BYTES) {
        return too_large();
    }
    let Ok(body) = axum::body::to_bytes(body, MAX_EVENT_BYTES).await else {
        return too_large();
    };
    let mut message = match parse(&headers, body) {
        Ok(message) => message,
        Err(reason) => return answer(Disposition::Reject(reason)),
    };
    let authorization = match crate::authorization_header(&headers) {
        Ok(authorization) => authorization,
        Err(error) => return error.into_response(),
    };
    message.caller = match (authorization, receiver.unauthenticated) {
        (None, Unauthenticated::AsConsumer) => None,
        (authorization, _) => match receiver.access.authenticate(authorization).await {
            Ok(caller) => Some(caller),
            Err(error) => return error.into_response(),
        },
    };
    answer(receiver.combiner.submit(message).await)
}

fn answer(disposition: Disposition) -> Response {
    match disposition {
        Disposition::Done => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "committed"})),
        )
            .into_response(),
        Disposition::Retry(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            axum::Json(serde_json::json!({"error": reason, "retryable": true})),
        )
            .into_response(),
        Disposition::Reject(reason) => (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"error": reason, "retryable": false})),
        )
            .into_response(),
    }
}

/// Attributes every event has.
const REQUIRED: [&str; 4] = ["specversion", "id", "source", "type"];

/// Reads an event in binary mode (`ce-*` headers) or structured mode
/// (`application/cloudevents+json`). Errors name the problem.
pub fn parse(headers: &HeaderMap, body: Bytes) -> Result<QueueMessage, String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let mut attributes = std::collections::BTreeMap::new();
    let data;
    if essence == "application/cloudevents+json" {
        let event: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&body)
            .map_err(|error| format!("structured CloudEvent: not a JSON object: {error}"))?;
        let mut body_data = None;
        for (name, value) in event {
            match (name.as_str(), value) {
                ("data", serde_json::Value::String(text)) => body_data = Some(Bytes::from(text)),
                ("data", value) => body_data = Some(Bytes::from(value.to_string())),
                ("data_base64", serde_json::Value::String(text)) => {
                    use base64::Engine;
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(text.as_bytes())
                        .map_err(|error| format!("`data_base64` is not base64: {error}"))?;
                    body_data = Some(Bytes::from(decoded));
                }
                (name, serde_json::Value::String(text)) => {
                    attributes.insert(name.to_ascii_lowercase(), text);
                }
                (name, other) => {
                    attributes.insert(name.to_ascii_lowercase(), other.to_string());
                }
            }
        }
        data = body_data.unwrap_or_default();
    } else if essence == "application/cloudevents-batch+json" {
        return Err("batched CloudEvents are not taken: send each event on its own".to_string());
    } else {
        for (name, value) in headers {
            if let Some(attribute) = name.as_str().strip_prefix("ce-") {
                let value = value
                    .to_str()
                    .map_err(|_| format!("header `{name}` is not visible ASCII"))?;
                attributes.insert(attribute.to_string(), value.to_string());
            }
        }
        if !content_type.is_empty() {
            attributes.insert("datacontenttype".to_string(), content_type);
        }
        data = body;
    }
    for required in REQUIRED {
        if attributes.get(required).is_none_or(String::is_empty) {
            return Err(format!(
                "not a CloudEvent: attribute `{required}` is missing (binary mode sends `ce-{required}`)"
            ));
        }
    }
    if attributes["specversion"] != "1.0" {
        return Err(format!(
            "CloudEvents spec version `{}` is not taken: use 1.0",
            attributes["specversion"]
        ));
    }
    let sent_at = attributes.get("time").and_then(|time| {
        chrono::DateTime::parse_from_rfc3339(time)
            .ok()
            .map(|time| SystemTime::from(time.with_timezone(&chrono::Utc)))
    });
    Ok(QueueMessage {
        message_id: format!("{} {}", attributes["source"], attributes["id"]),
        body: data,
        attributes,
        group_id: None,
        origin: ORIGIN.to_string(),
        subject: None,
        sequence: None,
        delivery_count: 1,
        sent_at,
        caller: None,
        fresh: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_structured_events_become_the_same_message() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("ce-specversion", "1.0"),
            ("ce-id", "42"),
            ("ce-source", "/sensors"),
            ("ce-type", "dev.weir.ingest.v1"),
            ("ce-odfdataset", "alice/temps"),
            ("content-type", "application/x-ndjson"),
        ] {
            headers.insert(name, value.parse().unwrap());
        }
        let binary = parse(&headers, Bytes::from_static(b"{\"t\":1}")).unwrap();
        let mut structured_headers = HeaderMap::new();
        structured_headers.insert(
            header::CONTENT_TYPE,
            "application/cloudevents+json".parse().unwrap(),
        );
        let structured = parse(
            &structured_headers,
            Bytes::from(
                r#"{"specversion":"1.0","id":"42","source":"/sensors","type":"dev.weir.ingest.v1",
                   "odfdataset":"alice/temps","datacontenttype":"application/x-ndjson",
                   "data":"{\"t\":1}"}"#,
            ),
        )
        .unwrap();
        assert_eq!(binary.message_id, "/sensors 42");
        assert_eq!(binary, structured);
        assert_eq!(binary.attributes["odfdataset"], "alice/temps");
    }

    #[test]
    fn an_event_missing_a_required_attribute_is_refused_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert("ce-specversion", "1.0".parse().unwrap());
        headers.insert("ce-id", "1".parse().unwrap());
        let error = parse(&headers, Bytes::new()).unwrap_err();
        assert!(error.contains("`source`"), "{error}");
        let mut structured = HeaderMap::new();
        structured.insert(
            header::CONTENT_TYPE,
            "application/cloudevents+json".parse().unwrap(),
        );
        assert!(parse(&structured, Bytes::from_static(b"[1]")).is_err());
    }
}
