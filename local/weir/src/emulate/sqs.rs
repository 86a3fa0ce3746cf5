//! SQS as Lambda's event source mapping delivers it: long-poll the queue, invoke the function
//! with an `SqsEvent` batch, delete what it did not report in `batchItemFailures`, and leave
//! those (and everything, when the invocation fails) to come back after the visibility timeout
//! and, past the queue's `maxReceiveCount`, to its dead-letter queue.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use weir_function_runtime::sqs::SqsConsumerConfig;

use super::lambda::LambdaFunction;

/// The item ids a function's answer reports as failed; every id when the answer is not one.
pub fn failed_items(answer: &[u8], ids: &[String]) -> Vec<String> {
    match serde_json::from_slice::<Value>(answer) {
        Ok(document) => match document["batchItemFailures"].as_array() {
            Some(failures) => failures
                .iter()
                .filter_map(|failure| failure["itemIdentifier"].as_str().map(str::to_string))
                .collect(),
            None if document.is_object() => Vec::new(),
            None => ids.to_vec(),
        },
        Err(_) => ids.to_vec(),
    }
}

/// Polls `queue` for `function` until the process ends.
pub async fn run(config: SqsConsumerConfig, function: Arc<LambdaFunction>, batch_size: i32) {
    let client = weir_function_runtime::sqs::client(&config).await;
    let arn = format!(
        "arn:aws:sqs:{}:123456789012:{}",
        config
            .region
            .clone()
            .unwrap_or_else(|| "us-east-1".to_string()),
        config.queue_url.rsplit('/').next().unwrap_or_default()
    );
    loop {
        let received = client
            .receive_message()
            .queue_url(&config.queue_url)
            .max_number_of_messages(batch_size.clamp(1, 10))
            .wait_time_seconds(config.wait_seconds.clamp(0, 20))
            .message_system_attribute_names(aws_attribute_all())
            .message_attribute_names("All")
            .send()
            .await;
        let messages = match received {
            Ok(output) => output.messages.unwrap_or_default(),
            Err(error) => {
                tracing::warn!(error = %error, queue = %config.queue_url, "cannot receive from the queue");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let mut records = Vec::new();
        let mut ids = Vec::new();
        for message in &messages {
            let id = message.message_id.clone().unwrap_or_default();
            ids.push(id.clone());
            let attributes: serde_json::Map<String, Value> = message
                .attributes
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|(name, value)| (name.as_str().to_string(), Value::String(value)))
                .collect();
            // Lambda's shape of message attributes (what the function reads `odf-dataset` from).
            let message_attributes: serde_json::Map<String, Value> = message
                .message_attributes
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|(name, value)| {
                    (
                        name,
                        json!({"stringValue": value.string_value, "dataType": value.data_type,
                               "stringListValues": [], "binaryListValues": []}),
                    )
                })
                .collect();
            records.push(json!({
                "messageId": id,
                "receiptHandle": message.receipt_handle.clone().unwrap_or_default(),
                "body": message.body.clone().unwrap_or_default(),
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": message.md5_of_body.clone().unwrap_or_default(),
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": config.region.clone().unwrap_or_else(|| "us-east-1".to_string()),
            }));
        }
        let event = json!({ "Records": records }).to_string();
        let failed = match function.invoke(event).await {
            Ok(answer) => failed_items(&answer, &ids),
            Err(message) => {
                tracing::warn!(%message, "the function failed the whole batch");
                ids.clone()
            }
        };
        for message in &messages {
            let id = message.message_id.clone().unwrap_or_default();
            if failed.contains(&id) {
                continue;
            }
            if let Some(handle) = &message.receipt_handle
                && let Err(error) = client
                    .delete_message()
                    .queue_url(&config.queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
            {
                tracing::warn!(error = %error, "cannot delete a handled message");
            }
        }
    }
}

fn aws_attribute_all() -> weir_function_runtime::sqs::MessageSystemAttributeName {
    weir_function_runtime::sqs::MessageSystemAttributeName::All
}

#[cfg(test)]
mod tests {
    use super::failed_items;

    #[test]
    fn reads_partial_batch_failures() {
        let ids = vec!["a".to_string(), "b".to_string()];
        assert_eq!(
            failed_items(br#"{"batchItemFailures":[{"itemIdentifier":"b"}]}"#, &ids),
            vec!["b"]
        );
        assert!(failed_items(br#"{"batchItemFailures":[]}"#, &ids).is_empty());
        assert!(failed_items(b"{}", &ids).is_empty());
        assert_eq!(failed_items(b"not json", &ids), ids);
        assert_eq!(failed_items(b"[]", &ids), ids);
    }
}
