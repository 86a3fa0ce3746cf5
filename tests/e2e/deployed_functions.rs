//! End to end, the production shape: the real `weir up --config` binary with PostgreSQL, S3
//! (moto on loopback) and NATS JetStream, and the ingest and query functions deployed apart from
//! it (served on their own ports as a Knative service would run them), linked to it only by
//! HTTP and the shared bucket. Checks that the functions follow the control plane's tokens and
//! roles, and that their commits reach the event bus. Needs `./local/test` (PostgreSQL, NATS,
//! moto).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use weir_events::{EventBus, NatsEventBus};
use weir_function_runtime::ControlPlaneLinkConfig;

mod support;

use support::start_weir_up;

const NATS_URL: &str = "nats://127.0.0.1:4222";

fn fresh_postgres_database() -> String {
    let base = std::env::var("WEIR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let name = format!("weir_test_{}", uuid::Uuid::new_v4().simple());
    let status = Command::new("psql")
        .args([base.as_str(), "-qc", &format!("CREATE DATABASE {name}")])
        .status()
        .expect("psql runs");
    assert!(status.success(), "cannot create database {name} at {base}");
    let (server, _) = base.rsplit_once('/').unwrap();
    format!("{server}/{name}")
}

/// A fresh bucket on the S3 API server `./local/test` started; returns the storage config.
fn fresh_bucket() -> Value {
    let endpoint = std::env::var("WEIR_TEST_S3_ENDPOINT").expect(
        "WEIR_TEST_S3_ENDPOINT is not set: run ./local/test, which starts an S3 API server on loopback",
    );
    let bucket = format!("weir-e2e-{}", uuid::Uuid::new_v4().simple());
    let status = Command::new("python3")
        .args([
            "-c",
            "import boto3,sys; boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1').create_bucket(Bucket=sys.argv[2])",
            &endpoint,
            &bucket,
        ])
        .status()
        .expect("python3 with boto3 creates the bucket");
    assert!(status.success(), "cannot create bucket {bucket}");
    json!({
        "kind": "s3", "bucket": bucket, "prefix": "datasets", "endpoint": endpoint,
        "access_key_id": "test", "secret_access_key": "test", "allow_http": true,
    })
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(weir_function_runtime::server::serve_listener(
        router, "e2e", listener,
    ));
    url
}

struct Client {
    http: reqwest::Client,
}

impl Client {
    async fn send(
        &self,
        method: reqwest::Method,
        url: String,
        token: Option<&str>,
        content_type: &str,
        body: String,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, url)
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn json(
        &self,
        method: reqwest::Method,
        url: String,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        self.send(method, url, token, "application/json", body.to_string())
            .await
    }

    async fn user(&self, control_plane: &str, admin: &str, name: &str) -> String {
        let url = format!("{control_plane}/accounts");
        let body = json!({"name": name, "password": "password-1"});
        let (status, answer) = self
            .json(reqwest::Method::POST, url, Some(admin), body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        let url = format!("{control_plane}/auth/login");
        let body = json!({"login": name, "password": "password-1"});
        let (status, answer) = self.json(reqwest::Method::POST, url, None, body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["accessToken"].as_str().unwrap().to_string()
    }
}

const READINGS: &str = r#"{"ts": "2026-01-01T10:00:00Z", "sensor": "s1", "temp": 21.5}
{"ts": "2026-01-01T10:30:00Z", "sensor": "s1", "temp": 22.5}
{"ts": "2026-01-01T10:10:00Z", "sensor": "s2", "temp": 19.0}"#;

/// Polls `check` until it holds or `limit` passes (permission caches expire in a second).
async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployed_functions_follow_the_control_plane_over_postgres_s3_and_nats() {
    weir_function_runtime::server::init_tracing();
    let storage = fresh_bucket();
    // Files dropped under `landing/` of the same bucket are a polling source.
    let polling = json!({
        "s3_buckets": [storage["bucket"]],
        "s3": {"endpoint": storage["endpoint"], "access_key_id": "test",
               "secret_access_key": "test", "allow_http": true},
    });
    let prefix = format!(
        "weire2e{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let config = json!({
        "control_plane": {
            "database_url": fresh_postgres_database(),
            "storage": storage,
            "bus": {"kind": "nats", "url": NATS_URL, "prefix": prefix},
            "auth": {"signing_key": "2a".repeat(32)},
            "flows": {"tick_millis": 100},
        },
        // Transform and ingest tasks are taken by the functions deployed apart below.
        "transform": {"in_process_executor": false},
        "ingest_tasks_in_process": false,
        "polling": polling.clone(),
    });
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("weir.yaml");
    std::fs::write(&config_path, serde_yaml::to_string(&config).unwrap()).unwrap();
    let data_dir = dir.path().join("data");
    let weir = start_weir_up(&[
        "--config".as_ref(),
        config_path.as_os_str(),
        "--data-dir".as_ref(),
        data_dir.as_os_str(),
    ]);
    let (control_plane, admin) = (weir.url.clone(), weir.admin_token.clone());

    // The functions, deployed apart: their own config, the same bucket, a link to the control
    // plane (the public key is fetched from it at cold start).
    let link = ControlPlaneLinkConfig {
        url: control_plane.clone(),
        token_public_key: None,
        permission_cache_seconds: 1,
        request_timeout_millis: 5_000,
    };
    let storage_config: weir_dataset::StorageConfig =
        serde_json::from_value(config["control_plane"]["storage"].clone()).unwrap();
    let ingest = serve(
        weir_ingest::build(weir_ingest::IngestConfig {
            storage: storage_config.clone(),
            control_plane: Some(link.clone()),
            polling: serde_json::from_value(polling.clone()).unwrap(),
            tasks: Some(weir_function_runtime::task::TaskWorkerConfig {
                url: None,
                token: admin.clone(),
                executor: Some("deployed-ingest-1".to_string()),
                concurrency: 1,
                lease_seconds: 30,
                // Woken by the control plane's announcements on NATS, not by polling.
                poll_millis: 600_000,
                nats: Some(weir_function_runtime::task::DoorbellConfig {
                    url: NATS_URL.to_string(),
                    prefix: prefix.clone(),
                }),
            }),
            ..Default::default()
        })
        .await
        .unwrap(),
    )
    .await;
    let query_context = weir_query::build_context(weir_query::QueryConfig {
        storage: storage_config,
        control_plane: Some(link),
        ..Default::default()
    })
    .await
    .unwrap();
    let query = serve(weir_query::router(query_context)).await;

    let client = Client {
        http: reqwest::Client::new(),
    };
    let alice = client.user(&control_plane, &admin, "alice").await;
    let bob = client.user(&control_plane, &admin, "bob").await;
    let manifest = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/sensor-temp.yaml"),
    )
    .unwrap();
    let (status, created) = client
        .send(
            reqwest::Method::POST,
            format!("{control_plane}/datasets"),
            Some(&alice),
            "application/yaml",
            manifest,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["visibility"], "private");
    let dataset_id = created["id"].as_str().unwrap().to_string();

    let bus = NatsEventBus::connect(NATS_URL, &prefix).await.unwrap();
    let mut committed = bus
        .subscribe(
            None,
            &format!(
                "dataset.block-committed.{}",
                dataset_id.trim_start_matches("did:odf:")
            ),
        )
        .await
        .unwrap();

    let push_url = format!("{ingest}/alice/sensor.temp/ingest");
    let push = |token: Option<String>| {
        let client = &client;
        let url = push_url.clone();
        async move {
            client
                .send(
                    reqwest::Method::POST,
                    url,
                    token.as_deref(),
                    "application/x-ndjson",
                    READINGS.to_string(),
                )
                .await
        }
    };
    let (status, answer) = push(None).await;
    assert_eq!(
        (status, &answer["error"]),
        (StatusCode::NOT_FOUND, &json!("not_found")),
        "{answer}"
    );
    let (status, answer) = push(Some(bob.clone())).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let (status, answer) = push(Some("not-a-token".to_string())).await;
    assert_eq!(
        (status, &answer["error"]),
        (StatusCode::UNAUTHORIZED, &json!("unauthenticated")),
        "{answer}"
    );
    let (status, pushed) = push(Some(alice.clone())).await;
    assert_eq!(status, StatusCode::OK, "{pushed}");
    assert_eq!(pushed["numRecords"], 3);
    let new_head = pushed["newHead"].as_str().unwrap().to_string();

    // The commit was reported to the control plane, which published it on NATS.
    let event = tokio::time::timeout(Duration::from_secs(10), committed.next())
        .await
        .expect("block-committed on NATS")
        .unwrap()
        .unwrap();
    let event = {
        let envelope = event.envelope.clone();
        event.ack().await.unwrap();
        envelope
    };
    assert_eq!(
        event.event,
        weir_events::WeirEvent::BlockCommitted {
            dataset_id: dataset_id.clone(),
            block_hash: new_head.clone(),
            sequence_number: 4,
        }
    );
    let (status, blocks) = client
        .send(
            reqwest::Method::GET,
            format!("{control_plane}/datasets/alice/sensor.temp/blocks?limit=1"),
            Some(&alice),
            "application/json",
            String::new(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{blocks}");
    assert_eq!(blocks[0]["blockHash"], json!(new_head));

    let sql = |token: Option<String>, table: &'static str| {
        let client = &client;
        let url = format!("{query}/query");
        async move {
            let body = json!({"query": format!("SELECT count(*) AS n FROM {table}")});
            client
                .json(reqwest::Method::POST, url, token.as_deref(), body)
                .await
        }
    };
    let (status, answer) = sql(Some(alice.clone()), r#""sensor.temp""#).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["output"]["data"], json!([{"n": 3}]));
    let (status, answer) = sql(Some(bob.clone()), r#""alice/sensor.temp""#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("not found"),
        "{answer}"
    );
    let (status, _) = sql(None, r#""alice/sensor.temp""#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Granting bob reader lets him query (once the function's cached decision expires) but not
    // push.
    let (status, answer) = client
        .json(
            reqwest::Method::PUT,
            format!("{control_plane}/datasets/alice/sensor.temp/roles/bob"),
            Some(&alice),
            json!({"role": "reader"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(
        eventually(Duration::from_secs(5), || async {
            sql(Some(bob.clone()), r#""alice/sensor.temp""#).await.0 == StatusCode::OK
        })
        .await,
        "bob's grant never reached the query function"
    );
    let (status, answer) = push(Some(bob.clone())).await;
    assert_eq!(
        (status, &answer["error"]),
        (StatusCode::FORBIDDEN, &json!("forbidden")),
        "{answer}"
    );

    // A personal access token works in the functions until it is revoked.
    let (status, created) = client
        .json(
            reqwest::Method::POST,
            format!("{control_plane}/accounts/me/tokens"),
            Some(&alice),
            json!({"name": "etl"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let personal = created["token"].as_str().unwrap().to_string();
    let (status, answer) = sql(Some(personal.clone()), r#""sensor.temp""#).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, _) = client
        .send(
            reqwest::Method::DELETE,
            format!(
                "{control_plane}/accounts/me/tokens/{}",
                created["id"].as_str().unwrap()
            ),
            Some(&alice),
            "application/json",
            String::new(),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        eventually(Duration::from_secs(5), || async {
            let (status, answer) = sql(Some(personal.clone()), r#""sensor.temp""#).await;
            status == StatusCode::UNAUTHORIZED && answer["error"] == "unauthenticated"
        })
        .await,
        "the revoked token kept working in the query function"
    );
    let (status, answer) = push(Some(personal.clone())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");

    // A transform function deployed apart takes the derivative's tasks from the queue.
    let storage_config: weir_dataset::StorageConfig =
        serde_json::from_value(config["control_plane"]["storage"].clone()).unwrap();
    let transform = serve(
        weir_transform::build(weir_transform::TransformConfig {
            storage: storage_config,
            control_plane: Some(ControlPlaneLinkConfig {
                url: control_plane.clone(),
                token_public_key: None,
                permission_cache_seconds: 1,
                request_timeout_millis: 5_000,
            }),
            tasks: Some(weir_transform::TaskWorkerConfig {
                url: None,
                token: admin.clone(),
                executor: Some("deployed-transform-1".to_string()),
                concurrency: 1,
                lease_seconds: 30,
                poll_millis: 600_000,
                nats: Some(weir_function_runtime::task::DoorbellConfig {
                    url: NATS_URL.to_string(),
                    prefix: prefix.clone(),
                }),
            }),
            ..Default::default()
        })
        .await
        .unwrap(),
    )
    .await;
    let derivative = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/sensor-hourly.yaml"),
    )
    .unwrap()
    .replace("admin/sensor.temp", "alice/sensor.temp");
    let (status, created) = client
        .send(
            reqwest::Method::POST,
            format!("{control_plane}/datasets"),
            Some(&alice),
            "application/yaml",
            derivative,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let computed = eventually(Duration::from_secs(30), || async {
        let (status, answer) = sql(Some(alice.clone()), r#""sensor.hourly""#).await;
        status == StatusCode::OK && answer["output"]["data"] == json!([{"n": 2}])
    })
    .await;
    let (_, runs) = client
        .json(
            reqwest::Method::GET,
            format!("{control_plane}/datasets/alice/sensor.hourly/flows/runs"),
            Some(&alice),
            Value::Null,
        )
        .await;
    assert!(
        computed,
        "the deployed transform function never computed the derivative: {runs}"
    );
    let last = &runs["runs"][0];
    assert_eq!(last["status"], "finished", "{runs}");
    assert_eq!(last["outcome"]["kind"], "success", "{runs}");
    // The function's own routes verify what it computed.
    let (status, answer) = client
        .json(
            reqwest::Method::POST,
            format!("{transform}/datasets/alice/sensor.hourly/verify"),
            Some(&alice),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["firstMismatch"], Value::Null, "{answer}");
    assert!(answer["stepsVerified"].as_u64().unwrap() >= 1, "{answer}");

    // The ingest function deployed apart polls a FilesGlob source over the bucket when its flow
    // is triggered.
    put_object(
        &storage,
        "landing/2026-01-01.csv",
        "city,population\nA,1\nB,2\n",
    );
    let polled = format!(
        "kind: DatasetSnapshot
version: 1
content:
  name: landing
  kind: Root
  metadata:
    - kind: SetPollingSource
      fetch:
        kind: FilesGlob
        path: s3://{}/landing/*.csv
      read:
        kind: Csv
        header: true
        schema:
          fields:
            - name: city
              type: String
            - name: population
              type: Int64
      merge:
        kind: Append
",
        storage["bucket"].as_str().unwrap()
    );
    let (status, created) = client
        .send(
            reqwest::Method::POST,
            format!("{control_plane}/datasets"),
            Some(&alice),
            "application/yaml",
            polled,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, run) = client
        .json(
            reqwest::Method::POST,
            format!("{control_plane}/datasets/alice/landing/flows/ingest/trigger"),
            Some(&alice),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    let ingested = eventually(Duration::from_secs(30), || async {
        let (status, answer) = sql(Some(alice.clone()), r#""landing""#).await;
        status == StatusCode::OK && answer["output"]["data"] == json!([{"n": 2}])
    })
    .await;
    let (_, runs) = client
        .json(
            reqwest::Method::GET,
            format!("{control_plane}/datasets/alice/landing/flows/runs"),
            Some(&alice),
            Value::Null,
        )
        .await;
    assert!(
        ingested,
        "the deployed ingest function never polled: {runs}"
    );
    assert_eq!(runs["runs"][0]["outcome"]["kind"], "success", "{runs}");
    assert_eq!(
        runs["runs"][0]["outcome"]["details"]["commits"], 1,
        "{runs}"
    );
    bus.delete_stream().await.unwrap();
}

/// Puts an object into the test bucket of `storage` (a storage config from `fresh_bucket`).
fn put_object(storage: &Value, key: &str, body: &str) {
    let status = Command::new("python3")
        .args([
            "-c",
            "import boto3,sys; boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1').put_object(Bucket=sys.argv[2], Key=sys.argv[3], Body=sys.argv[4].encode())",
            storage["endpoint"].as_str().unwrap(),
            storage["bucket"].as_str().unwrap(),
            key,
            body,
        ])
        .status()
        .expect("python3 with boto3 puts the object");
    assert!(status.success(), "cannot put {key}");
}
