//! Queue ingest benchmark (tests/bench/queue.sh): N NDJSON records of about 256 bytes published
//! to NATS JetStream with `Nats-Msg-Id`, then consumed
//! - by a plain async-nats pull consumer that only acks each message (the peer), and
//! - by Weir's JetStream consumer committing them into a dataset on local storage,
//!
//! each from a stream of its own, already full, timed from the consumer's start until the last
//! message is acked (peer) or the dataset holds every record (Weir). Prints one JSON line.
//!
//!   queue_bench [MESSAGES] [NATS_URL]

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
                .unwrap(),
        );
        if pending.len() >= 20_000 {
            while pending.len() > 10_000 {
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
    let store = weir_dataset::DatasetStore::local_fs(dir.path()).unwrap();
    let definition = weir_odf::manifest::parse_dataset_manifest(MANIFEST).unwrap();
    let (dataset, _) = store
        .create_dataset(&"bench".parse().unwrap(), definition, chrono::Utc::now())
        .await
        .unwrap();
    let context = Arc::new(IngestContext::standalone(store, IngestConfig::default()));
    let config = QueueIngestConfig {
        subject_prefix: "BENCH_WEIR.ingest".to_string(),
        ..QueueIngestConfig::default()
    };
    let handler = Arc::new(QueueIngest::with_caller(
        context,
        config,
        Caller::anonymous(),
    ));
    let rss_before = rss_kib();
    let started = Instant::now();
    weir_function_runtime::jetstream::spawn(
        JetStreamConsumerConfig {
            url: url.clone(),
            stream: "BENCH_WEIR".to_string(),
            subjects: vec!["BENCH_WEIR.>".to_string()],
            durable: "weir".to_string(),
            dead_letter_prefix: "BENCH_WEIR_DEAD".to_string(),
            ..Default::default()
        },
        handler,
    );
    let mut peak_rss = rss_before;
    loop {
        let chain = dataset.load_chain(None).await.unwrap();
        if chain.state.last_offset().map(|last| last + 1) == Some(messages) {
            break;
        }
        peak_rss = peak_rss.max(rss_kib());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let weir_seconds = started.elapsed().as_secs_f64();
    let chain = dataset.load_chain(None).await.unwrap();
    let blocks = chain
        .blocks
        .iter()
        .filter(|(_, block)| matches!(block.event, weir_odf::MetadataEvent::AddData(_)))
        .count();
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
