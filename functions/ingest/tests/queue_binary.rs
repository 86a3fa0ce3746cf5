//! Queue ingest through the real `weir-ingest` binary in each of its modes: a Lambda fed a
//! recorded SQS event (partial batch failures), a long-running JetStream consumer killed between
//! its commit and its ack, and CloudEvents over HTTP from a thousand concurrent producers.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use weir_function_runtime::lambda_emulator::LambdaRuntimeEmulator;
use weir_odf::MetadataEvent;

const NATS_URL: &str = "nats://127.0.0.1:4222";

struct Prepared {
    dir: tempfile::TempDir,
    storage: std::path::PathBuf,
    store: weir_dataset::DatasetStore,
    dataset: weir_dataset::Dataset,
}

async fn prepared() -> Prepared {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("datasets");
    let store = weir_dataset::DatasetStore::local_fs(&storage).unwrap();
    let definition =
        weir_odf::manifest::parse_dataset_manifest(&root_manifest("cities", NDJSON_READ, APPEND))
            .unwrap();
    let (dataset, _) = store
        .create_dataset(&"alice".parse().unwrap(), definition, chrono::Utc::now())
        .await
        .unwrap();
    Prepared {
        dir,
        storage,
        store,
        dataset,
    }
}

impl Prepared {
    fn config(&self, extra: &str) -> std::path::PathBuf {
        let path = self.dir.path().join("service-config.yml");
        std::fs::write(
            &path,
            format!(
                "storage:\n  kind: local_fs\n  root_dir: {}\nopen_access: true\n{extra}",
                self.storage.display()
            ),
        )
        .unwrap();
        path
    }

    /// `count(*)` and `count(DISTINCT city)`, or `None` before the first data.
    async fn counts(&self) -> Option<(i64, i64)> {
        let chain = self.dataset.load_chain(None).await.unwrap();
        chain.state.last_offset()?;
        let session = datafusion::prelude::SessionContext::new();
        let table = weir_dataset::table::dataset_table(&session, &self.store, &self.dataset, None)
            .await
            .unwrap();
        session.register_table("t", table).unwrap();
        let batches = session
            .sql("SELECT count(*) AS n, count(DISTINCT city) AS d FROM t")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let value = |column: usize| {
            batches[0]
                .column(column)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .unwrap()
                .value(0)
        };
        Some((value(0), value(1)))
    }

