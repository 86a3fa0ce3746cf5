//! Functions driven by queue messages as well as by HTTP. A batch of messages goes to a
//! [`MessageHandler`], which answers for each whether it is done or must come back; in Lambda,
//! an SQS event is answered with a partial batch response (`batchItemFailures`), so that only
//! the messages that failed are delivered again. For FIFO queues, the first failure of a
//! message group fails every later message of that group too, so a group's order holds.
//!
//! One Lambda serves both: HTTP events (API Gateway, ALB, function URLs) go to the router as
//! before, SQS events to the handler.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::SqsEvent;
use axum::Router;
use bytes::Bytes;
use lambda_http::request::LambdaRequest;
use lambda_http::tower::ServiceExt;
use lambda_http::{Adapter, LambdaEvent};

/// One message of a batch, whatever queue it came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueMessage {
    /// The transport's id of the message: the same on every delivery of it.
    pub message_id: String,
    pub body: Bytes,
    /// String message attributes (SQS), headers (NATS, names in lower case) or extension
    /// attributes (CloudEvents).
    pub attributes: BTreeMap<String, String>,
    /// FIFO queues: the message group, within which order is kept.
    pub group_id: Option<String>,
    /// Where the message came from: `jetstream/<stream>`, `sqs/<queue>`, `cloudevents`.
    pub origin: String,
    /// The NATS subject it was published to.
    pub subject: Option<String>,
    /// Its place in an ordered log (the JetStream stream sequence).
    pub sequence: Option<u64>,
    /// 1 on the first delivery; more when it came back (a failure, a crash before the ack).
    pub delivery_count: u32,
    /// When the producer sent it, when the transport says.
    pub sent_at: Option<SystemTime>,
    /// Who sent it, when the transport authenticates its producers (CloudEvents with a bearer
    /// token); `None` when the consumer's own identity applies.
    pub caller: Option<crate::Caller>,
    /// The transport vouches that no earlier delivery of this message was handled (an MQTT
    /// publish without its DUP flag): its id is recorded with its commit but not looked up.
    pub fresh: bool,
}

/// The next batch from `receiver`: waits for a first item, then takes more until `max` items or
/// `wait` after the first. `None` once the channel is closed and empty.
pub async fn next_batch<T>(
    receiver: &mut tokio::sync::mpsc::Receiver<T>,
    max: usize,
    wait: Duration,
) -> Option<Vec<T>> {
    let first = receiver.recv().await?;
    let mut batch = vec![first];
    let deadline = tokio::time::Instant::now() + wait;
    while batch.len() < max.max(1) {
        match tokio::time::timeout_at(deadline, receiver.recv()).await {
            Ok(Some(next)) => batch.push(next),
            Ok(None) | Err(_) => break,
        }
    }
    Some(batch)
}

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Handled: not to come back.
    Done,
    /// To be delivered again (a transient failure), with why.
    Retry(String),
    /// Can never be handled: to the dead-letter destination with the reason, and not again.
    Reject(String),
}

impl Disposition {
    pub fn is_done(&self) -> bool {
        matches!(self, Self::Done)
    }
}

#[async_trait::async_trait]
pub trait MessageHandler: Send + Sync {
    /// Handles a batch in order, answering one disposition per message.
    async fn handle(&self, messages: &[QueueMessage]) -> Vec<Disposition>;
}

/// The ids of the messages to deliver again: those that failed, every later message of a FIFO
/// group after its first failure, and any message the handler gave no answer for.
pub fn messages_to_retry(messages: &[QueueMessage], dispositions: &[Disposition]) -> Vec<String> {
    let mut failed_groups = BTreeSet::new();
    let mut retry = Vec::new();
    for (index, message) in messages.iter().enumerate() {
        let failed = !dispositions.get(index).is_some_and(Disposition::is_done)
            || message
                .group_id
                .as_ref()
                .is_some_and(|group| failed_groups.contains(group));
        if failed {
            if let Some(group) = &message.group_id {
                failed_groups.insert(group.clone());
            }
            retry.push(message.message_id.clone());
        }
    }
    retry
}

