//! A long-running SQS consumer feeding a [`MessageHandler`] (feature `sqs`): long polling,
//! for containers and KEDA-scaled Deployments; in Lambda the event source mapping polls instead.
//!
//! Receives until a batch is full or `batch_wait_millis` passed, hands it over, then: deletes
//! what is `Done` (after the commit); makes what must be retried visible again after a backoff
//! that grows with its receive count; sends what is rejected to `dead_letter_queue_url` with the
//! reason in the `weir-error` attribute, then deletes it. Without a dead-letter queue a rejected
//! message is left to the queue's redrive policy. FIFO queues: a failure holds back the rest of
//! its message group (see `messages_to_retry`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// For harnesses that receive with the client of `client` (the local emulation's event source).
pub use aws_sdk_sqs::types::MessageSystemAttributeName;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, MessageAttributeValue,
};
use bytes::Bytes;
use serde::Deserialize;

use crate::messages::{Disposition, MessageHandler, QueueMessage, messages_to_retry};

/// Message attribute naming why a message was dead-lettered.
pub const ERROR_ATTRIBUTE: &str = "weir-error";

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqsConsumerConfig {
    pub queue_url: String,
    pub dead_letter_queue_url: Option<String>,
    pub region: Option<String>,
    /// An SQS-compatible endpoint (tests: moto); AWS's when absent.
    pub endpoint: Option<String>,
    /// Static credentials; the `AWS_*` environment and instance roles when absent.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Long-poll wait of a receive that finds the queue empty (at most 20).
    pub wait_seconds: i32,
    pub batch_messages: usize,
    pub batch_wait_millis: u64,
    /// Longest time a retried message stays invisible.
    pub max_backoff_seconds: i32,
}

