//! Announcements of queued tasks, so executors deployed apart need not poll: on NATS JetStream
//! (see `weir_tasks::doorbell`), a work-queue stream, so each announcement goes to one replica of
//! each executor group and is gone once acknowledged, bounded in age and per kind since
//! executors also poll; and on SQS, for executors that are Lambdas.

use async_nats::jetstream::{self, stream};
use weir_tasks::TaskKind;
use weir_tasks::doorbell::{MAX_AGE, MAX_PER_KIND, all_subjects, stream_name, subject};

use crate::bus::BusError;

#[derive(Clone)]
pub struct NatsTaskDoorbell {
    prefix: String,
    jetstream: jetstream::Context,
}

/// The stream both the announcer and the executors create if missing, with the same config.
pub fn stream_config(prefix: &str) -> stream::Config {
    stream::Config {
        name: stream_name(prefix),
        subjects: vec![all_subjects(prefix)],
        retention: stream::RetentionPolicy::WorkQueue,
        max_age: MAX_AGE,
        max_messages_per_subject: MAX_PER_KIND,
        discard: stream::DiscardPolicy::Old,
        ..Default::default()
    }
}

impl NatsTaskDoorbell {
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, BusError> {
        let client = async_nats::connect(url)
            .await
            .map_err(|error| BusError::Unavailable(error.to_string()))?;
        let jetstream = jetstream::new(client);
        jetstream
            .get_or_create_stream(stream_config(prefix))
            .await
            .map_err(|error| BusError::Unavailable(error.to_string()))?;
        Ok(Self {
            prefix: prefix.to_string(),
            jetstream,
        })
    }

    /// Announces that tasks of `kind` were queued; returns once the stream stored it.
    pub async fn ring(&self, kind: TaskKind) -> Result<(), BusError> {
        self.jetstream
            .publish(subject(&self.prefix, kind), bytes::Bytes::new())
            .await
            .map_err(|error| BusError::Unavailable(error.to_string()))?
            .await
            .map_err(|error| BusError::Unavailable(error.to_string()))?;
        Ok(())
    }

    /// Deletes the stream (tests clean up after themselves with it).
    pub async fn delete_stream(&self) -> Result<(), BusError> {
        self.jetstream
            .delete_stream(stream_name(&self.prefix))
            .await
            .map_err(|error| BusError::Unavailable(error.to_string()))?;
        Ok(())
    }
}

/// Announcements of queued tasks on SQS, for executors running as Lambdas (an SQS event source
/// mapping invokes the function, which leases the task over HTTP): one queue per task kind,
/// the kind as the body and as the `kind` attribute.
#[derive(Clone)]
pub struct SqsTaskDoorbell {
    client: aws_sdk_sqs::Client,
    queues: std::collections::BTreeMap<String, String>,
}

/// Where and how to reach the announcement queues.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqsAnnouncementConfig {
    /// Queue URL per task kind (`transform`, `reset`, `ingest`, `compaction`); kinds without
    /// one are not announced.
    pub queues: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub region: Option<String>,
    /// An SQS-compatible endpoint (tests: moto); AWS's when absent.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Static credentials; the `AWS_*` environment and instance roles when absent.
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<String>,
}

impl SqsTaskDoorbell {
    pub async fn new(config: &SqsAnnouncementConfig) -> Result<Self, BusError> {
        for kind in config.queues.keys() {
            if TaskKind::parse(kind).is_none() {
                return Err(BusError::Unavailable(format!(
                    "`{kind}` is not a task kind (transform, reset, ingest, compaction, gc)"
                )));
            }
        }
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &config.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
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
        let shared = loader.load().await;
        Ok(Self {
            client: aws_sdk_sqs::Client::new(&shared),
            queues: config.queues.clone(),
        })
    }

    /// Announces that tasks of `kind` were queued, when it has a queue.
    pub async fn ring(&self, kind: TaskKind) -> Result<(), BusError> {
        let Some(queue_url) = self.queues.get(kind.as_str()) else {
            return Ok(());
        };
        let attribute = aws_sdk_sqs::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(kind.as_str())
            .build()
            .map_err(|error| BusError::Unavailable(error.to_string()))?;
        self.client
            .send_message()
            .queue_url(queue_url)
            .message_body(kind.as_str())
            .message_attributes("kind", attribute)
            .send()
            .await
            .map_err(|error| {
                BusError::Unavailable(aws_sdk_sqs::error::DisplayErrorContext(error).to_string())
            })?;
        Ok(())
    }
}
