//! End to end under the real `weir up` with `transform.workers`: no in-process executor; the
//! local engine provisioner starts `weir-transform` worker processes when transform tasks are
//! queued, a worker computes the derivative, and the workers stop once the queue stays empty
//! for `idle_seconds`.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::start_weir_up;

/// Worker processes of this node: `weir-transform` processes whose config is in its data dir.
fn workers(data_dir: &Path) -> usize {
    let marker = data_dir.join("workers").join("service-config.yml");
    let marker = marker.to_string_lossy().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok())
        .filter(|entry| {
            let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains("weir-transform")
                && String::from_utf8_lossy(&environ).contains(&marker)
        })
        .count()
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    path: &str,
    content_type: &str,
    body: String,
) -> (u16, Value) {
    let response = client
        .post(format!("{url}{path}"))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn example(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../docs/examples")
            .join(name),
    )
    .unwrap()
}

#[tokio::test]
async fn worker_processes_follow_the_task_queue() {
    let data_dir = tempfile::tempdir().unwrap();
    let config = data_dir.path().join("weir.yaml");
    std::fs::write(
        &config,
        "transform:\n  workers: {max_replicas: 1, concurrency: 1, idle_seconds: 2}\ndevices: {mqtt: null}\n",
    )
    .unwrap();
    let node = start_weir_up(&[
        "--data-dir".as_ref(),
        data_dir.path().as_os_str(),
        "--config".as_ref(),
        config.as_os_str(),
    ]);
    let client = reqwest::Client::new();
    let (url, token) = (node.url.clone(), node.admin_token.clone());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(workers(data_dir.path()), 0, "no worker without tasks");

    let (status, body) = send(
        &client,
        &url,
        &token,
        "/datasets",
        "application/yaml",
        example("sensor-temp.yaml"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = send(&client, &url, &token, "/admin/sensor.temp/ingest", "application/x-ndjson",
        "{\"ts\": \"2026-01-01T10:00:00Z\", \"sensor\": \"s1\", \"temp\": 20.0}\n{\"ts\": \"2026-01-01T10:30:00Z\", \"sensor\": \"s1\", \"temp\": 22.0}".to_string()).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(
        &client,
        &url,
        &token,
        "/datasets",
        "application/yaml",
        example("sensor-hourly.yaml"),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    let query = json!({"query": "SELECT sensor, avg_temp FROM \"sensor.hourly\""}).to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut most_workers = 0;
    loop {
        most_workers = most_workers.max(workers(data_dir.path()));
        let (status, body) = send(
            &client,
            &url,
            &token,
            "/query",
            "application/json",
            query.clone(),
        )
        .await;
        if status == 200 && body["output"]["data"] == json!([{"sensor": "s1", "avg_temp": 21.0}]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the derivative was never computed: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    most_workers = most_workers.max(workers(data_dir.path()));
    assert_eq!(
        most_workers, 1,
        "one worker process ran the task (max_replicas 1)"
    );

    // Idle for idle_seconds: the worker stops.
    let deadline = Instant::now() + Duration::from_secs(30);
    while workers(data_dir.path()) > 0 {
        assert!(Instant::now() < deadline, "the idle worker never stopped");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
