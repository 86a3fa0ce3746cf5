//! End to end under the real `weir up`: queue ingest. CloudEvents on the node's port (written
//! as their caller: the admin's token writes, no token is anonymous and may not), and a JetStream
//! consumer started from `--config` against the real NATS server on 127.0.0.1:4222.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::start_weir_up;

const NATS_URL: &str = "nats://127.0.0.1:4222";

async fn rows(client: &reqwest::Client, url: &str, token: &str) -> Value {
    let response = client
        .post(format!("{url}/query"))
        .bearer_auth(token)
        .json(&json!({"query": "SELECT sensor, temp FROM \"sensor.temp\" ORDER BY sensor"}))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    body["output"]["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudevents_and_jetstream_messages_reach_a_dataset_under_weir_up() {
    let name = format!("E{}", uuid::Uuid::new_v4().simple());
    let data_dir = tempfile::tempdir().unwrap();
    let config = data_dir.path().join("weir.yml");
    std::fs::write(
        &config,
        format!(
            "ingest:\n  queue:\n    subject_prefix: {name}.ingest\n    jetstream:\n      url: {NATS_URL}\n      \
             stream: {name}\n      subjects: ['{name}.ingest.>']\n      dead_letter_prefix: {name}.dead\n"
        ),
    )
    .unwrap();
    let node = start_weir_up(&[
        "--data-dir".as_ref(),
        data_dir.path().as_os_str(),
        "--config".as_ref(),
        config.as_os_str(),
    ]);
    let client = reqwest::Client::new();
    let manifest = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/examples/sensor-temp.yaml"
    ))
    .unwrap();
    let response = client
        .post(format!("{}/datasets", node.url))
        .bearer_auth(&node.admin_token)
        .header("content-type", "application/yaml")
        .body(manifest)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    let event = |id: &str, body: &str| {
        client
            .post(format!("{}/events", node.url))
            .header("ce-specversion", "1.0")
            .header("ce-id", id)
            .header("ce-source", "/sensors")
            .header("ce-type", "dev.weir.ingest.v1")
            .header("ce-odfdataset", "admin/sensor.temp")
            .header("content-type", "application/x-ndjson")
            .body(body.to_string())
    };
    let reading = r#"{"ts": "2026-01-01T10:00:00Z", "sensor": "s1", "temp": 20.5}"#;
    // Without a token the caller is anonymous, and the private dataset is not there for it.
    let response = event("1", reading).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("not found"),
        "{body}"
    );
    // A bad token is refused.
    let response = event("1", reading)
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // With the admin's token it goes in, once, however often it is sent.
    for _ in 0..2 {
        let response = event("1", reading)
            .bearer_auth(&node.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    // JetStream: the consumer of `weir up` created the stream; a dataset name with a dot is
    // named in the `odf-dataset` header.
    let jetstream = async_nats::jetstream::new(async_nats::connect(NATS_URL).await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while jetstream.get_stream(&name).await.is_err() {
        assert!(Instant::now() < deadline, "weir up created the stream");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("odf-dataset", "admin/sensor.temp");
    jetstream
        .publish_with_headers(
            format!("{name}.ingest.admin.any"),
            headers,
            r#"{"ts": "2026-01-01T10:05:00Z", "sensor": "s2", "temp": 19.0}"#.into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let expected = json!([{"sensor": "s1", "temp": 20.5}, {"sensor": "s2", "temp": 19.0}]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = rows(&client, &node.url, &node.admin_token).await;
        if found == expected {
            break;
        }
        assert!(Instant::now() < deadline, "{found}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = jetstream.delete_stream(&name).await;
    let _ = jetstream.delete_stream(format!("{name}_DEAD")).await;
}