    async fn wait_for_rows(&self, rows: i64, within: Duration) -> (i64, i64) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let counts = self.counts().await;
            if let Some((total, _)) = counts
                && total >= rows
            {
                return counts.unwrap();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{rows} rows within {within:?}: {counts:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn add_data_blocks(&self) -> usize {
        let chain = self.dataset.load_chain(None).await.unwrap();
        chain
            .blocks
            .iter()
            .filter(|(_, block)| matches!(block.event, MetadataEvent::AddData(_)))
            .count()
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn http_binary(config: &std::path::Path, port: u16) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_weir-ingest"));
    command
        .env("PORT", port.to_string())
        .env("WEIR_LISTEN_HOST", "127.0.0.1")
        .env("WEIR_CONFIG_PATH", config)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    command
}

async fn wait_ready(client: &reqwest::Client, port: u16) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            && response.status() == 200
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the function got ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lambda_answers_an_sqs_event_with_the_poison_message_as_its_only_failure() {
    let prepared = prepared().await;
    let event = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sqs-ingest-event.json"
    ))
    .unwrap();
    // The same batch again, as SQS delivers it when a Lambda died before answering.
    let redelivered = event.replace(
        "\"ApproximateReceiveCount\": \"1\"",
        "\"ApproximateReceiveCount\": \"2\"",
    );
    let mut runtime = LambdaRuntimeEmulator::start("weir-ingest", vec![event, redelivered])
        .await
        .unwrap();
    let mut child = lambda_binary(runtime.address, &prepared.config(""))
        .spawn()
        .unwrap();
    for round in 1..=2 {
        let result = runtime
            .next_result(Duration::from_secs(60))
            .await
            .expect("the function answered");
        assert_eq!(result.kind, "response", "{}", result.body);
        let response: serde_json::Value = serde_json::from_str(&result.body).unwrap();
        assert_eq!(
            response,
            serde_json::json!({"batchItemFailures": [
                {"itemIdentifier": "2e1424d4-f796-459a-8184-9c92662be6da"}
            ]}),
            "round {round}"
        );
    }
    child.kill().await.unwrap();
    assert_eq!(prepared.counts().await, Some((2, 2)));
    assert_eq!(
        prepared.add_data_blocks().await,
        1,
        "the redelivery added nothing"
    );
    let session = datafusion::prelude::SessionContext::new();
    let table =
        weir_dataset::table::dataset_table(&session, &prepared.store, &prepared.dataset, None)
            .await
            .unwrap();
    session.register_table("t", table).unwrap();
    let batches = session
        .sql("SELECT CAST(event_time AS VARCHAR) FROM t WHERE city = 'Braga'")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    assert!(text.contains("2024-02-01"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_between_commit_and_ack_neither_loses_nor_repeats_a_message() {
    let prepared = prepared().await;
    let name = format!("K{}", uuid::Uuid::new_v4().simple());
    let prefix = format!("{name}.ingest");
    let config = prepared.config(&format!(
        "queue:\n  subject_prefix: {prefix}\n  jetstream:\n    url: {NATS_URL}\n    stream: {name}\n    \
         subjects: ['{prefix}.>']\n    durable: ingest\n    ack_wait_seconds: 2\n    \
         dead_letter_prefix: {name}.dead\n"
    ));
    let client = async_nats::connect(NATS_URL).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);
    jetstream
        .get_or_create_stream(async_nats::jetstream::stream::Config {
            name: name.clone(),
            subjects: vec![format!("{prefix}.>")],
            ..Default::default()
        })
        .await
        .unwrap();
    let publish = |from: u64, to: u64| {
        let jetstream = jetstream.clone();
        let subject = format!("{prefix}.alice.cities");
        async move {
            for n in from..=to {
                let body = format!(
                    r#"{{"event_time":"2024-01-01T00:00:00Z","city":"c{n}","population":{n}}}"#
                );
                jetstream
                    .publish(subject.clone(), body.into())
                    .await
                    .unwrap()
                    .await
                    .unwrap();
            }
        }
    };
    publish(1, 300).await;

    // The first run commits a batch and dies (SIGABRT, like kill -9) before acking any of it.
    let port = free_port();
    let status = http_binary(&config, port)
        .env("WEIR_FAULT", "abort-before-ack")
        .status()
        .await
        .unwrap();
    assert!(!status.success(), "the consumer died: {status}");
    let (committed, _) = prepared.counts().await.expect("a batch was committed");
    assert!(committed > 0);

    publish(301, 600).await;
    let mut child = http_binary(&config, port).spawn().unwrap();
    let (rows, distinct) = prepared.wait_for_rows(600, Duration::from_secs(60)).await;
    // Give redeliveries time to arrive and be recognised.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (rows_later, _) = prepared.counts().await.unwrap();
    child.kill().await.unwrap();
    assert_eq!((rows, distinct, rows_later), (600, 600, 600));
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = jetstream
        .get_stream(&name)
        .await
        .unwrap()
        .get_consumer("ingest")
        .await
        .unwrap();
    let info = consumer.info().await.unwrap();
    assert_eq!(
        (info.num_pending, info.num_ack_pending),
        (0, 0),
        "every message acked"
    );
    let _ = jetstream.delete_stream(&name).await;
    let _ = jetstream.delete_stream(format!("{name}_DEAD")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudevents_from_a_thousand_concurrent_producers_are_committed_once_each() {
    let prepared = prepared().await;
    let port = free_port();
    let mut child = http_binary(&prepared.config(""), port).spawn().unwrap();
    let client = reqwest::Client::new();
    wait_ready(&client, port).await;
    let url = format!("http://127.0.0.1:{port}/events");
    let send = |id: u64| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let response = client
                .post(&url)
                .header("ce-specversion", "1.0")
                .header("ce-id", id.to_string())
                .header("ce-source", "/producers")
                .header("ce-type", "dev.weir.ingest.v1")
                .header("ce-odfdataset", "alice/cities")
                .header("content-type", "application/x-ndjson")
                .body(format!(
                    r#"{{"event_time":"2024-01-01T00:00:00Z","city":"c{id}","population":{id}}}"#
                ))
                .send()
                .await
                .unwrap();
            response.status().as_u16()
        }
    };
    // A thousand producers at once, then fifty of them again (a broker's retries).
    let statuses = futures::future::join_all((1..=1000).map(send)).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let statuses = futures::future::join_all((1..=50).map(send)).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(prepared.counts().await, Some((1000, 1000)));
    let blocks = prepared.add_data_blocks().await;
    assert!(blocks < 500, "{blocks} blocks for 1000 events");

    // Bad events answer 400 with the reason and add nothing.
    let response = client
        .post(&url)
        .header("ce-specversion", "1.0")
        .header("ce-id", "x")
        .header("ce-type", "t")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("`source`"),
        "{body}"
    );
    let response = client
        .post(&url)
        .header("content-type", "application/cloudevents+json")
        .body(
            serde_json::json!({"specversion": "1.0", "id": "p", "source": "/s", "type": "t",
                "odfdataset": "alice/cities",
                "data": {"event_time": "2024-01-01T00:00:00Z", "city": "z", "population": "many"}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("population"),
        "{body}"
    );
    let response = client
        .post(&url)
        .header("content-type", "application/cloudevents+json")
        .body(
            serde_json::json!({"specversion": "1.0", "id": "q", "source": "/s", "type": "t",
                "odfdataset": "alice/nowhere", "data": {"city": "z"}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // An event announced larger than 16 MiB is refused before its body is read.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream
        .write_all(
            format!(
                "POST /events HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-id: big\r\n\
                 ce-source: /s\r\nce-type: t\r\nce-odfdataset: alice/cities\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                17 << 20
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"error\""), "{answer}");
    child.kill().await.unwrap();
    assert_eq!(prepared.counts().await, Some((1000, 1000)));
}
