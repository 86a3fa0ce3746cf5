//! The deployed shape: the `weir-engine` worker binary on its own port, and the transform
//! function (as its binary builds it) computing steps on that worker over gRPC, answering over
//! real HTTP. Stopping the worker makes steps fail as retryable (503), and nothing is committed.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Harness, derivative_manifest, readings_manifest};
use serde_json::{Value, json};
use weir_transform::{EngineConfig, TransformConfig};

const HOURLY: &str = "SELECT date_trunc('hour', event_time) AS event_time, sensor, max(temp) AS max_temp FROM readings GROUP BY 1, 2";

struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the worker binary over the store in `root_dir`; ready once its port takes
/// connections (as the spec tells coordinators to wait).
async fn start_worker(root_dir: &std::path::Path, port: u16) -> (Worker, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_weir-engine"))
        .env("WEIR_CONFIG_PATH", "/dev/null")
        .env("WEIR__STORAGE__KIND", "local_fs")
        .env("WEIR__STORAGE__ROOT_DIR", root_dir)
        .env("WEIR__LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let worker = Worker(child);
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return (worker, format!("http://127.0.0.1:{port}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the engine worker never listened on {port}");
}

async fn post(client: &reqwest::Client, url: String) -> (u16, Value) {
    let response = client.post(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transform_function_runs_steps_on_the_engine_worker() {
    let dir = tempfile::tempdir().unwrap();
    let root_dir = dir.path().join("datasets");
    let store = weir_dataset::DatasetStore::local_fs(&root_dir).unwrap();
    let harness = Harness::with_store(store, dir);
    let port = free_port();
    let (worker, endpoint) = start_worker(&root_dir, port).await;

    let config = TransformConfig {
        storage: weir_dataset::StorageConfig::LocalFs {
            root_dir: root_dir.clone(),
        },
        open_access: true,
        engine: EngineConfig::Grpc {
            endpoint,
            name: Some("weir-engine".to_string()),
            version: None,
        },
        ..Default::default()
    };
    let router = weir_transform::build(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let function = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let root = harness
        .create(&readings_manifest("readings", "kind: Append"))
        .await;
    harness
        .create(&derivative_manifest(
            "hourly",
            &[(&root, "readings")],
            HOURLY,
        ))
        .await;
    harness
        .push(
            "readings",
            "{\"event_time\": \"2026-01-01T10:00:00Z\", \"sensor\": \"s1\", \"temp\": 21.5}\n{\"event_time\": \"2026-01-01T10:30:00Z\", \"sensor\": \"s1\", \"temp\": 23.0}".to_string(),
        )
        .await;

    let client = reqwest::Client::new();
    let run = format!("{function}/datasets/alice/hourly/transform");
    let (status, outcome) = post(&client, run.clone()).await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["numRecords"], json!(1));
    assert!(outcome["newHead"].is_string(), "{outcome}");
    let hourly = harness
        .store
        .resolve_alias(&"alice".parse().unwrap(), &"hourly".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        harness.current_rows(&hourly).await,
        harness.batch_rows(&[(&root, "readings")], HOURLY).await
    );
    let status: Value = client.get(&run).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["upToDate"], json!(true), "{status}");

    // Without its engine the function answers 503 and commits nothing.
    let head = harness
        .store
        .dataset(&hourly)
        .head()
        .await
        .unwrap()
        .unwrap()
        .hash;
    drop(worker);
    harness
        .push(
            "readings",
            "{\"event_time\": \"2026-01-01T11:00:00Z\", \"sensor\": \"s2\", \"temp\": 19.0}"
                .to_string(),
        )
        .await;
    let (status, answer) = post(&client, run.clone()).await;
    assert_eq!(status, 503, "{answer}");
    assert!(answer["message"].is_string(), "{answer}");
    assert_eq!(
        harness
            .store
            .dataset(&hourly)
            .head()
            .await
            .unwrap()
            .unwrap()
            .hash,
        head
    );

    // A worker started again on the same address takes the next step.
    let (_worker, _) = start_worker(&root_dir, port).await;
    let (status, outcome) = post(&client, run).await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["numRecords"], json!(1));
    assert_eq!(
        harness.current_rows(&hourly).await,
        harness.batch_rows(&[(&root, "readings")], HOURLY).await
    );
}

#[test]
fn the_worker_refuses_a_bad_config_and_says_why() {
    let output = Command::new(env!("CARGO_BIN_EXE_weir-engine"))
        .env("WEIR_CONFIG_PATH", "/dev/null")
        .env("WEIR__STORAGE__KIND", "memory")
        .env("WEIR__LISTEN", "not an address")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not an address"), "{stderr}");
    let output = Command::new(env!("CARGO_BIN_EXE_weir-engine"))
        .env("WEIR_CONFIG_PATH", "/dev/null")
        .env("WEIR__NO_SUCH_SETTING", "1")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no_such_setting"), "{stderr}");
}

#[tokio::test]
async fn the_function_refuses_a_bad_engine_config_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let config = |engine: EngineConfig| TransformConfig {
        storage: weir_dataset::StorageConfig::LocalFs {
            root_dir: dir.path().to_path_buf(),
        },
        open_access: true,
        engine,
        ..Default::default()
    };
    let error = weir_transform::build(config(EngineConfig::Grpc {
        endpoint: "not a url".to_string(),
        name: None,
        version: None,
    }))
    .await
    .unwrap_err();
    assert!(error.contains("not a url"), "{error}");
    // Unknown keys and kinds are named too.
    for (yaml, named) in [
        ("engine: {kind: spark}", "spark"),
        ("engine: {kind: grpc}", "endpoint"),
        (
            "engine: {kind: grpc, endpoint: 'http://x:5544', port: 1}",
            "port",
        ),
        ("nope: 1", "nope"),
    ] {
        let error = serde_yaml::from_str::<TransformConfig>(yaml)
            .unwrap_err()
            .to_string();
        assert!(error.contains(named), "{yaml}: {error}");
    }
}
