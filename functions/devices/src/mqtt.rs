//! The MQTT bridge: one MQTT 5 session (clean start off, so the broker keeps what was not
//! acknowledged), subscribed to the data collection topics through a shared subscription
//! (`$share/<group>/…`: the broker gives each message to one replica of the group). Messages are
//! acknowledged by hand (QoS 1), each only after its outcome: committed, or refused for good.
//! A bridge killed before acknowledging gets its messages again from the broker when it comes
//! back under the same client id; they add nothing twice (see `handler`).

use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde::Deserialize;
use tokio::sync::mpsc;
use weir_function_runtime::messages::next_batch;

use crate::handler::DeviceIngest;
use crate::protocol::{DeviceRequest, Outcome, TOPIC_FILTERS, parse_topic};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    /// Must stay the same across restarts of one replica (a StatefulSet's pod name): the broker
    /// keeps the sessions' unacknowledged messages for these ids.
    pub client_id: String,
    /// The shared subscription group of the replicas; none subscribes plainly (one replica).
    pub share_group: Option<String>,
    /// Put before `kp1/…` in every topic (like a Mosquitto listener's `mount_point`): several
    /// nodes, or tests, share one broker without answering each other's devices.
    pub topic_prefix: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub keep_alive_seconds: u64,
    /// How long the broker keeps the session while the bridge is away.
    pub session_expiry_seconds: u32,
    /// Unacknowledged messages the broker may send at once per session (MQTT 5 receive
    /// maximum; Mosquitto also caps it at its `max_inflight_messages`, 20 by default).
    pub max_inflight: u16,
    /// Sessions the bridge holds (client ids `<client_id>-<n>` when more than one), all in the
    /// shared subscription: more messages in flight, so larger batches. One without a
    /// `share_group`.
    pub connections: usize,
    /// Largest packet the bridge takes; the broker drops larger ones unanswered, so it is above
    /// `max_payload_bytes`, which answers `/error` 400.
    pub max_packet_bytes: u32,
    pub max_batch_messages: usize,
    pub max_batch_wait_millis: u64,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_string(),
            port: 1883,
            client_id: "weir-devices".to_string(),
            share_group: Some("weir-devices".to_string()),
            topic_prefix: String::new(),
            username: None,
            password: None,
            keep_alive_seconds: 30,
            session_expiry_seconds: 24 * 3600,
            max_inflight: 1000,
            connections: 8,
            max_packet_bytes: 16 << 20,
            max_batch_messages: 1000,
            max_batch_wait_millis: 20,
        }
    }
}

/// A message and the connection it came on (its ack goes back on that one).
type Received = (AsyncClient, Publish);

/// Starts the bridge; it reconnects by itself for as long as the process runs.
pub fn spawn(config: MqttConfig, ingest: Arc<DeviceIngest>) {
    // Plain subscriptions would each get every message: several sessions need a shared one.
    let connections = match config.share_group {
        Some(_) => config.connections.max(1),
        None => 1,
    };
    let capacity = (config.max_inflight as usize * 2 + 64) * connections;
    let (sender, receiver) = mpsc::channel::<Received>(capacity);
    tokio::spawn(work(config.clone(), receiver, ingest));
    for index in 0..connections {
        let client_id = if connections == 1 {
            config.client_id.clone()
        } else {
            format!("{}-{index}", config.client_id)
        };
        connect(config.clone(), client_id, sender.clone());
    }
}

/// One MQTT session of the bridge, feeding `sender`.
fn connect(config: MqttConfig, client_id: String, sender: mpsc::Sender<Received>) {
    let mut options = MqttOptions::new(&client_id, &config.host, config.port);
    options
        .set_keep_alive(Duration::from_secs(config.keep_alive_seconds.max(5)))
        .set_clean_start(false)
        .set_manual_acks(true)
        .set_session_expiry_interval(Some(config.session_expiry_seconds))
        .set_receive_maximum(Some(config.max_inflight.max(1)))
        .set_max_packet_size(Some(config.max_packet_bytes));
    if let (Some(username), Some(password)) = (&config.username, &config.password) {
        options.set_credentials(username, password);
    }
    let (client, mut eventloop) = AsyncClient::new(options, config.max_inflight as usize * 2 + 64);
    tokio::spawn(async move {
        let filters: Vec<String> = TOPIC_FILTERS
            .iter()
            .map(|filter| match &config.share_group {
                Some(group) => format!("$share/{group}/{}{filter}", config.topic_prefix),
                None => format!("{}{filter}", config.topic_prefix),
            })
            .collect();
        let mut backoff = Duration::from_secs(1);
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff = Duration::from_secs(1);
                    tracing::info!(host = %config.host, port = config.port, %client_id, "mqtt bridge connected");
                    for filter in &filters {
                        if let Err(error) = client.subscribe(filter.clone(), QoS::AtLeastOnce).await
                        {
                            tracing::warn!(%error, %filter, "cannot subscribe");
                        }
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    if sender.send((client.clone(), publish)).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, host = %config.host, port = config.port, retry_in = ?backoff, "mqtt broker unreachable");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    });
}

