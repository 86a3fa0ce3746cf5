//! Queue ingest benchmark (tests/bench/queue.sh): N NDJSON records of about 256 bytes published
//! to NATS JetStream with `Nats-Msg-Id`, then consumed
//! - by a plain async-nats pull consumer that only acks each message (the peer), and
//! - by Weir's JetStream consumer committing them into a dataset on local storage,
//!
//! each from a stream of its own, already full, timed from the consumer's start until the last
//! message is acked (peer) or the dataset holds every record (Weir). Prints one JSON line.
//!
//!   queue_bench [MESSAGES] [NATS_URL]
//!
//! With `sqs` first, the same through SQS and S3 notifications on an S3/SQS API server (moto,
//! whose request rate bounds both sides): the peer is a plain aws-sdk-sqs consumer that receives
//! and deletes; then OBJECTS files of 100 records dropped into a bucket reach the dataset through
//! its ObjectCreated notifications.
//!
//!   queue_bench sqs [MESSAGES] [ENDPOINT] [OBJECTS]

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use weir_function_runtime::Caller;
use weir_function_runtime::jetstream::JetStreamConsumerConfig;
use weir_ingest::queue::{QueueIngest, QueueIngestConfig};
use weir_ingest::{IngestConfig, IngestContext};

const MANIFEST: &str = "kind: DatasetSnapshot
version: 1
content:
  name: readings
  kind: Root
  metadata:
    - kind: AddPushSource
      sourceName: default
      read:
        kind: NdJson
        schema:
          fields:
            - name: event_time
              type: Timestamp
            - name: sensor
              type: String
            - name: seq
              type: Int64
            - name: value
              type: Float64
            - name: note
              type: String
      merge:
        kind: Append
";

fn record(n: u64) -> String {
    let mut line = format!(
        r#"{{"event_time":"2024-01-01T00:00:{:02}Z","sensor":"s-{:06}","seq":{n},"value":{}.{:03},"note":""#,
        n % 60,
        n % 1000,
        n % 100,
        n % 1000
    );
    while line.len() < 254 {
        line.push('x');
    }
    line.push_str("\"}");
    line
}

/// A dataset of `MANIFEST` on local storage under `dir`, and queue ingest writing into it.
async fn target(
    dir: &std::path::Path,
    config: QueueIngestConfig,
    ingest: IngestConfig,
) -> (weir_dataset::Dataset, Arc<QueueIngest>) {
    let store = weir_dataset::DatasetStore::local_fs(dir).unwrap();
    let definition = weir_odf::manifest::parse_dataset_manifest(MANIFEST).unwrap();
    let (dataset, _) = store
        .create_dataset(&"bench".parse().unwrap(), definition, chrono::Utc::now())
        .await
        .unwrap();
    let context = Arc::new(IngestContext::standalone(store, ingest));
    let handler = Arc::new(QueueIngest::with_caller(
        context,
        config,
        Caller::anonymous(),
    ));
    (dataset, handler)
}

