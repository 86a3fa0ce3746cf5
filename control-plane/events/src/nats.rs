//! The NATS JetStream bus. Events go to the stream `<PREFIX>_EVENTS` (subjects `<prefix>.v1.>`,
//! kept 7 days, deduplicated on the envelope id for 2 minutes). Subscribers are pull consumers,
//! durable when named, with explicit acknowledgement: a message is acknowledged by its handler
//! once handled, negatively acknowledged (redelivered after a delay) when handling failed, and
//! redelivered after the acknowledgement wait when its handler never answered. A message that
//! does not decode is terminated (never redelivered) and reported as `Malformed`.

use async_nats::jetstream::{self, consumer, stream};
use async_trait::async_trait;
use futures::StreamExt;

use crate::bus::{Acknowledge, BusError, Delivery, EventBus, EventStream};
use crate::envelope::EventEnvelope;

#[derive(Clone)]
pub struct NatsEventBus {
    prefix: String,
    stream_name: String,
    jetstream: jetstream::Context,
}

fn unavailable(error: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(error.to_string())
}

impl NatsEventBus {
    /// Connects to `url` (`nats://127.0.0.1:4222`) and creates the event stream if missing.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, BusError> {
        let client = async_nats::connect(url).await.map_err(unavailable)?;
        let jetstream = jetstream::new(client);
        let stream_name = format!(
            "{}_EVENTS",
            prefix
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                })
                .collect::<String>()
        );
        jetstream
            .get_or_create_stream(stream::Config {
                name: stream_name.clone(),
                subjects: vec![format!("{prefix}.v1.>")],
                max_age: std::time::Duration::from_secs(7 * 24 * 3600),
                duplicate_window: std::time::Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        Ok(Self {
            prefix: prefix.to_string(),
            stream_name,
            jetstream,
        })
    }

    /// Deletes the event stream (tests clean up after themselves with it).
    pub async fn delete_stream(&self) -> Result<(), BusError> {
        self.jetstream
            .delete_stream(&self.stream_name)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

#[async_trait]
impl EventBus for NatsEventBus {
    fn subject_prefix(&self) -> &str {
        &self.prefix
    }

    async fn publish(&self, envelope: &EventEnvelope) -> Result<(), BusError> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", envelope.id.as_str());
        let acknowledgement = self
            .jetstream
            .publish_with_headers(
                envelope.subject(&self.prefix),
                headers,
                envelope.to_json().into(),
            )
            .await
            .map_err(unavailable)?;
        acknowledgement.await.map_err(unavailable)?;
        Ok(())
    }

    async fn subscribe(
        &self,
        consumer_name: Option<&str>,
        filter: &str,
    ) -> Result<EventStream, BusError> {
        let stream = self
            .jetstream
            .get_stream(&self.stream_name)
            .await
            .map_err(unavailable)?;
        let config = consumer::pull::Config {
            durable_name: consumer_name.map(str::to_string),
            filter_subject: format!("{}.v1.{filter}", self.prefix),
            deliver_policy: if consumer_name.is_some() {
                consumer::DeliverPolicy::All
            } else {
                consumer::DeliverPolicy::New
            },
            ack_policy: consumer::AckPolicy::Explicit,
            ..Default::default()
        };
        let consumer = match consumer_name {
            Some(name) => stream.get_or_create_consumer(name, config).await,
            None => stream.create_consumer(config).await,
        }
        .map_err(unavailable)?;
        let messages = consumer.messages().await.map_err(unavailable)?;
        let events = messages.then(|message| async move {
            let message = message.map_err(unavailable)?;
            match EventEnvelope::from_json(&message.payload) {
                Ok(envelope) => Ok(Delivery::new(envelope, Box::new(JetStreamAck(message)))),
                Err(error) => {
                    // Redelivering cannot make it decode.
                    let _ = message.ack_with(jetstream::AckKind::Term).await;
                    Err(BusError::Malformed {
                        subject: message.subject.to_string(),
                        message: error.to_string(),
                    })
                }
            }
        });
        Ok(Box::pin(events))
    }
}

struct JetStreamAck(jetstream::Message);

#[async_trait]
impl Acknowledge for JetStreamAck {
    async fn ack(self: Box<Self>) -> Result<(), BusError> {
        self.0
            .ack()
            .await
            .map_err(|error| BusError::Unavailable(error.to_string()))
    }

    async fn nak(self: Box<Self>, delay: std::time::Duration) -> Result<(), BusError> {
        self.0
            .ack_with(jetstream::AckKind::Nak(Some(delay)))
            .await
            .map_err(|error| BusError::Unavailable(error.to_string()))
    }
}