/// Takes batches off the connections and settles every message of each in order.
async fn work(
    config: MqttConfig,
    mut receiver: mpsc::Receiver<Received>,
    ingest: Arc<DeviceIngest>,
) {
    let wait = Duration::from_millis(config.max_batch_wait_millis);
    while let Some(batch) = next_batch(&mut receiver, config.max_batch_messages, wait).await {
        settle(&ingest, &config.topic_prefix, batch).await;
    }
}

async fn settle(ingest: &DeviceIngest, prefix: &str, batch: Vec<Received>) {
    let mut pending: Vec<(Received, DeviceRequest)> = Vec::with_capacity(batch.len());
    for (client, publish) in batch {
        let topic = String::from_utf8_lossy(&publish.topic).to_string();
        let parsed = match topic.strip_prefix(prefix) {
            Some(rest) => parse_topic(rest),
            None => Err(format!("the topic does not start with `{prefix}`")),
        };
        match parsed {
            Ok(Some((version, token, request_id))) => {
                let request = DeviceRequest {
                    version,
                    token,
                    request_id,
                    payload: publish.payload.clone(),
                    redelivered: publish.dup,
                };
                pending.push(((client, publish), request));
            }
            Ok(None) => ack(&client, &publish).await,
            Err(reason) => {
                // No topic to answer on. The topic may hold a token: it is not logged.
                tracing::debug!(%reason, "not a data collection topic");
                crate::meter::metrics()
                    .rejections
                    .with_label_values(&["400"])
                    .inc();
                ack(&client, &publish).await;
            }
        }
    }
    let mut backoff = Duration::from_millis(100);
    while !pending.is_empty() {
        let requests: Vec<DeviceRequest> =
            pending.iter().map(|(_, request)| request.clone()).collect();
        let outcomes = ingest.handle(&requests).await;
        if std::env::var("WEIR_FAULT").as_deref() == Ok("abort-before-ack")
            && outcomes.contains(&Outcome::Committed)
        {
            tracing::error!("WEIR_FAULT=abort-before-ack: aborting after a commit");
            std::process::abort();
        }
        let mut again = Vec::new();
        let mut reason = String::new();
        for (((client, publish), mut request), outcome) in pending.into_iter().zip(outcomes) {
            match outcome {
                Outcome::Committed => {
                    reply(&client, &publish, request.request_id, "status", Vec::new()).await;
                    ack(&client, &publish).await;
                }
                Outcome::Failed(failure) => {
                    let body = failure.to_json();
                    reply(&client, &publish, request.request_id, "error", body).await;
                    ack(&client, &publish).await;
                }
                Outcome::Retry(why) => {
                    // It may have been committed after all: look it up next time.
                    request.redelivered = true;
                    reason = why;
                    again.push(((client, publish), request));
                }
            }
        }
        pending = again;
        if !pending.is_empty() {
            tracing::warn!(messages = pending.len(), %reason, ?backoff, "device messages wait to be retried");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

async fn reply(
    client: &AsyncClient,
    publish: &Publish,
    request_id: Option<u64>,
    kind: &str,
    payload: Vec<u8>,
) {
    if request_id.is_none() {
        return;
    }
    let topic = format!("{}/{kind}", String::from_utf8_lossy(&publish.topic));
    if let Err(error) = client.publish(topic, publish.qos, false, payload).await {
        tracing::warn!(%error, "cannot answer a device");
    }
}

async fn ack(client: &AsyncClient, publish: &Publish) {
    if let Err(error) = client.ack(publish).await {
        tracing::warn!(%error, "cannot acknowledge a device message");
    }
}
