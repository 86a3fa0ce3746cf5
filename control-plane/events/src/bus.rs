//! The bus trait both implementations satisfy.

use std::pin::Pin;

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

pub type EventStream = Pin<Box<dyn Stream<Item = Result<EventEnvelope, BusError>> + Send>>;

#[async_trait]
pub trait EventBus: Send + Sync {
    /// The first subject token (`weir` unless configured).
    fn subject_prefix(&self) -> &str;

    /// Publishes once the bus has accepted (and, for JetStream, stored) the event. Publishing the
    /// same envelope id twice delivers it once where the bus can tell (JetStream dedup window).
    async fn publish(&self, envelope: &EventEnvelope) -> Result<(), BusError>;

    /// Events whose subject matches `<prefix>.v1.<filter>` (`*` and `>` wildcards), in publish
    /// order, from now on. A named (durable) subscription resumes where the same name left off,
    /// where the bus is durable.
    async fn subscribe(
        &self,
        consumer_name: Option<&str>,
        filter: &str,
    ) -> Result<EventStream, BusError>;
}
