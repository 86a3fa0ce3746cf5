//! Device ingest benchmark (tests/bench/devices.sh). One process holds a control plane (SQLite,
//! local storage, its REST API on loopback) and the device function bridging the real Mosquitto
//! on 127.0.0.1:1883; ENDPOINTS registered endpoints each send REQUESTS reliable requests
//! (QoS 1, with request ids) of SAMPLES samples, over CONNECTIONS MQTT connections keeping at
//! most WINDOW requests unanswered each. Reported: samples/s committed (until the last `/status`;
//! the dataset is checked to hold every sample once) and p50/p99 from publish to `/status`.
//!
//! The floor, in the same run: the same number of messages, published the same way, through the
//! broker to one plain subscriber (one hop, no commit): messages/s and p50/p99 publish → receipt.
//!
//!   devices_bench [ENDPOINTS] [REQUESTS] [SAMPLES] [CONNECTIONS] [WINDOW]
//!   (default 1000 100 1 20 100)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tokio::sync::Semaphore;

fn argument(index: usize, default: usize) -> usize {
    std::env::args()
        .nth(index)
        .and_then(|text| text.parse().ok())
        .unwrap_or(default)
}

fn unique() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        .to_string()
}

/// Publish times by topic, answered ones removed; latencies collected.
#[derive(Default)]
struct Tracker {
    sent: HashMap<String, Instant>,
    latencies: Vec<Duration>,
    errors: usize,
    last: Option<Instant>,
}

