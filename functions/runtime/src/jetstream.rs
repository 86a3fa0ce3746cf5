//! A long-running NATS JetStream consumer feeding a [`MessageHandler`]: a durable pull consumer
//! with explicit acks, for `weir up`, containers and KEDA-scaled Deployments.
//!
//! Each fetch is one batch. While the handler works, every message of the batch is kept alive
//! with `+WPI` (work in progress), so JetStream does not deliver it to another replica. A message
//! is acked only once the handler answers `Done` (for ingest: its block is durable). `Reject`
//! publishes it with the reason to the dead-letter subject (`<dead_letter_prefix>.<subject>`,
//! header `Weir-Error`), then acks it. `Retry` keeps it in this process and tries again with
//! backoff, so a dataset's messages are committed in stream order even across storage outages; a
//! message that reaches `max_deliver` deliveries is dead-lettered instead of dropped.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt;
use serde::Deserialize;

use crate::messages::{Disposition, MessageHandler, QueueMessage};

/// Header naming why a message was dead-lettered.
pub const ERROR_HEADER: &str = "Weir-Error";

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JetStreamConsumerConfig {
    pub url: String,
    /// The stream, created with `subjects` when missing.
    pub stream: String,
    pub subjects: Vec<String>,
    /// The durable consumer, shared by every replica.
    pub durable: String,
    /// Largest batch: messages, bytes, and how long a fetch waits to fill it.
    pub batch_messages: usize,
    pub batch_bytes: usize,
    pub batch_wait_millis: u64,
    /// How long a delivered message waits for its ack before JetStream delivers it again.
    pub ack_wait_seconds: u64,
    /// Deliveries before a message that keeps failing is dead-lettered.
    pub max_deliver: i64,
    /// Rejected messages go to `<prefix>.<original subject>` (kept by the stream `<stream>_DEAD`).
    pub dead_letter_prefix: String,
    /// Longest pause between two tries of a batch that failed for a transient reason.
    pub max_backoff_millis: u64,
}

