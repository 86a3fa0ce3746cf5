//! The in-process bus of `weir up`: a broadcast channel. Not durable: a subscriber sees what is
//! published while it is subscribed. A delivery its handler negatively acknowledges comes back to
//! that subscriber after the delay; acknowledging does nothing more.

use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::bus::{Acknowledge, BusError, Delivery, EventBus, EventStream};
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
        let (again, redelivered) = tokio::sync::mpsc::unbounded_channel::<EventEnvelope>();
        let published = BroadcastStream::new(self.sender.subscribe()).filter_map(move |item| {
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
        let redelivered = tokio_stream::wrappers::UnboundedReceiverStream::new(redelivered).map(Ok);
        let stream = futures::stream::select(published, redelivered).map(move |item| {
            item.map(|envelope: EventEnvelope| {
                let acker = Redeliver {
                    again: again.clone(),
                    envelope: envelope.clone(),
                };
                Delivery::new(envelope, Box::new(acker))
            })
        });
        Ok(Box::pin(stream))
    }
}

/// Settles an in-process delivery: a nak puts the event back on its subscriber's queue.
struct Redeliver {
    again: tokio::sync::mpsc::UnboundedSender<EventEnvelope>,
    envelope: EventEnvelope,
}

#[async_trait]
impl Acknowledge for Redeliver {
    async fn ack(self: Box<Self>) -> Result<(), BusError> {
        Ok(())
    }

    async fn nak(self: Box<Self>, delay: std::time::Duration) -> Result<(), BusError> {
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            // The subscriber may be gone; then nobody wants it.
            let _ = self.again.send(self.envelope);
        });
        Ok(())
    }
}