fn connect(
    id: String,
    tracker: Arc<Mutex<Tracker>>,
    window: Arc<Semaphore>,
    strip: &'static str,
) -> AsyncClient {
    let mut options = MqttOptions::new(id, "127.0.0.1", 1883);
    options
        .set_keep_alive(Duration::from_secs(60))
        .set_max_packet_size(Some(16 << 20));
    let (client, mut eventloop) = AsyncClient::new(options, 100_000);
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    let topic = String::from_utf8_lossy(&publish.topic).to_string();
                    let (request, kind) = match strip {
                        "" => (topic.as_str(), "status"),
                        _ => topic.rsplit_once('/').unwrap_or((topic.as_str(), "")),
                    };
                    let mut tracker = tracker.lock().unwrap();
                    if let Some(at) = tracker.sent.remove(request) {
                        tracker.latencies.push(at.elapsed());
                        if kind != "status" {
                            tracker.errors += 1;
                        }
                        tracker.last = Some(Instant::now());
                        window.add_permits(1);
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    eprintln!("mqtt: {error}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
    client
}

fn percentile(latencies: &mut [Duration], p: f64) -> f64 {
    latencies.sort_unstable();
    let index = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
    latencies[index].as_secs_f64() * 1000.0
}

/// Sends every request through `connections` clients; returns (seconds, latencies, errors).
async fn drive(
    clients: Vec<(AsyncClient, Arc<Mutex<Tracker>>, Arc<Semaphore>)>,
    topics: Vec<Vec<String>>,
    payload: Vec<u8>,
) -> (f64, Vec<Duration>, usize) {
    let started = Instant::now();
    let total: usize = topics.iter().map(Vec::len).sum();
    let mut tasks = Vec::new();
    for ((client, tracker, window), topics) in clients.iter().cloned().zip(topics) {
        let payload = payload.clone();
        tasks.push(tokio::spawn(async move {
            for topic in topics {
                window.acquire().await.unwrap().forget();
                tracker
                    .lock()
                    .unwrap()
                    .sent
                    .insert(topic.clone(), Instant::now());
                client
                    .publish(topic, QoS::AtLeastOnce, false, payload.clone())
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    loop {
        let answered: usize = clients
            .iter()
            .map(|(_, t, _)| t.lock().unwrap().latencies.len())
            .sum();
        if answered >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let last = clients
        .iter()
        .filter_map(|(_, t, _)| t.lock().unwrap().last)
        .max()
        .unwrap();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for (_, tracker, _) in &clients {
        let mut tracker = tracker.lock().unwrap();
        latencies.append(&mut tracker.latencies);
        errors += tracker.errors;
    }
    ((last - started).as_secs_f64(), latencies, errors)
}

#[tokio::main]
async fn main() {
    let endpoints = argument(1, 1000);
    let requests = argument(2, 100);
    let samples = argument(3, 1);
    let connections = argument(4, 20).max(1);
    let window = argument(5, 100).max(1);
    let prefix = format!("bench{}/", unique());

    // The control plane and its REST API.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("datasets")).unwrap();
    let config = weir_control_plane::ControlPlaneConfig {
        database_url: format!("sqlite://{}", dir.path().join("meta.db").display()),
        storage: weir_dataset::StorageConfig::LocalFs {
            root_dir: dir.path().join("datasets"),
        },
        ..Default::default()
    };
    let control_plane = weir_control_plane::ControlPlane::start(config)
        .await
        .unwrap();
    let token = control_plane
        .accounts
        .issue_token(&control_plane.admin, "bench")
        .await
        .unwrap()
        .token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = weir_control_plane::rest::router(control_plane.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let caller = control_plane
        .accounts
        .authenticate(Some(&format!("Bearer {token}")))
        .await
        .unwrap();
    let manifest = "kind: DatasetSnapshot\nversion: 1\ncontent:\n  name: readings\n  kind: Root\n  metadata:\n    - kind: AddPushSource\n      sourceName: default\n      read:\n        kind: NdJson\n        schema:\n          fields:\n            - name: event_time\n              type: Timestamp\n            - name: endpoint_id\n              type: String\n            - name: temperature\n              type: Float64\n      merge:\n        kind: Append\n";
    let dataset = control_plane
        .datasets
        .create(&caller, manifest, None, None)
        .await
        .unwrap();
    let api = control_plane.devices_api();
    use weir_control_plane::services::devices::{NewApplication, NewToken, NewVersion};
    api.create_application(
        &caller,
        NewApplication {
            name: "bench".into(),
            dataset: "admin/readings".into(),
            description: None,
        },
    )
    .await
    .unwrap();
    api.create_version(
        &caller,
        "bench",
        NewVersion {
            name: "bench-v1".into(),
            dataset: None,
            event_time_pointer: None,
        },
    )
    .await
    .unwrap();
    let mut tokens = Vec::with_capacity(endpoints);
    for index in 0..endpoints {
        let endpoint = api
            .create_endpoint(&caller, "bench", Default::default())
            .await
            .unwrap();
        let issued = api
            .issue_token(
                &caller,
                "bench",
                endpoint.id.as_str(),
                NewToken {
                    token: Some(format!("bench-endpoint-token-{index:06}")),
                    label: None,
                },
            )
            .await
            .unwrap();
        tokens.push(issued.token);
    }

    // The device function, bridging the broker.
    let context = Arc::new(weir_ingest::IngestContext {
        store: control_plane.store.clone(),
        config: weir_ingest::IngestConfig::default(),
        access: control_plane.access_policy(),
        notifier: Some(control_plane.commit_notifier("devices")),
    });
    let directory = Arc::new(
        weir_devices::directory::RemoteDirectory::new(&url, &token, Duration::from_secs(5))
            .unwrap(),
    );
    let devices_config = weir_devices::DevicesConfig {
        mqtt: Some(weir_devices::mqtt::MqttConfig {
            client_id: format!("bench-bridge-{}", unique()),
            share_group: Some(format!("bench-{}", unique())),
            topic_prefix: prefix.clone(),
            session_expiry_seconds: 60,
            ..Default::default()
        }),
        ..Default::default()
    };
    let _devices = weir_devices::assemble(context, directory, caller, &devices_config);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let body: Vec<serde_json::Value> = (0..samples)
        .map(|i| serde_json::json!({"temperature": 20.0 + i as f64 / 10.0}))
        .collect();
    let payload = serde_json::to_vec(&body).unwrap();

    // Weir: reliable requests, answered on /status.
    let mut clients = Vec::new();
    let mut topics: Vec<Vec<String>> = vec![Vec::new(); connections];
    for connection in 0..connections {
        let tracker = Arc::new(Mutex::new(Tracker::default()));
        let permits = Arc::new(Semaphore::new(window));
        let client = connect(
            format!("bench-device-{connection}-{}", unique()),
            tracker.clone(),
            permits.clone(),
            "answers",
        );
        for (index, token) in tokens.iter().enumerate() {
            if index % connections == connection {
                client
                    .subscribe(
                        format!("{prefix}kp1/bench-v1/dcx/{token}/json/+/+"),
                        QoS::AtLeastOnce,
                    )
                    .await
                    .unwrap();
            }
        }
        clients.push((client, tracker, permits));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for request in 1..=requests {
        for (index, token) in tokens.iter().enumerate() {
            topics[index % connections]
                .push(format!("{prefix}kp1/bench-v1/dcx/{token}/json/{request}"));
        }
    }
    let (seconds, mut latencies, errors) = drive(clients, topics, payload.clone()).await;
    let total_samples = endpoints * requests * samples;
    let store = control_plane.store.clone();
    let id: weir_odf::DatasetId = dataset.id.parse().unwrap();
    let session = datafusion::prelude::SessionContext::new();
    let table = weir_dataset::table::dataset_table(&session, &store, &store.dataset(&id), None)
        .await
        .unwrap();
    session.register_table("t", table).unwrap();
    let counted = session
        .sql("SELECT count(*) AS n FROM t")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let rows = arrow::util::pretty::pretty_format_batches(&counted)
        .unwrap()
        .to_string();
    let weir_p50 = percentile(&mut latencies, 0.50);
    let weir_p99 = percentile(&mut latencies, 0.99);

    // The floor: the same messages through the broker back to a subscriber on the publishing
    // connection (publish → subscriber, one hop each way through the broker, no commit).
    let mut floor_clients = Vec::new();
    let mut floor_topics: Vec<Vec<String>> = vec![Vec::new(); connections];
    for connection in 0..connections {
        let tracker = Arc::new(Mutex::new(Tracker::default()));
        let permits = Arc::new(Semaphore::new(window));
        let client = connect(
            format!("bench-floor-{connection}-{}", unique()),
            tracker.clone(),
            permits.clone(),
            "",
        );
        client
            .subscribe(format!("{prefix}floor/{connection}/#"), QoS::AtLeastOnce)
            .await
            .unwrap();
        floor_clients.push((client, tracker, permits));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for request in 1..=requests {
        for index in 0..endpoints {
            let connection = index % connections;
            floor_topics[connection].push(format!("{prefix}floor/{connection}/{index}/{request}"));
        }
    }
    let total = endpoints * requests;
    let (floor_seconds, mut floor_latencies, _) = drive(floor_clients, floor_topics, payload).await;
    let floor_p50 = percentile(&mut floor_latencies, 0.50);
    let floor_p99 = percentile(&mut floor_latencies, 0.99);
    println!(
        "{}",
        serde_json::json!({
            "endpoints": endpoints, "requests_per_endpoint": requests, "samples_per_request": samples,
            "connections": connections, "window_per_connection": window,
            "weir": {
                "seconds": seconds, "samples_per_second": total_samples as f64 / seconds,
                "requests_per_second": (endpoints * requests) as f64 / seconds,
                "p50_ms": weir_p50, "p99_ms": weir_p99, "errors": errors,
                "dataset_rows": rows.lines().nth(3).unwrap_or_default().trim_matches(|c| c == '|' || c == ' '),
                "expected_rows": total_samples,
            },
            "broker_floor": {
                "seconds": floor_seconds, "messages_per_second": total as f64 / floor_seconds,
                "p50_ms": floor_p50, "p99_ms": floor_p99,
            },
        })
    );
}