/// Waits until `dataset` holds `records`; returns the peak RSS seen meanwhile (KiB).
async fn wait_for(dataset: &weir_dataset::Dataset, records: u64) -> u64 {
    let mut peak_rss = rss_kib();
    loop {
        let chain = dataset.load_chain(None).await.unwrap();
        if chain.state.last_offset().map(|last| last + 1) == Some(records) {
            return peak_rss;
        }
        peak_rss = peak_rss.max(rss_kib());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn add_data_blocks(dataset: &weir_dataset::Dataset) -> usize {
    let chain = dataset.load_chain(None).await.unwrap();
    chain
        .blocks
        .iter()
        .filter(|(_, block)| matches!(block.event, weir_odf::MetadataEvent::AddData(_)))
        .count()
}

async fn publish(
    jetstream: &async_nats::jetstream::Context,
    stream: &str,
    subject: &str,
    messages: u64,
) {
    let _ = jetstream.delete_stream(stream).await;
    jetstream
        .create_stream(async_nats::jetstream::stream::Config {
            name: stream.to_string(),
            subjects: vec![format!("{stream}.>")],
            ..Default::default()
        })
        .await
        .unwrap();
    let mut pending = futures::stream::FuturesUnordered::new();
    for n in 1..=messages {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", n.to_string().as_str());
        pending.push(
            jetstream
                .publish_with_headers(subject.to_string(), headers, record(n).into())
                .await
                .unwrap()
                .into_future(),
        );
        // The client holds at most a few thousand unacknowledged publishes.
        if pending.len() >= 2_000 {
            while pending.len() > 1_000 {
                pending.next().await.unwrap().unwrap();
            }
        }
    }
    while let Some(ack) = pending.next().await {
        ack.unwrap();
    }
}

/// Seconds for a plain pull consumer to receive and ack every message.
async fn plain_consumer(
    jetstream: &async_nats::jetstream::Context,
    stream: &str,
    messages: u64,
) -> f64 {
    let consumer: async_nats::jetstream::consumer::PullConsumer = jetstream
        .get_stream(stream)
        .await
        .unwrap()
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some("plain".to_string()),
            ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
            max_ack_pending: 40_000,
            ..Default::default()
        })
        .await
        .unwrap();
    let started = Instant::now();
    let mut stream = consumer
        .stream()
        .max_messages_per_batch(10_000)
        .messages()
        .await
        .unwrap();
    let mut seen = 0;
    while seen < messages {
        let message = stream.next().await.unwrap().unwrap();
        message.ack().await.unwrap();
        seen += 1;
    }
    started.elapsed().as_secs_f64()
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    if std::env::args().nth(1).as_deref() == Some("sqs") {
        return sqs::bench().await;
    }
    let mut args = std::env::args().skip(1);
    let messages: u64 = args.next().map(|n| n.parse().unwrap()).unwrap_or(1_000_000);
    let url = args
        .next()
        .unwrap_or_else(|| "nats://127.0.0.1:4222".to_string());
    let client = async_nats::connect(&url).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);

    let started = Instant::now();
    publish(&jetstream, "BENCH_PLAIN", "BENCH_PLAIN.readings", messages).await;
    let publish_seconds = started.elapsed().as_secs_f64();
    let plain_seconds = plain_consumer(&jetstream, "BENCH_PLAIN", messages).await;
    let _ = jetstream.delete_stream("BENCH_PLAIN").await;

    publish(
        &jetstream,
        "BENCH_WEIR",
        "BENCH_WEIR.ingest.bench.readings",
        messages,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = QueueIngestConfig {
        subject_prefix: "BENCH_WEIR.ingest".to_string(),
        ..QueueIngestConfig::default()
    };
    let (dataset, handler) = target(dir.path(), config, IngestConfig::default()).await;
    let rss_before = rss_kib();
    let started = Instant::now();
    weir_function_runtime::jetstream::spawn(
        JetStreamConsumerConfig {
            url: url.clone(),
            stream: "BENCH_WEIR".to_string(),
            subjects: vec!["BENCH_WEIR.>".to_string()],
            durable: "weir".to_string(),
            dead_letter_prefix: "BENCH_WEIR_DEAD".to_string(),
            batch_messages: std::env::var("WEIR_BENCH_BATCH")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(10_000),
            ..Default::default()
        },
        handler,
    );
    let peak_rss = wait_for(&dataset, messages).await;
    let weir_seconds = started.elapsed().as_secs_f64();
    let blocks = add_data_blocks(&dataset).await;
    let _ = jetstream.delete_stream("BENCH_WEIR").await;
    let _ = jetstream.delete_stream("BENCH_WEIR_DEAD").await;
    println!(
        "{}",
        serde_json::json!({
            "messages": messages,
            "message_bytes": record(1).len(),
            "publish_per_s": (messages as f64 / publish_seconds).round(),
            "plain_consumer_per_s": (messages as f64 / plain_seconds).round(),
            "weir_committed_per_s": (messages as f64 / weir_seconds).round(),
            "ratio_to_plain": ((plain_seconds / weir_seconds) * 100.0).round() / 100.0,
            "blocks": blocks,
            "rss_mib_before": rss_before / 1024,
            "rss_mib_peak": peak_rss / 1024,
        })
    );
}

mod sqs {
    use super::*;
    use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
    use object_store::ObjectStoreExt;
    use weir_function_runtime::sqs::SqsConsumerConfig;

    fn sqs_config(endpoint: &str, queue_url: &str) -> SqsConsumerConfig {
        SqsConsumerConfig {
            queue_url: queue_url.to_string(),
            endpoint: Some(endpoint.to_string()),
            region: Some("us-east-1".to_string()),
            access_key_id: Some("test".to_string()),
            secret_access_key: Some("test".to_string()),
            wait_seconds: 1,
            ..Default::default()
        }
    }