/// The messages of an SQS event.
pub fn sqs_messages(event: &SqsEvent) -> Vec<QueueMessage> {
    event
        .records
        .iter()
        .map(|record| {
            let queue = record
                .event_source_arn
                .as_deref()
                .and_then(|arn| arn.rsplit(':').next())
                .unwrap_or_default();
            let number = |name: &str| {
                record
                    .attributes
                    .get(name)
                    .and_then(|value| value.parse::<u64>().ok())
            };
            QueueMessage {
                message_id: record.message_id.clone().unwrap_or_default(),
                body: Bytes::from(record.body.clone().unwrap_or_default()),
                attributes: record
                    .message_attributes
                    .iter()
                    .filter_map(|(name, value)| {
                        value.string_value.clone().map(|text| (name.clone(), text))
                    })
                    .collect(),
                group_id: record.attributes.get("MessageGroupId").cloned(),
                origin: format!("sqs/{queue}"),
                subject: None,
                sequence: None,
                delivery_count: number("ApproximateReceiveCount").unwrap_or(1) as u32,
                sent_at: number("SentTimestamp")
                    .map(|millis| SystemTime::UNIX_EPOCH + Duration::from_millis(millis)),
                caller: None,
                fresh: false,
            }
        })
        .collect()
}

fn is_sqs_event(payload: &serde_json::Value) -> bool {
    payload["Records"][0]["eventSource"] == "aws:sqs"
}

/// Runs as a Lambda: SQS events to `handler`, every other event to `router` as HTTP.
pub async fn run_lambda(router: Router, handler: Arc<dyn MessageHandler>) -> Result<(), String> {
    let adapter = Adapter::from(router);
    let service = lambda_http::service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let adapter = adapter.clone();
        let handler = handler.clone();
        async move {
            let (payload, context) = event.into_parts();
            if is_sqs_event(&payload) {
                let event: SqsEvent = serde_json::from_value(payload)?;
                let messages = sqs_messages(&event);
                let dispositions = handler.handle(&messages).await;
                for (message, disposition) in messages.iter().zip(&dispositions) {
                    if let Disposition::Reject(reason) = disposition {
                        // Without a dead-letter queue of its own the message goes back, and
                        // the queue's redrive policy moves it to its dead-letter queue.
                        tracing::warn!(message_id = %message.message_id, %reason,
                            "a message that cannot be handled; it goes back until the queue's redrive policy dead-letters it");
                    }
                }
                // The partial batch response (`SQSBatchResponse`).
                let failures: Vec<serde_json::Value> = messages_to_retry(&messages, &dispositions)
                    .into_iter()
                    .map(|id| serde_json::json!({ "itemIdentifier": id }))
                    .collect();
                return Ok::<_, lambda_http::Error>(
                    serde_json::json!({ "batchItemFailures": failures }),
                );
            }
            let request: LambdaRequest = serde_json::from_value(payload)?;
            let response = adapter
                .oneshot(LambdaEvent::new(request, context))
                .await
                .map_err(|never| match never {})?;
            Ok(serde_json::to_value(response)?)
        }
    });
    lambda_http::lambda_runtime::run(service)
        .await
        .map_err(|error| format!("lambda runtime failed: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str, group: Option<&str>) -> QueueMessage {
        QueueMessage {
            message_id: id.to_string(),
            group_id: group.map(str::to_string),
            ..QueueMessage::default()
        }
    }

    #[test]
    fn a_failure_in_a_fifo_group_fails_the_rest_of_the_group() {
        use Disposition::*;
        let retry = || Retry("down".to_string());
        let messages = [
            message("a1", Some("a")),
            message("b1", Some("b")),
            message("a2", Some("a")),
            message("b2", Some("b")),
            message("a3", Some("a")),
            message("s1", None),
            message("s2", None),
        ];
        let dispositions = [Done, retry(), Done, Done, Done, Reject("bad".into()), Done];
        assert_eq!(
            messages_to_retry(&messages, &dispositions),
            vec!["b1", "b2", "s1"]
        );
        // Messages the handler gave no answer for come back.
        assert_eq!(
            messages_to_retry(&messages[..2], &[Done]),
            vec!["b1".to_string()]
        );
    }

    #[test]
    fn sqs_records_become_messages() {
        let event: SqsEvent = serde_json::from_value(serde_json::json!({"Records": [{
            "messageId": "m-1", "receiptHandle": "r", "body": "transform",
            "attributes": {"MessageGroupId": "g"},
            "messageAttributes": {"kind": {"stringValue": "transform", "dataType": "String",
                                           "stringListValues": [], "binaryListValues": []}},
            "md5OfBody": "", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:tasks", "awsRegion": "us-east-1"
        }]}))
        .unwrap();
        let messages = sqs_messages(&event);
        assert_eq!(messages[0].message_id, "m-1");
        assert_eq!(messages[0].body, "transform");
        assert_eq!(messages[0].group_id.as_deref(), Some("g"));
        assert_eq!(messages[0].origin, "sqs/tasks");
        assert_eq!(messages[0].delivery_count, 1);
        assert_eq!(messages[0].attributes["kind"], "transform");
    }
}
