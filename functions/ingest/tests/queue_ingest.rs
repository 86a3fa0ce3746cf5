//! Queue ingest (`weir_ingest::queue`): micro-batches, poison messages, redeliveries and
//! permissions through the message handler; then the JetStream consumer against the real NATS
//! server on 127.0.0.1:4222, and CloudEvents over real HTTP.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use weir_function_runtime::messages::{Disposition, MessageHandler, QueueMessage};
use weir_function_runtime::{AccessDecision, AccessPolicy, ApiError, Caller, DatasetAction};
use weir_ingest::queue::{QueueIngest, QueueIngestConfig};
use weir_odf::MetadataEvent;

fn jetstream_message(sequence: u64, subject: &str, body: &str) -> QueueMessage {
    QueueMessage {
        message_id: format!("S:{sequence}"),
        body: body.to_string().into(),
        origin: "jetstream/S".to_string(),
        subject: Some(subject.to_string()),
        sequence: Some(sequence),
        delivery_count: 1,
        ..QueueMessage::default()
    }
}

fn record(n: u64) -> String {
    format!(r#"{{"event_time":"2024-01-01T00:00:00Z","city":"c{n}","population":{n}}}"#)
}

fn queue(harness: &Harness) -> QueueIngest {
    QueueIngest::with_caller(
        harness.context.clone(),
        QueueIngestConfig::default(),
        Caller::anonymous(),
    )
}

async fn add_data_blocks(dataset: &weir_dataset::Dataset) -> usize {
    let chain = dataset.load_chain(None).await.unwrap();
    chain
        .blocks
        .iter()
        .filter(|(_, block)| matches!(block.event, MetadataEvent::AddData(_)))
        .count()
}

async fn count(harness: &Harness, dataset: &weir_dataset::Dataset) -> Vec<String> {
    harness
        .rows(dataset, "SELECT count(*), count(DISTINCT city) FROM t")
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_one_block_and_a_poison_message_is_rejected_alone() {
    let harness = Harness::start().await;
    let dataset = harness
        .create(&root_manifest("cities", NDJSON_READ, APPEND))
        .await;
    let subject = "weir.ingest.alice.cities";
    let mut messages: Vec<QueueMessage> = (1..=6)
        .map(|n| jetstream_message(n, subject, &record(n)))
        .collect();
    messages[2].body =
        r#"{"event_time":"2024-01-01T00:00:00Z","city":"x","population":"many"}"#.into();
    messages[4].subject = Some("weir.ingest.alice.nowhere".to_string());
    let dispositions = queue(&harness).handle(&messages).await;
    assert_eq!(dispositions[0], Disposition::Done);
    assert_eq!(dispositions[1], Disposition::Done);
    let Disposition::Reject(reason) = &dispositions[2] else {
        panic!("the poison message is rejected: {dispositions:?}");
    };
    assert!(reason.contains("population"), "{reason}");
    assert_eq!(dispositions[3], Disposition::Done);
    let Disposition::Reject(reason) = &dispositions[4] else {
        panic!("a message for a missing dataset is rejected: {dispositions:?}");
    };
    assert!(reason.contains("alice/nowhere"), "{reason}");
    assert_eq!(dispositions[5], Disposition::Done);
    assert_eq!(count(&harness, &dataset).await, vec!["4,4"]);
    assert_eq!(
        add_data_blocks(&dataset).await,
        1,
        "one block for the batch"
    );
    let chain = dataset.load_chain(None).await.unwrap();
    let MetadataEvent::AddData(add_data) = &chain.blocks[0].1.event else {
        panic!("the head is the batch's block");
    };
    let state = add_data.new_source_state.as_ref().unwrap();
    assert_eq!(state.source_name, "weir.dev/queue/jetstream/S");
    assert_eq!(state.value, "1-2,4,6");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_messages_add_nothing_whatever_their_transport() {
    let harness = Harness::start().await;
    let dataset = harness
        .create(&root_manifest("cities", NDJSON_READ, APPEND))
        .await;
    let ingest = queue(&harness);
    let subject = "weir.ingest.alice.cities";
    let first: Vec<QueueMessage> = (1..=3)
        .map(|n| jetstream_message(n, subject, &record(n)))
        .collect();
    assert!(ingest.handle(&first).await.iter().all(Disposition::is_done));
    // A crash before the ack: the same messages come again, with one new one behind them.
    let mut again: Vec<QueueMessage> = first
        .iter()
        .cloned()
        .map(|mut m| {
            m.delivery_count = 2;
            m
        })
        .collect();
    again.push(jetstream_message(4, subject, &record(4)));
    assert!(ingest.handle(&again).await.iter().all(Disposition::is_done));
    assert_eq!(count(&harness, &dataset).await, vec!["4,4"]);

    // SQS: ids, not sequences; a producer's `odf-message-id` makes a resend the same message.
    let sqs = |id: &str, n: u64| {
        let mut message = QueueMessage {
            message_id: id.to_string(),
            body: record(n).into(),
            origin: "sqs/q".to_string(),
            delivery_count: 1,
            ..QueueMessage::default()
        };
        message
            .attributes
            .insert("odf-dataset".into(), "alice/cities".into());
        message
    };
    let mut resent = sqs("m-7", 6);
    resent
        .attributes
        .insert("odf-message-id".into(), "order-6".into());
    let mut original = sqs("m-6", 6);
    original
        .attributes
        .insert("odf-message-id".into(), "order-6".into());
    assert!(
        ingest
            .handle(&[sqs("m-5", 5), original])
            .await
            .iter()
            .all(Disposition::is_done)
    );
    assert!(
        ingest
            .handle(&[sqs("m-5", 5), resent])
            .await
            .iter()
            .all(Disposition::is_done)
    );
    assert_eq!(count(&harness, &dataset).await, vec!["6,6"]);

    // The same message twice in one batch (a quick resend, a redelivery racing the first
    // delivery): committed once, both copies done.
    let answers = ingest
        .handle(&[sqs("m-8", 8), sqs("m-9", 9), sqs("m-8", 8)])
        .await;
    assert!(answers.iter().all(Disposition::is_done), "{answers:?}");
    assert_eq!(count(&harness, &dataset).await, vec!["8,8"]);
    // Unless the transport vouches each is a delivery of its own (MQTT without DUP): then two
    // equal readings are two records.
    let fresh = |id: &str, n: u64| {
        let mut message = sqs(id, n);
        message.fresh = true;
        message
    };
    let answers = ingest.handle(&[fresh("f-10", 10), fresh("f-10", 10)]).await;
    assert!(answers.iter().all(Disposition::is_done), "{answers:?}");
    assert_eq!(count(&harness, &dataset).await, vec!["10,9"]);
}

/// Lets its caller write one dataset only.
struct OnlyOneDataset {
    allowed: String,
}

#[async_trait::async_trait]
impl AccessPolicy for OnlyOneDataset {
    async fn authenticate(&self, _authorization: Option<&str>) -> Result<Caller, ApiError> {
        Ok(Caller::anonymous())
    }

    async fn decide(
        &self,
        _caller: &Caller,
        dataset_id: &str,
        _action: DatasetAction,
    ) -> Result<AccessDecision, ApiError> {
        Ok(if dataset_id == self.allowed {
            AccessDecision::Allowed
        } else {
            AccessDecision::Forbidden
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_for_a_dataset_the_identity_may_not_write_are_rejected_as_forbidden() {
    let harness = Harness::start().await;
    let allowed = harness
        .create(&root_manifest("cities", NDJSON_READ, APPEND))
        .await;
    let other = harness
        .create(&root_manifest("towns", NDJSON_READ, APPEND))
        .await;
    let context = Arc::new(weir_ingest::IngestContext {
        store: harness.store.clone(),
        config: weir_ingest::IngestConfig::default(),
        access: Arc::new(OnlyOneDataset {
            allowed: allowed.id().to_did_string(),
        }),
        notifier: None,
    });
    let ingest =
        QueueIngest::with_caller(context, QueueIngestConfig::default(), Caller::anonymous());
    let dispositions = ingest
        .handle(&[
            jetstream_message(1, "weir.ingest.alice.towns", &record(1)),
            jetstream_message(2, "weir.ingest.alice.cities", &record(2)),
        ])
        .await;
    let Disposition::Reject(reason) = &dispositions[0] else {
        panic!("{dispositions:?}");
    };
    assert!(reason.contains("editor role"), "{reason}");
    assert_eq!(dispositions[1], Disposition::Done);
    assert_eq!(add_data_blocks(&other).await, 0);
    assert_eq!(count(&harness, &allowed).await, vec!["1,1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_does_not_fit_the_schema_is_refused_by_column_and_the_rest_goes_in() {
    let read = "        kind: NdJson";
    let harness = Harness::start().await;
    let dataset = harness.create(&root_manifest("loose", read, APPEND)).await;
    let subject = "weir.ingest.alice.loose";
    // Without a declared schema, the first batch's records together set it.
    let first = vec![
        jetstream_message(1, subject, r#"{"a":1}"#),
        jetstream_message(2, subject, r#"{"a":2,"b":"x"}"#),
    ];
    let dispositions = queue(&harness).handle(&first).await;
    assert!(
        dispositions.iter().all(Disposition::is_done),
        "{dispositions:?}"
    );
    let messages = vec![
        jetstream_message(3, subject, r#"{"a":3}"#),
        jetstream_message(4, subject, r#"{"a":4,"c":"new column"}"#),
        jetstream_message(5, subject, r#"{"a":5,"b":"y"}"#),
    ];
    let dispositions = queue(&harness).handle(&messages).await;
    assert_eq!(dispositions[0], Disposition::Done);
    let Disposition::Reject(reason) = &dispositions[1] else {
        panic!("{dispositions:?}");
    };
    assert!(reason.contains("`c`"), "{reason}");
    assert_eq!(dispositions[2], Disposition::Done);
    assert_eq!(
        harness
            .rows(&dataset, "SELECT a, b FROM t ORDER BY offset")
            .await,
        vec!["1,", "2,x", "3,", "5,y"]
    );
}

// --- JetStream, against the real server -----------------------------------------------------

const NATS_URL: &str = "nats://127.0.0.1:4222";

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jetstream_consumer_commits_in_stream_order_and_dead_letters_poison() {
    let harness = Harness::start().await;
    let dataset = harness
        .create(&root_manifest("cities", NDJSON_READ, APPEND))
        .await;
    let name = unique("T");
    let prefix = format!("{name}.ingest");
    let consumer = weir_function_runtime::jetstream::JetStreamConsumerConfig {
        url: NATS_URL.to_string(),
        stream: name.clone(),
        subjects: vec![format!("{prefix}.>")],
        durable: "weir-ingest".to_string(),
        batch_messages: 500,
        dead_letter_prefix: format!("{name}.dead"),
        ..Default::default()
    };
    let config = QueueIngestConfig {
        subject_prefix: prefix.clone(),
        ..QueueIngestConfig::default()
    };
    let handler = Arc::new(QueueIngest::with_caller(
        harness.context.clone(),
        config,
        Caller::anonymous(),
    ));
    // The consumer creates the stream; publishing waits until it exists.
    weir_function_runtime::jetstream::spawn(consumer, handler);
    let client = async_nats::connect(NATS_URL).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while jetstream.get_stream(&name).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stream was created"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let total = 2000u64;
    for n in 1..=total {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("m-{n}").as_str());
        let body = if n == 777 {
            "{not json".to_string()
        } else {
            record(n)
        };
        jetstream
            .publish_with_headers(format!("{prefix}.alice.cities"), headers, body.into())
            .await
            .unwrap();
    }
    // A publisher's retry of the same message id is removed by the stream.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "m-5");
    jetstream
        .publish_with_headers(format!("{prefix}.alice.cities"), headers, record(5).into())
        .await
        .unwrap()
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if add_data_blocks(&dataset).await == 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let rows = count(&harness, &dataset).await;
        if rows == vec![format!("{},{}", total - 1, total - 1)] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "all committed: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let populations: Vec<String> = harness
        .rows(&dataset, "SELECT population FROM t ORDER BY offset")
        .await;
    let expected: Vec<String> = (1..=total)
        .filter(|n| *n != 777)
        .map(|n| n.to_string())
        .collect();
    assert_eq!(populations, expected, "stream order is offset order");
    let blocks = add_data_blocks(&dataset).await;
    assert!(blocks < 100, "{blocks} blocks for {total} messages");

    // The poison message waits in the dead-letter stream with the reason.
    let dead = jetstream
        .get_stream(format!("{name}_DEAD"))
        .await
        .unwrap()
        .get_raw_message(1)
        .await
        .unwrap();
    assert_eq!(
        dead.subject.as_str(),
        format!("{name}.dead.{prefix}.alice.cities")
    );
    assert_eq!(&dead.payload[..], b"{not json");
    let reason = dead.headers.get("Weir-Error").unwrap().to_string();
    assert!(reason.contains("malformed"), "{reason}");
    let _ = jetstream.delete_stream(&name).await;
    let _ = jetstream.delete_stream(format!("{name}_DEAD")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_without_an_event_time_take_the_message_s_or_the_ingestion_time() {
    let read = "        kind: NdJson
        schema:
          fields:
            - name: city
              type: String";
    let harness = Harness::start().await;
    let dataset = harness.create(&root_manifest("places", read, APPEND)).await;
    let subject = "weir.ingest.alice.places";
    let mut dated = jetstream_message(1, subject, r#"{"city":"dated"}"#);
    dated
        .attributes
        .insert("odf-event-time".into(), "2020-02-02T00:00:00Z".into());
    let undated = jetstream_message(2, subject, r#"{"city":"undated"}"#);
    let before = chrono::Utc::now();
    let dispositions = queue(&harness).handle(&[dated, undated]).await;
    assert!(
        dispositions.iter().all(Disposition::is_done),
        "{dispositions:?}"
    );
    let rows = harness
        .rows(
            &dataset,
            "SELECT city, CAST(event_time AS VARCHAR), event_time >= system_time - INTERVAL '1 minute' FROM t ORDER BY offset",
        )
        .await;
    assert_eq!(rows[0], "dated,2020-02-02T00:00:00Z,false", "{rows:?}");
    assert!(
        rows[1].starts_with("undated,") && rows[1].ends_with(",true"),
        "{rows:?} {before}"
    );
}

/// A control plane that is down until told otherwise: every decision fails (503).
struct Flaky {
    down: std::sync::atomic::AtomicBool,
    asked: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl AccessPolicy for Flaky {
    async fn authenticate(&self, _authorization: Option<&str>) -> Result<Caller, ApiError> {
        Ok(Caller::anonymous())
    }

    async fn decide(
        &self,
        _caller: &Caller,
        _dataset_id: &str,
        _action: DatasetAction,
    ) -> Result<AccessDecision, ApiError> {
        use std::sync::atomic::Ordering;
        self.asked.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(ApiError::new(
                weir_function_runtime::ErrorKind::Retryable,
                "the control plane is unavailable",
            ));
        }
        Ok(AccessDecision::Allowed)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jetstream_consumer_retries_while_the_control_plane_is_down_and_keeps_order() {
    use std::sync::atomic::Ordering;
    let harness = Harness::start().await;
    let dataset = harness
        .create(&root_manifest("cities", NDJSON_READ, APPEND))
        .await;
    let flaky = Arc::new(Flaky {
        down: true.into(),
        asked: 0.into(),
    });
    let context = Arc::new(weir_ingest::IngestContext {
        store: harness.store.clone(),
        config: weir_ingest::IngestConfig::default(),
        access: flaky.clone(),
        notifier: None,
    });
    let name = unique("R");
    let prefix = format!("{name}.ingest");
    let config = QueueIngestConfig {
        subject_prefix: prefix.clone(),
        ..QueueIngestConfig::default()
    };
    weir_function_runtime::jetstream::spawn(
        weir_function_runtime::jetstream::JetStreamConsumerConfig {
            url: NATS_URL.to_string(),
            stream: name.clone(),
            subjects: vec![format!("{prefix}.>")],
            batch_messages: 50,
            dead_letter_prefix: format!("{name}.dead"),
            max_backoff_millis: 400,
            ..Default::default()
        },
        Arc::new(QueueIngest::with_caller(
            context,
            config,
            Caller::anonymous(),
        )),
    );
    let jetstream = async_nats::jetstream::new(async_nats::connect(NATS_URL).await.unwrap());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while jetstream.get_stream(&name).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stream was created"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for n in 1..=200u64 {
        jetstream
            .publish(format!("{prefix}.alice.cities"), record(n).into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    // The consumer keeps trying while the control plane is down, and commits nothing.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while flaky.asked.load(Ordering::SeqCst) < 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the consumer retried"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(add_data_blocks(&dataset).await, 0);
    flaky.down.store(false, Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while add_data_blocks(&dataset).await == 0 || count(&harness, &dataset).await != vec!["200,200"]
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "all committed once it is back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let expected: Vec<String> = (1..=200).map(|n| n.to_string()).collect();
    assert_eq!(
        harness
            .rows(&dataset, "SELECT population FROM t ORDER BY offset")
            .await,
        expected
    );
    // Nothing was dead-lettered: a transient failure is never a reason to give up.
    let mut dead = jetstream.get_stream(format!("{name}_DEAD")).await.unwrap();
    assert_eq!(dead.info().await.unwrap().state.messages, 0);
    let _ = jetstream.delete_stream(&name).await;
    let _ = jetstream.delete_stream(format!("{name}_DEAD")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_reaches_max_deliver_is_dead_lettered_with_why_not_dropped() {
    let harness = Harness::start().await;
    let dataset = harness
        .create(&root_manifest("cities", NDJSON_READ, APPEND))
        .await;
    let context = Arc::new(weir_ingest::IngestContext {
        store: harness.store.clone(),
        config: weir_ingest::IngestConfig::default(),
        access: Arc::new(Flaky {
            down: true.into(),
            asked: 0.into(),
        }),
        notifier: None,
    });
    let name = unique("M");
    let prefix = format!("{name}.ingest");
    let config = QueueIngestConfig {
        subject_prefix: prefix.clone(),
        ..QueueIngestConfig::default()
    };
    // One delivery allowed: a message that fails once has reached it.
    weir_function_runtime::jetstream::spawn(
        weir_function_runtime::jetstream::JetStreamConsumerConfig {
            url: NATS_URL.to_string(),
            stream: name.clone(),
            subjects: vec![format!("{prefix}.>")],
            max_deliver: 1,
            dead_letter_prefix: format!("{name}.dead"),
            ..Default::default()
        },
        Arc::new(QueueIngest::with_caller(
            context,
            config,
            Caller::anonymous(),
        )),
    );
    let jetstream = async_nats::jetstream::new(async_nats::connect(NATS_URL).await.unwrap());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while jetstream.get_stream(&name).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stream was created"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    jetstream
        .publish(format!("{prefix}.alice.cities"), record(1).into())
        .await
        .unwrap()
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let dead = loop {
        if let Ok(mut stream) = jetstream.get_stream(format!("{name}_DEAD")).await
            && stream.info().await.unwrap().state.messages == 1
        {
            break stream.get_raw_message(1).await.unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the message was dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let reason = dead.headers.get("Weir-Error").unwrap().to_string();
    assert!(reason.starts_with("gave up after 1 deliveries"), "{reason}");
    assert!(reason.contains("unavailable"), "{reason}");
    assert_eq!(add_data_blocks(&dataset).await, 0);
    let _ = jetstream.delete_stream(&name).await;
    let _ = jetstream.delete_stream(format!("{name}_DEAD")).await;
}
