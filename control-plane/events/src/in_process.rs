//! The in-process bus of `weir up`: a broadcast channel. Not durable: a subscriber sees what is
//! published while it is subscribed.

use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::bus::{BusError, EventBus, EventStream};
use crate::envelope::{EventEnvelope, subject_matches};

#[derive(Clone)]
pub struct InProcessEventBus {
    prefix: String,
    sender: broadcast::Sender<(String, EventEnvelope)>,
}

impl InProcessEventBus {
    pub fn new(prefix: &str) -> Self {
        let (sender, _) = broadcast::channel(4096);
        Self {
            prefix: prefix.to_string(),
            sender,
        }
    }
}

impl Default for InProcessEventBus {
    fn default() -> Self {
        Self::new("weir")
    }
}

#[async_trait]
impl EventBus for InProcessEventBus {
    fn subject_prefix(&self) -> &str {
        &self.prefix
    }

    async fn publish(&self, envelope: &EventEnvelope) -> Result<(), BusError> {
        let subject = envelope.subject(&self.prefix);
        // No receivers is fine: nobody is listening.
        let _ = self.sender.send((subject, envelope.clone()));
        Ok(())
    }

    async fn subscribe(
        &self,
        _consumer_name: Option<&str>,
        filter: &str,
    ) -> Result<EventStream, BusError> {
        let filter = format!("{}.v1.{filter}", self.prefix);
        let stream = BroadcastStream::new(self.sender.subscribe()).filter_map(move |item| {
            let item = match item {
                Ok((subject, envelope)) => {
                    subject_matches(&filter, &subject).then_some(Ok(envelope))
                }
                Err(BroadcastStreamRecvError::Lagged(missed)) => {
                    Some(Err(BusError::Lagged(missed)))
                }
            };
            std::future::ready(item)
        });
        Ok(Box::pin(stream))
    }
}
