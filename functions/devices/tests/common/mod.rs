//! The deployed shape for device tests: a control plane serving its REST API on loopback (its
//! event bus on the real NATS server), the real `weir-devices` binary bridging the real
//! Mosquitto on 127.0.0.1:1883, and MQTT devices as test clients.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion::prelude::SessionContext;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::{Value, json};
use weir_control_plane::config::BusConfig;
use weir_control_plane::{ControlPlane, ControlPlaneConfig};

pub const NATS_URL: &str = "nats://127.0.0.1:4222";
pub const BROKER_PORT: u16 = 1883;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

pub struct Node {
    pub control_plane: Arc<ControlPlane>,
    pub url: String,
    pub admin_token: String,
    pub bus_prefix: String,
    /// Before `kp1/` in this node's topics: tests share the broker.
    pub topic_prefix: String,
    pub dir: tempfile::TempDir,
    pub client: reqwest::Client,
}

impl Node {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bus_prefix = unique("wdev");
        let config = ControlPlaneConfig {
            database_url: format!("sqlite://{}", dir.path().join("meta.db").display()),
            storage: weir_dataset::StorageConfig::LocalFs {
                root_dir: dir.path().join("datasets"),
            },
            bus: BusConfig::Nats {
                url: NATS_URL.to_string(),
                prefix: bus_prefix.clone(),
            },
            ..Default::default()
        };
        std::fs::create_dir_all(dir.path().join("datasets")).unwrap();
        let control_plane = ControlPlane::start(config).await.unwrap();
        let admin_token = control_plane
            .accounts
            .issue_token(&control_plane.admin, "devices test")
            .await
            .unwrap()
            .token;
        let router = weir_control_plane::rest::router(control_plane.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            control_plane,
            url,
            admin_token,
            topic_prefix: format!("{bus_prefix}/"),
            bus_prefix,
            dir,
            client: reqwest::Client::new(),
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.url))
            .bearer_auth(&self.admin_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A root dataset for device samples, an application, a version (`/ts` is the event time)
    /// and one endpoint with a token. Returns (dataset id, version name, endpoint id, token).
    pub async fn provision(&self, name: &str) -> Provisioned {
        let manifest = format!(
            "kind: DatasetSnapshot\nversion: 1\ncontent:\n  name: {name}\n  kind: Root\n  metadata:\n    - kind: AddPushSource\n      sourceName: default\n      read:\n        kind: NdJson\n        schema:\n          fields:\n            - name: event_time\n              type: Timestamp\n            - name: endpoint_id\n              type: String\n            - name: temperature\n              type: Float64\n            - name: seq\n              type: Int64\n      merge:\n        kind: Append\n"
        );
        let response = self
            .client
            .post(format!("{}/datasets", self.url))
            .bearer_auth(&self.admin_token)
            .header("content-type", "application/yaml")
            .body(manifest)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let created: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "{created}");
        let dataset_id = created["id"].as_str().unwrap().to_string();
        let application = format!("{name}-app");
        let (status, body) = self
            .call(
                "POST",
                "/devices/applications",
                Some(json!({"name": application, "dataset": format!("admin/{name}")})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let version = format!("{name}-v1");
        let (status, body) = self
            .call(
                "POST",
                &format!("/devices/applications/{application}/versions"),
                Some(json!({"name": version, "eventTimePointer": "/ts"})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let (endpoint, token) = self.endpoint(&application).await;
        Provisioned {
            dataset_id,
            application,
            version,
            endpoint,
            token,
        }
    }

    pub async fn endpoint(&self, application: &str) -> (String, String) {
        let (status, body) = self
            .call(
                "POST",
                &format!("/devices/applications/{application}/endpoints"),
                Some(json!({"attributes": {"room": "kitchen"}, "token": {}})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["id"].as_str().unwrap().to_string(),
            body["token"]["token"].as_str().unwrap().to_string(),
        )
    }

    /// Rows of `sql` over the dataset (as table `t`), one string per row.
    pub async fn rows(&self, dataset_id: &str, sql: &str) -> Vec<String> {
        let store = weir_dataset::DatasetStore::local_fs(self.dir.path().join("datasets")).unwrap();
        let id: weir_odf::DatasetId = dataset_id.parse().unwrap();
        let dataset = store.dataset(&id);
        let session = SessionContext::new();
        let table = weir_dataset::table::dataset_table(&session, &store, &dataset, None)
            .await
            .unwrap();
        session.register_table("t", table).unwrap();
        let batches = session.sql(sql).await.unwrap().collect().await.unwrap();
        let text = arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        text.lines()
            .filter(|line| line.starts_with('|'))
            .skip(1)
            .map(|line| {
                line.trim_matches('|')
                    .split('|')
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    }

    /// The bridge's config file.
    pub fn bridge_config(&self, path: &Path, client_id: &str, group: &str) {
        let config = json!({
            "mqtt": {
                "client_id": client_id, "share_group": group, "port": BROKER_PORT,
                "topic_prefix": self.topic_prefix, "session_expiry_seconds": 300,
            },
            "storage": {"kind": "local_fs", "root_dir": self.dir.path().join("datasets")},
            "control_plane": {"url": self.url},
            "token": self.admin_token,
            "events": {"url": NATS_URL, "prefix": self.bus_prefix},
            "usage_flush_millis": 100,
        });
        std::fs::write(path, serde_yaml::to_string(&config).unwrap()).unwrap();
    }

    pub async fn cleanup(&self) {
        if let Ok(bus) = weir_events::NatsEventBus::connect(NATS_URL, &self.bus_prefix).await {
            let _ = bus.delete_stream().await;
        }
    }
}

pub struct Provisioned {
    pub dataset_id: String,
    pub application: String,
    pub version: String,
    pub endpoint: String,
    pub token: String,
}

/// A `weir-devices` process, killed when dropped.
pub struct Bridge {
    pub child: Child,
    pub url: String,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Bridge {
    pub fn start(config: &Path, fault: Option<&str>) -> Bridge {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_weir-devices"));
        command
            .env("WEIR_CONFIG_PATH", config)
            .env("PORT", port.to_string())
            .env("WEIR_LISTEN_HOST", "127.0.0.1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(fault) = fault {
            command.env("WEIR_FAULT", fault);
        }
        let child = command.spawn().unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "weir-devices did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Bridge { child, url }
    }

    /// Whether the process has ended (it aborted).
    pub fn ended(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

/// What devices were answered, by topic of the request.
pub type Answers = Arc<Mutex<HashMap<String, (String, bytes::Bytes)>>>;

/// An MQTT client playing devices: publishes requests and collects the answers.
pub struct Devices {
    pub client: AsyncClient,
    pub answers: Answers,
}

impl Devices {
    pub async fn connect(subscriptions: &[String]) -> Devices {
        let mut options = MqttOptions::new(unique("device-"), "127.0.0.1", BROKER_PORT);
        options
            .set_keep_alive(Duration::from_secs(30))
            .set_max_packet_size(Some(32 << 20));
        let (client, mut eventloop) = AsyncClient::new(options, 10_000);
        let answers: Answers = Arc::default();
        let (ready, mut connected) = tokio::sync::mpsc::channel::<()>(8);
        let collected = answers.clone();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = ready.try_send(());
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = ready.try_send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(publish))) => {
                        let topic = String::from_utf8_lossy(&publish.topic).to_string();
                        if let Some((request, kind)) = topic.rsplit_once('/') {
                            collected
                                .lock()
                                .unwrap()
                                .insert(request.to_string(), (kind.to_string(), publish.payload));
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        connected.recv().await.unwrap();
        for filter in subscriptions {
            client
                .subscribe(filter.clone(), QoS::AtLeastOnce)
                .await
                .unwrap();
            tokio::time::timeout(Duration::from_secs(10), connected.recv())
                .await
                .expect("suback");
        }
        Devices { client, answers }
    }

    pub async fn publish(&self, topic: &str, payload: impl Into<bytes::Bytes>) {
        self.client
            .publish(topic.to_string(), QoS::AtLeastOnce, false, payload.into())
            .await
            .unwrap();
    }

    /// The answer to the request on `topic`: (`status` or `error`, payload), waiting up to
    /// `timeout`.
    pub async fn answer(&self, topic: &str, timeout: Duration) -> Option<(String, Value)> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((kind, payload)) = self.answers.lock().unwrap().get(topic) {
                let body = serde_json::from_slice(payload).unwrap_or(Value::Null);
                return Some((kind.clone(), body));
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