impl Default for SqsConsumerConfig {
    fn default() -> Self {
        Self {
            queue_url: String::new(),
            dead_letter_queue_url: None,
            region: None,
            endpoint: None,
            access_key_id: None,
            secret_access_key: None,
            wait_seconds: 20,
            batch_messages: 100,
            batch_wait_millis: 200,
            max_backoff_seconds: 900,
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub async fn client(config: &SqsConsumerConfig) -> aws_sdk_sqs::Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    loader = loader.region(aws_config::Region::new(
        config
            .region
            .clone()
            .unwrap_or_else(|| "us-east-1".to_string()),
    ));
    if let Some(endpoint) = &config.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    if let (Some(key), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
        loader = loader.credentials_provider(aws_sdk_sqs::config::Credentials::new(
            key,
            secret,
            None,
            None,
            "weir-config",
        ));
    }
    aws_sdk_sqs::Client::new(&loader.load().await)
}

/// Consumes until the process ends, starting again after failures.
pub fn spawn(config: SqsConsumerConfig, handler: Arc<dyn MessageHandler>) {
    tokio::spawn(async move {
        let client = client(&config).await;
        loop {
            if let Err(error) = consume(&client, &config, handler.as_ref()).await {
                tracing::warn!(%error, queue = %config.queue_url,
                    "sqs consumer failed; starting again");
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
}

async fn consume(
    client: &aws_sdk_sqs::Client,
    config: &SqsConsumerConfig,
    handler: &dyn MessageHandler,
) -> Result<(), BoxError> {
    let queue = config
        .queue_url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    tracing::info!(queue = %config.queue_url, "consuming");
    loop {
        let mut batch: Vec<(QueueMessage, String)> = Vec::new();
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(config.batch_wait_millis);
        while batch.len() < config.batch_messages {
            let wait = if batch.is_empty() {
                config.wait_seconds
            } else {
                0
            };
            let received = client
                .receive_message()
                .queue_url(&config.queue_url)
                .max_number_of_messages(10.min(config.batch_messages - batch.len()) as i32)
                .wait_time_seconds(wait)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(|error| aws_sdk_sqs::error::DisplayErrorContext(error).to_string())?;
            let messages = received.messages.unwrap_or_default();
            let empty = messages.is_empty();
            for message in messages {
                let receipt = message.receipt_handle().unwrap_or_default().to_string();
                batch.push((queue_message(&queue, &message), receipt));
            }
            if (empty && !batch.is_empty()) || tokio::time::Instant::now() >= deadline {
                break;
            }
        }
        if batch.is_empty() {
            continue;
        }
        settle(client, config, handler, batch).await?;
    }
}

/// Hands a batch over and deletes, delays or dead-letters each message as it was answered.
async fn settle(
    client: &aws_sdk_sqs::Client,
    config: &SqsConsumerConfig,
    handler: &dyn MessageHandler,
    batch: Vec<(QueueMessage, String)>,
) -> Result<(), BoxError> {
    let messages: Vec<QueueMessage> = batch.iter().map(|(m, _)| m.clone()).collect();
    let mut dispositions = handler.handle(&messages).await;
    dispositions.resize(messages.len(), Disposition::Retry("no answer".into()));
    // A rejected message in the dead-letter queue is done with: it holds nothing back.
    for (message, disposition) in messages.iter().zip(dispositions.iter_mut()) {
        if let Disposition::Reject(reason) = disposition {
            match &config.dead_letter_queue_url {
                Some(dead_letters) => {
                    dead_letter(client, dead_letters, message, reason).await?;
                    *disposition = Disposition::Done;
                }
                None => tracing::warn!(message_id = %message.message_id, %reason,
                    "a message that cannot be handled; left to the queue's redrive policy"),
            }
        }
    }
    let held_back = messages_to_retry(&messages, &dispositions);
    let mut delete = Vec::new();
    let mut delay = Vec::new();
    for (index, (message, receipt)) in batch.iter().enumerate() {
        if held_back.contains(&message.message_id) {
            delay.push((index, receipt.clone(), message.delivery_count));
        } else {
            delete.push((index, receipt.clone()));
        }
    }
    for chunk in delete.chunks(10) {
        let entries = chunk
            .iter()
            .map(|(index, receipt)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .receipt_handle(receipt)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        client
            .delete_message_batch()
            .queue_url(&config.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|error| aws_sdk_sqs::error::DisplayErrorContext(error).to_string())?;
    }
    for chunk in delay.chunks(10) {
        let entries = chunk
            .iter()
            .map(|(index, receipt, count)| {
                let backoff = 2i32
                    .saturating_pow((*count).min(20))
                    .min(config.max_backoff_seconds);
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(index.to_string())
                    .receipt_handle(receipt)
                    .visibility_timeout(backoff)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        client
            .change_message_visibility_batch()
            .queue_url(&config.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|error| aws_sdk_sqs::error::DisplayErrorContext(error).to_string())?;
    }
    Ok(())
}

/// A handler's rejects sent to an SQS dead-letter queue with the reason, and then done with:
/// how a Lambda fed by an SQS event source dead-letters what it can never handle (the partial
/// batch response alone cannot carry a reason). A reject that cannot be sent comes back.
pub struct DeadLetterQueue {
    pub inner: Arc<dyn MessageHandler>,
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
}

#[async_trait::async_trait]
impl MessageHandler for DeadLetterQueue {
    async fn handle(&self, messages: &[QueueMessage]) -> Vec<Disposition> {
        let mut dispositions = self.inner.handle(messages).await;
        for (message, disposition) in messages.iter().zip(dispositions.iter_mut()) {
            if let Disposition::Reject(reason) = disposition {
                *disposition =
                    match dead_letter(&self.client, &self.queue_url, message, reason).await {
                        Ok(()) => Disposition::Done,
                        Err(error) => Disposition::Retry(format!("dead-lettering failed: {error}")),
                    };
            }
        }
        dispositions
    }
}

async fn dead_letter(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    message: &QueueMessage,
    reason: &str,
) -> Result<(), BoxError> {
    let text = |value: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
    };
    let mut send = client
        .send_message()
        .queue_url(queue_url)
        .message_body(String::from_utf8_lossy(&message.body));
    // SQS takes at most 10 attributes: the reason first, then the original ones.
    send = send.message_attributes(ERROR_ATTRIBUTE, text(reason)?);
    for (name, value) in message.attributes.iter().take(9) {
        send = send.message_attributes(name, text(value)?);
    }
    if queue_url.ends_with(".fifo") {
        send = send
            .message_group_id(message.group_id.clone().unwrap_or_else(|| "dead".into()))
            .message_deduplication_id(message.message_id.clone());
    }
    send.send()
        .await
        .map_err(|error| aws_sdk_sqs::error::DisplayErrorContext(error).to_string())?;
    tracing::warn!(message_id = %message.message_id, %reason, "message dead-lettered");
    Ok(())
}

fn queue_message(queue: &str, message: &aws_sdk_sqs::types::Message) -> QueueMessage {
    let system = message.attributes();
    let system_value = |name: MessageSystemAttributeName| {
        system.and_then(|attributes| attributes.get(&name)).cloned()
    };
    let attributes: BTreeMap<String, String> = message
        .message_attributes()
        .map(|attributes| {
            attributes
                .iter()
                .filter_map(|(name, value)| {
                    value
                        .string_value()
                        .map(|text| (name.clone(), text.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    QueueMessage {
        message_id: message.message_id().unwrap_or_default().to_string(),
        body: Bytes::from(message.body().unwrap_or_default().to_string()),
        attributes,
        group_id: system_value(MessageSystemAttributeName::MessageGroupId),
        origin: format!("sqs/{queue}"),
        subject: None,
        sequence: None,
        delivery_count: system_value(MessageSystemAttributeName::ApproximateReceiveCount)
            .and_then(|count| count.parse().ok())
            .unwrap_or(1),
        sent_at: system_value(MessageSystemAttributeName::SentTimestamp)
            .and_then(|millis| millis.parse::<u64>().ok())
            .map(|millis| SystemTime::UNIX_EPOCH + Duration::from_millis(millis)),
        caller: None,
        fresh: false,
    }
}
