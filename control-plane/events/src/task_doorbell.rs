//! Announcements of queued tasks on NATS JetStream (see `weir_tasks::doorbell`): a work-queue
//! stream, so each announcement goes to one replica of each executor group and is gone once
//! acknowledged; bounded in age and per kind, since executors also poll.

use async_nats::jetstream::{self, stream};
use weir_tasks::TaskKind;
use weir_tasks::doorbell::{MAX_AGE, MAX_PER_KIND, stream_name, subject};

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
        subjects: vec![format!("{prefix}.tasks.>")],
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