impl Default for JetStreamConsumerConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".to_string(),
            stream: "WEIR_INGEST".to_string(),
            subjects: vec!["weir.ingest.>".to_string()],
            durable: "weir-ingest".to_string(),
            batch_messages: 10_000,
            batch_bytes: 8 << 20,
            batch_wait_millis: 100,
            ack_wait_seconds: 30,
            max_deliver: 10,
            dead_letter_prefix: "weir.dead".to_string(),
            max_backoff_millis: 30_000,
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Consumes until the process ends, reconnecting after failures.
pub fn spawn(config: JetStreamConsumerConfig, handler: Arc<dyn MessageHandler>) {
    tokio::spawn(async move {
        loop {
            if let Err(error) = consume(&config, handler.as_ref()).await {
                tracing::warn!(%error, url = %config.url, stream = %config.stream,
                    "jetstream consumer stopped; reconnecting");
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
}

/// Creates the stream and its dead-letter stream when missing, and the durable consumer.
pub async fn connect(
    config: &JetStreamConsumerConfig,
) -> Result<(jetstream::Context, pull::Stream), BoxError> {
    let client = async_nats::connect(&config.url).await?;
    let context = jetstream::new(client);
    let stream = context
        .get_or_create_stream(stream::Config {
            name: config.stream.clone(),
            subjects: config.subjects.clone(),
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await?;
    context
        .get_or_create_stream(stream::Config {
            name: format!("{}_DEAD", config.stream),
            subjects: vec![format!("{}.>", config.dead_letter_prefix)],
            ..Default::default()
        })
        .await?;
    let consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer(
            &config.durable,
            pull::Config {
                durable_name: Some(config.durable.clone()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(config.ack_wait_seconds),
                max_deliver: config.max_deliver,
                max_ack_pending: (config.batch_messages * 4) as i64,
                ..Default::default()
            },
        )
        .await?;
    // One pull stream keeps a fetch in flight while a batch is handled.
    let messages = consumer
        .stream()
        .max_messages_per_batch(config.batch_messages)
        .max_bytes_per_batch(config.batch_bytes)
        .expires(Duration::from_millis(
            config.batch_wait_millis.max(100) * 10,
        ))
        .messages()
        .await?;
    Ok((context, messages))
}

async fn consume(
    config: &JetStreamConsumerConfig,
    handler: &dyn MessageHandler,
) -> Result<(), BoxError> {
    let (context, mut messages) = connect(config).await?;
    tracing::info!(stream = %config.stream, durable = %config.durable, "consuming");
    loop {
        let Some(first) = messages.next().await else {
            return Ok(());
        };
        let mut batch = vec![first?];
        let mut bytes = batch[0].payload.len();
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(config.batch_wait_millis);
        while batch.len() < config.batch_messages && bytes < config.batch_bytes {
            match tokio::time::timeout_at(deadline, messages.next()).await {
                Ok(Some(message)) => {
                    let message = message?;
                    bytes += message.payload.len();
                    batch.push(message);
                }
                Ok(None) | Err(_) => break,
            }
        }
        handle_batch(config, &context, handler, batch).await;
    }
}

/// Handles one batch to its end: every message acked, dead-lettered, or (when this process
/// stops first) left for JetStream to deliver again.
async fn handle_batch(
    config: &JetStreamConsumerConfig,
    context: &jetstream::Context,
    handler: &dyn MessageHandler,
    batch: Vec<jetstream::Message>,
) {
    let mut queued: Vec<QueueMessage> = batch.iter().map(queue_message).collect();
    let mut pending = batch;
    let keep_alive = keep_alive(
        context.client(),
        pending
            .iter()
            .filter_map(|message| message.reply.clone())
            .collect(),
        Duration::from_secs(config.ack_wait_seconds),
    );
    let mut backoff = Duration::from_millis(100);
    while !pending.is_empty() {
        let dispositions = handler.handle(&queued).await;
        abort_before_ack_if_asked(&dispositions);
        let mut retry = Vec::new();
        let mut retry_queued = Vec::new();
        let mut done = Vec::new();
        let answers = dispositions.into_iter().chain(std::iter::repeat_with(|| {
            Disposition::Retry("the handler gave no answer".into())
        }));
        for ((message, queued), disposition) in pending.into_iter().zip(queued).zip(answers) {
            let reason = match disposition {
                Disposition::Done => {
                    done.push(message);
                    continue;
                }
                Disposition::Reject(reason) => reason,
                Disposition::Retry(reason)
                    if queued.delivery_count as i64 >= config.max_deliver =>
                {
                    format!(
                        "gave up after {} deliveries: {reason}",
                        queued.delivery_count
                    )
                }
                Disposition::Retry(reason) => {
                    tracing::warn!(subject = ?queued.subject, %reason, "retrying a message");
                    retry.push(message);
                    retry_queued.push(queued);
                    continue;
                }
            };
            match dead_letter(config, context, &message, &reason).await {
                Ok(()) => {
                    let _ = message.ack().await;
                }
                Err(error) => {
                    tracing::warn!(%error, "dead-lettering failed; retrying the message");
                    retry.push(message);
                    retry_queued.push(queued);
                }
            }
        }
        // The acks go out while the next batch is read: its messages are committed already.
        tokio::spawn(async move {
            for message in done {
                if let Err(error) = message.ack().await {
                    tracing::warn!(%error, "ack failed; the message comes again and is found committed");
                }
            }
        });
        pending = retry;
        queued = retry_queued;
        if !pending.is_empty() {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(config.max_backoff_millis));
        }
    }
    keep_alive.abort();
}

/// Test hook (`WEIR_FAULT=abort-before-ack`): the process dies as under `kill -9` once a batch
/// is committed and before any of it is acked.
fn abort_before_ack_if_asked(dispositions: &[Disposition]) {
    if dispositions.iter().any(Disposition::is_done)
        && std::env::var("WEIR_FAULT").as_deref() == Ok("abort-before-ack")
    {
        std::process::abort();
    }
}

/// Sends `+WPI` (work in progress) for every message of a batch a few times per ack wait,
/// until aborted.
fn keep_alive(
    client: async_nats::Client,
    replies: Vec<async_nats::Subject>,
    ack_wait: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let period = (ack_wait / 3).max(Duration::from_millis(500));
        loop {
            tokio::time::sleep(period).await;
            for reply in &replies {
                let _ = client
                    .publish(reply.clone(), bytes::Bytes::from_static(b"+WPI"))
                    .await;
            }
        }
    })
}

async fn dead_letter(
    config: &JetStreamConsumerConfig,
    context: &jetstream::Context,
    message: &jetstream::Message,
    reason: &str,
) -> Result<(), BoxError> {
    let mut headers = message.headers.clone().unwrap_or_default();
    // Header values are one line.
    let reason: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    headers.insert(ERROR_HEADER, reason.as_str());
    let subject = format!("{}.{}", config.dead_letter_prefix, message.subject);
    context
        .publish_with_headers(subject, headers, message.payload.clone())
        .await?
        .await?;
    tracing::warn!(subject = %message.subject, %reason, "message dead-lettered");
    Ok(())
}

/// The handler's view of a JetStream message: headers as attributes (lower-case names), the
/// stream sequence as its place, `<stream>:<sequence>` as its id.
pub fn queue_message(message: &jetstream::Message) -> QueueMessage {
    let mut attributes = std::collections::BTreeMap::new();
    if let Some(headers) = &message.headers {
        for (name, values) in headers.iter() {
            if let Some(value) = values.first() {
                attributes.insert(name.to_string().to_ascii_lowercase(), value.to_string());
            }
        }
    }
    let info = message.info().ok();
    let stream = info.as_ref().map(|info| info.stream).unwrap_or_default();
    let sequence = info.as_ref().map(|info| info.stream_sequence);
    QueueMessage {
        message_id: format!("{stream}:{}", sequence.unwrap_or_default()),
        body: message.payload.clone(),
        attributes,
        group_id: None,
        origin: format!("jetstream/{stream}"),
        subject: Some(message.subject.to_string()),
        sequence,
        delivery_count: info
            .as_ref()
            .map(|info| info.delivered.max(1) as u32)
            .unwrap_or(1),
        sent_at: info.as_ref().and_then(|info| {
            let nanos = info.published.timestamp_nanos_opt()?;
            Some(SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos.max(0) as u64))
        }),
        caller: None,
        fresh: false,
    }
}

/// What `watch_subject` calls: `Some(payload)` for each message, `None` whenever messages may
/// have been missed (at the start, and after the connection came back).
pub type SubjectWatcher = Arc<dyn Fn(Option<&[u8]>) + Send + Sync>;

/// Follows `subject` on plain NATS (at most once) for as long as the process runs, reconnecting
/// by itself; for caches that must hear of changes at once and start over after a gap.
pub fn watch_subject(url: String, subject: String, watcher: SubjectWatcher) {
    tokio::spawn(async move {
        loop {
            let on_reconnect = watcher.clone();
            let connected = async_nats::ConnectOptions::new()
                .event_callback(move |event| {
                    let watcher = on_reconnect.clone();
                    async move {
                        if matches!(event, async_nats::Event::Connected) {
                            watcher(None);
                        }
                    }
                })
                .connect(&url)
                .await;
            match connected {
                Ok(client) => match client.subscribe(subject.clone()).await {
                    Ok(mut messages) => {
                        watcher(None);
                        while let Some(message) = messages.next().await {
                            watcher(Some(&message.payload));
                        }
                        watcher(None);
                    }
                    Err(error) => tracing::warn!(%error, %subject, "cannot subscribe"),
                },
                Err(error) => tracing::warn!(%error, %url, "cannot reach nats"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}