    async fn send(client: &aws_sdk_sqs::Client, queue_url: &str, messages: u64) {
        let attribute = MessageAttributeValue::builder()
            .data_type("String")
            .string_value("bench/readings")
            .build()
            .unwrap();
        for chunk in (1..=messages).collect::<Vec<_>>().chunks(10) {
            let entries = chunk
                .iter()
                .map(|n| {
                    SendMessageBatchRequestEntry::builder()
                        .id(n.to_string())
                        .message_body(record(*n))
                        .message_attributes("odf-dataset", attribute.clone())
                        .build()
                        .unwrap()
                })
                .collect();
            client
                .send_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .unwrap();
        }
    }

    /// Seconds for a plain consumer to receive and delete `messages`.
    async fn plain_consumer(client: &aws_sdk_sqs::Client, queue_url: &str, messages: u64) -> f64 {
        use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
        let started = Instant::now();
        let mut seen = 0;
        while seen < messages {
            let received = client
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap()
                .messages
                .unwrap_or_default();
            if received.is_empty() {
                continue;
            }
            seen += received.len() as u64;
            let entries = received
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle().unwrap())
                        .build()
                        .unwrap()
                })
                .collect();
            client
                .delete_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .unwrap();
        }
        started.elapsed().as_secs_f64()
    }

    pub async fn bench() {
        let mut args = std::env::args().skip(2);
        let messages: u64 = args.next().map(|n| n.parse().unwrap()).unwrap_or(2000);
        let endpoint = args
            .next()
            .unwrap_or_else(|| "http://127.0.0.1:5555".to_string());
        let objects: u64 = args.next().map(|n| n.parse().unwrap()).unwrap_or(100);
        let name = format!("bench-{}", uuid::Uuid::new_v4().simple());
        let setup = std::process::Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sqs_moto.py"))
            .args(["setup", &name])
            .env("WEIR_TEST_S3_ENDPOINT", &endpoint)
            .output()
            .unwrap();
        assert!(
            setup.status.success(),
            "{}",
            String::from_utf8_lossy(&setup.stderr)
        );
        let queues: serde_json::Value = serde_json::from_slice(&setup.stdout).unwrap();
        let queue_url = queues["queue"].as_str().unwrap().to_string();
        let config = sqs_config(&endpoint, &queue_url);
        let client = weir_function_runtime::sqs::client(&config).await;
        // The bucket's test event.
        plain_consumer(&client, &queue_url, 1).await;

        send(&client, &queue_url, messages).await;
        let plain_seconds = plain_consumer(&client, &queue_url, messages).await;

        send(&client, &queue_url, messages).await;
        let dir = tempfile::tempdir().unwrap();
        let queue_config = QueueIngestConfig {
            objects: vec![weir_ingest::queue::objects::ObjectRule {
                bucket: name.clone(),
                prefix: "cities/".to_string(),
                dataset: "bench/readings".to_string(),
                source: None,
                content_type: None,
            }],
            ..QueueIngestConfig::default()
        };
        let access = weir_dataset::polling::S3Access {
            endpoint: Some(endpoint.clone()),
            region: Some("us-east-1".to_string()),
            access_key_id: Some("test".to_string()),
            secret_access_key: Some("test".to_string()),
            allow_http: true,
        };
        let mut ingest = IngestConfig::default();
        ingest.polling.s3 = Some(access);
        let (dataset, handler) = target(dir.path(), queue_config, ingest).await;
        let started = Instant::now();
        weir_function_runtime::sqs::spawn(config, handler);
        wait_for(&dataset, messages).await;
        let weir_seconds = started.elapsed().as_secs_f64();
        let message_blocks = add_data_blocks(&dataset).await;

        let store = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&endpoint)
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .with_allow_http(true)
            .with_bucket_name(&name)
            .build()
            .unwrap();
        let started = Instant::now();
        for object in 0..objects {
            let body: String = (0..100).map(|i| record(object * 100 + i) + "\n").collect();
            store
                .put(
                    &object_store::path::Path::from(format!("cities/{object:05}.ndjson")),
                    body.into(),
                )
                .await
                .unwrap();
        }
        wait_for(&dataset, messages + objects * 100).await;
        let object_seconds = started.elapsed().as_secs_f64();
        println!(
            "{}",
            serde_json::json!({
                "sqs_messages": messages,
                "plain_consumer_per_s": (messages as f64 / plain_seconds).round(),
                "weir_committed_per_s": (messages as f64 / weir_seconds).round(),
                "weir_overhead_ms_per_message":
                    ((weir_seconds - plain_seconds) * 1000.0 / messages as f64 * 100.0).round() / 100.0,
                "message_blocks": message_blocks,
                "objects": objects,
                "records_per_object": 100,
                "objects_per_s": (objects as f64 / object_seconds * 10.0).round() / 10.0,
            })
        );
    }
}
