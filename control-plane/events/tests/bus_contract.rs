//! One contract suite for every event bus: in-process and NATS JetStream
//! (`WEIR_TEST_NATS_URL`, default nats://127.0.0.1:4222, a fresh stream per test).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use weir_events::*;

struct Bus {
    bus: Arc<dyn EventBus>,
    nats: Option<NatsEventBus>,
}

impl Drop for Bus {
    fn drop(&mut self) {
        if let Some(nats) = self.nats.take() {
            // Best effort: remove the per-test stream.
            tokio::spawn(async move {
                let _ = nats.delete_stream().await;
            });
        }
    }
}

fn in_process() -> Bus {
    Bus {
        bus: Arc::new(InProcessEventBus::new("weir")),
        nats: None,
    }
}

async fn nats() -> Bus {
    let url =
        std::env::var("WEIR_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_string());
    let prefix = format!("weirtest{}", uuid::Uuid::new_v4().simple());
    let bus = NatsEventBus::connect(&url, &prefix)
        .await
        .expect("nats with jetstream must run for the bus contract suite (see local/test)");
    Bus {
        bus: Arc::new(bus.clone()),
        nats: Some(bus),
    }
}

macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod in_process_bus {
            $(#[tokio::test] async fn $name() { super::$name(super::in_process()).await })*
        }
        mod nats_bus {
            $(#[tokio::test] async fn $name() { super::$name(super::nats().await).await })*
        }
    };
}

contract_tests!(
    redelivers_what_its_handler_did_not_handle,
    delivers_in_publish_order,
    filters_by_subject,
    fans_out_to_every_subscriber,
);

fn committed(dataset: &str, sequence_number: u64) -> EventEnvelope {
    EventEnvelope::new(
        "test",
        Some("request-1"),
        WeirEvent::BlockCommitted {
            dataset_id: format!("did:odf:{dataset}"),
            block_hash: format!("hash{sequence_number}"),
            sequence_number,
        },
    )
}

fn revoked(token: &str) -> EventEnvelope {
    EventEnvelope::new(
        "test",
        None,
        WeirEvent::TokenRevoked {
            account_id: "acc1".to_string(),
            token_id: token.to_string(),
        },
    )
}

/// The next delivery, unsettled.
async fn delivery(stream: &mut EventStream) -> weir_events::Delivery {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("event within 10 s")
        .expect("stream open")
        .expect("event decodes")
}

/// The next event, acknowledged.
async fn next(stream: &mut EventStream) -> EventEnvelope {
    let delivery = delivery(stream).await;
    let envelope = delivery.envelope.clone();
    delivery.ack().await.unwrap();
    envelope
}

async fn nothing_more(stream: &mut EventStream) {
    let more = tokio::time::timeout(Duration::from_millis(300), stream.next()).await;
    assert!(more.is_err(), "unexpected event: {more:?}");
}

/// At least once: a delivery its handler negatively acknowledges comes again; once
/// acknowledged, it does not.
async fn redelivers_what_its_handler_did_not_handle(bus: Bus) {
    let mut stream = bus.bus.subscribe(None, "dataset.>").await.unwrap();
    let envelope = committed("r", 1);
    bus.bus.publish(&envelope).await.unwrap();
    let first = delivery(&mut stream).await;
    assert_eq!(first.envelope, envelope);
    first.nak(Duration::from_millis(50)).await.unwrap();
    let again = delivery(&mut stream).await;
    assert_eq!(again.envelope, envelope);
    again.ack().await.unwrap();
    nothing_more(&mut stream).await;
}

async fn delivers_in_publish_order(bus: Bus) {
    let mut stream = bus.bus.subscribe(None, "dataset.>").await.unwrap();
    let sent: Vec<EventEnvelope> = (0..5).map(|n| committed("a", n)).collect();
    for envelope in &sent {
        bus.bus.publish(envelope).await.unwrap();
    }
    for envelope in &sent {
        assert_eq!(&next(&mut stream).await, envelope);
    }
    nothing_more(&mut stream).await;
}

async fn filters_by_subject(bus: Bus) {
    let mut accounts = bus.bus.subscribe(None, "account.>").await.unwrap();
    let mut dataset_b = bus
        .bus
        .subscribe(None, "dataset.block-committed.b")
        .await
        .unwrap();
    let events = [committed("a", 1), revoked("t1"), committed("b", 7)];
    for envelope in &events {
        bus.bus.publish(envelope).await.unwrap();
    }
    assert_eq!(next(&mut accounts).await, events[1]);
    assert_eq!(next(&mut dataset_b).await, events[2]);
    nothing_more(&mut accounts).await;
    nothing_more(&mut dataset_b).await;
}

async fn fans_out_to_every_subscriber(bus: Bus) {
    let mut first = bus.bus.subscribe(None, ">").await.unwrap();
    let mut second = bus.bus.subscribe(None, ">").await.unwrap();
    let envelope = committed("c", 2);
    bus.bus.publish(&envelope).await.unwrap();
    assert_eq!(next(&mut first).await, envelope);
    assert_eq!(next(&mut second).await, envelope);
}

#[tokio::test]
async fn nats_durable_consumer_resumes_and_deduplicates() {
    let bus = nats().await;
    let mut stream = bus
        .bus
        .subscribe(Some("indexer"), "dataset.>")
        .await
        .unwrap();
    let first = committed("d", 0);
    bus.bus.publish(&first).await.unwrap();
    assert_eq!(next(&mut stream).await, first);
    drop(stream);

    // Published while nobody listens, the second one twice (an outbox relay retrying).
    let second = committed("d", 1);
    let third = committed("d", 2);
    bus.bus.publish(&second).await.unwrap();
    bus.bus.publish(&second).await.unwrap();
    bus.bus.publish(&third).await.unwrap();

    let mut resumed = bus
        .bus
        .subscribe(Some("indexer"), "dataset.>")
        .await
        .unwrap();
    assert_eq!(next(&mut resumed).await, second);
    assert_eq!(next(&mut resumed).await, third);
    nothing_more(&mut resumed).await;
}

#[tokio::test]
async fn in_process_subscriber_that_lags_is_told() {
    let bus = InProcessEventBus::new("weir");
    let mut stream = bus.subscribe(None, ">").await.unwrap();
    for n in 0..5000 {
        bus.publish(&committed("e", n)).await.unwrap();
    }
    let first = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(first, Err(BusError::Lagged(_))), "{first:?}");
}
