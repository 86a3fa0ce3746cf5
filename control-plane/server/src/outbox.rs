//! The transactional outbox: changes write the events they imply in the same database
//! transaction (`outbox_message`), and the leader's relay publishes them in order, marking each
//! batch published only after the bus accepted it. A crash between publishing and marking
//! publishes again; the envelope id lets the bus and consumers drop the duplicate.

use std::sync::Arc;
use std::time::Duration;

use weir_events::{EventBus, EventEnvelope, WeirEvent};
use weir_metastore::{Metastore, OutboxMessage};

pub const SOURCE: &str = "control-plane";

pub fn outbox_message(event: WeirEvent) -> OutboxMessage {
    let envelope = EventEnvelope::new(SOURCE, None, event);
    OutboxMessage {
        event_id: envelope.id.clone(),
        subject: envelope.subject("weir"),
        payload: envelope.to_json(),
    }
}

/// Publishes pending messages; returns how many went out.
pub async fn relay_once(metastore: &dyn Metastore, bus: &dyn EventBus) -> Result<usize, String> {
    let pending = metastore
        .pending_messages(100)
        .await
        .map_err(|error| error.to_string())?;
    let mut published = Vec::with_capacity(pending.len());
    for message in &pending {
        let envelope = match EventEnvelope::from_json(message.message.payload.as_bytes()) {
            Ok(envelope) => envelope,
            Err(error) => {
                // Never blocks the queue: a message we cannot read is marked and logged.
                tracing::error!(seq = message.seq, %error, "dropping unreadable outbox message");
                published.push(message.seq);
                continue;
            }
        };
        if let Err(error) = bus.publish(&envelope).await {
            tracing::warn!(%error, "outbox relay cannot publish, retrying later");
            break;
        }
        published.push(message.seq);
    }
    if !published.is_empty() {
        metastore
            .mark_published(&published, chrono::Utc::now().timestamp_millis())
            .await
            .map_err(|error| error.to_string())?;
    }
    Ok(published.len())
}

/// The relay loop; does work only while `is_leader` says so.
pub async fn run_relay(
    metastore: Arc<dyn Metastore>,
    bus: Arc<dyn EventBus>,
    is_leader: impl Fn() -> bool,
    wake: Arc<tokio::sync::Notify>,
) {
    loop {
        if is_leader() {
            match relay_once(metastore.as_ref(), bus.as_ref()).await {
                Ok(100) => continue,
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "outbox relay failed"),
            }
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}
