//! The bus trait both implementations satisfy.

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use futures::Stream;

use crate::envelope::EventEnvelope;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("event bus unavailable: {0}")]
    Unavailable(String),
    /// The subscriber fell behind and `0` events were dropped; it must resynchronise
    /// (the control plane's indexer then rescans storage).
    #[error("subscriber lagged and missed {0} events")]
    Lagged(u64),
    #[error("malformed event on `{subject}`: {message}")]
    Malformed { subject: String, message: String },
    #[error("event bus internal error: {0}")]
    Internal(String),
}

/// One delivered event. The handler acknowledges it once handled (`ack`), or asks for it again
/// later (`nak`) when handling failed; an event never acknowledged is delivered again (after
/// the bus's acknowledgement wait, where the bus is durable).
pub struct Delivery {
    pub envelope: EventEnvelope,
    acker: Box<dyn Acknowledge>,
}

/// How a bus settles one delivery.
#[async_trait]
pub trait Acknowledge: Send + Sync {
    async fn ack(self: Box<Self>) -> Result<(), BusError>;
    async fn nak(self: Box<Self>, delay: Duration) -> Result<(), BusError>;
}

impl Delivery {
    pub fn new(envelope: EventEnvelope, acker: Box<dyn Acknowledge>) -> Self {
        Self { envelope, acker }
    }

    /// The event was handled: it is not delivered again.
    pub async fn ack(self) -> Result<(), BusError> {
        self.acker.ack().await
    }

    /// Handling failed: deliver it again after `delay`.
    pub async fn nak(self, delay: Duration) -> Result<(), BusError> {
        self.acker.nak(delay).await
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("envelope", &self.envelope)
            .finish()
    }
}

pub type EventStream = Pin<Box<dyn Stream<Item = Result<Delivery, BusError>> + Send>>;

#[async_trait]
pub trait EventBus: Send + Sync {
    /// The first subject token (`weir` unless configured).
    fn subject_prefix(&self) -> &str;

    /// Publishes once the bus has accepted (and, for JetStream, stored) the event. Publishing the
    /// same envelope id twice delivers it once where the bus can tell (JetStream dedup window).
    async fn publish(&self, envelope: &EventEnvelope) -> Result<(), BusError>;

    /// Events whose subject matches `<prefix>.v1.<filter>` (`*` and `>` wildcards), in publish
    /// order, from now on. A named (durable) subscription resumes where the same name left off,
    /// where the bus is durable. Each delivery is acknowledged by its handler after handling.
    async fn subscribe(
        &self,
        consumer_name: Option<&str>,
        filter: &str,
    ) -> Result<EventStream, BusError>;
}
