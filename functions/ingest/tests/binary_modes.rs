//! The real `weir-ingest` binary, run the two ways it is deployed:
//! - under the AWS Lambda Runtime API (`weir_function_runtime::lambda_emulator`, the documented
//!   `/2018-06-01/runtime/invocation/*` endpoints on loopback), fed an API Gateway HTTP API event;
//! - as a Knative-style HTTP service on `PORT` with health, readiness, metrics and SIGTERM.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use weir_function_runtime::lambda_emulator::LambdaRuntimeEmulator;

fn config_file(dir: &std::path::Path, storage_dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("service-config.yml");
    std::fs::write(
        &path,
        format!(
            "storage:\n  kind: local_fs\n  root_dir: {}\nmax_body_bytes: 1048576\nopen_access: true\n",
            storage_dir.display()
        ),
    )
    .unwrap();
    path
}

async fn prepared_store() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("datasets");
    let store = weir_dataset::DatasetStore::local_fs(&storage).unwrap();
    let definition =
        weir_odf::manifest::parse_dataset_manifest(&root_manifest("cities", NDJSON_READ, APPEND))
            .unwrap();
    store
        .create_dataset(&"alice".parse().unwrap(), definition, chrono::Utc::now())
        .await
        .unwrap();
    (dir, storage)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_an_api_gateway_event_under_the_lambda_runtime_api() {
    let (dir, storage) = prepared_store().await;
    let event = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/apigw-http-v2-ingest.json"
    ))
    .unwrap();
    let mut runtime = LambdaRuntimeEmulator::start("weir-ingest", vec![event])
        .await
        .unwrap();
    let address = runtime.address;

    let mut child = lambda_binary(address, &config_file(dir.path(), &storage))
        .spawn()
        .unwrap();

    let result = runtime
        .next_result(Duration::from_secs(60))
        .await
        .expect("the function answered within a minute");
    child.kill().await.unwrap();
    assert_eq!(
        (result.request_id.as_str(), result.kind.as_str()),
        ("request-1", "response"),
        "{}",
        result.body
    );
    let response: serde_json::Value = serde_json::from_str(&result.body).unwrap();
    assert_eq!(response["statusCode"], 200, "{response}");
    let payload: serde_json::Value =
        serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(payload["numRecords"], 2);
    assert_eq!(
        payload["offsetInterval"],
        serde_json::json!({"start": 0, "end": 1})
    );

    let store = weir_dataset::DatasetStore::local_fs(&storage).unwrap();
    let id = store
        .resolve_alias(&"alice".parse().unwrap(), &"cities".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let chain = store.dataset(&id).load_chain(None).await.unwrap();
    assert_eq!(chain.state.last_offset(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_runs_as_http_service_with_health_metrics_and_graceful_shutdown() {
    let (dir, storage) = prepared_store().await;
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_weir-ingest"))
        .env("PORT", port.to_string())
        .env("WEIR_LISTEN_HOST", "127.0.0.1")
        .env("WEIR_CONFIG_PATH", config_file(dir.path(), &storage))
        .env("WEIR__MAX_COMMIT_ATTEMPTS", "5")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut healthy = false;
    for _ in 0..200 {
        if let Ok(response) = client.get(format!("{base}/healthz")).send().await
            && response.status() == 200
        {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(healthy, "the service became healthy");
    assert_eq!(
        client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let response = client
        .post(format!("{base}/alice/cities/ingest"))
        .header("content-type", "application/x-ndjson")
        .body("{\"event_time\": \"2024-01-01T00:00:00Z\", \"city\": \"A\", \"population\": 10}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("weir_http_requests_total")
                && line.contains("route=\"/{account}/{dataset}/ingest\"")
                && line.contains("status=\"200\"")
                && line.ends_with(" 1")),
        "{metrics}"
    );

    let pid = child.id().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "SIGTERM shuts down cleanly: {exit:?}");
}

#[tokio::test]
async fn binary_refuses_to_start_with_invalid_config_and_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("service-config.yml");
    std::fs::write(
        &path,
        "storage:\n  kind: local_fs\n  root_dir: /tmp/x\nmax_body_bytes: lots\n",
    )
    .unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_weir-ingest"))
        .env("WEIR_CONFIG_PATH", &path)
        .env("PORT", "0")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("max_body_bytes"), "{stderr}");
}

#[tokio::test]
async fn binary_without_a_control_plane_fails_closed_unless_told_to_run_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("service-config.yml");
    std::fs::write(
        &path,
        format!(
            "storage:\n  kind: local_fs\n  root_dir: {}\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_weir-ingest"))
        .env("WEIR_CONFIG_PATH", &path)
        .env("PORT", "0")
        .output()
        .await
        .unwrap();
    assert!(
        !output.status.success(),
        "it must not start open by default"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("control_plane") && stderr.contains("open_access"),
        "{stderr}"
    );
}
