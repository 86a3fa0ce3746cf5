//! The `weir-ingest` binary long-polling SQS (moto on loopback, `WEIR_TEST_S3_ENDPOINT`, started
//! by `./local/test`): files dropped into a bucket with boto3 reach the dataset through the
//! bucket's ObjectCreated notifications; messages sent straight to the queue too; what cannot be
//! ingested lands in the dead-letter queue with the reason; a FIFO queue keeps its order.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;

fn endpoint() -> String {
    std::env::var("WEIR_TEST_S3_ENDPOINT").expect(
        "WEIR_TEST_S3_ENDPOINT is not set: run ./local/test, which starts an S3 API server on loopback",
    )
}

/// Runs the boto3 helper and parses what it prints.
fn boto(args: &[&str]) -> serde_json::Value {
    let output = std::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sqs_moto.py"))
        .args(args)
        .env("WEIR_TEST_S3_ENDPOINT", endpoint())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

struct Node {
    dir: tempfile::TempDir,
    store: weir_dataset::DatasetStore,
    dataset: weir_dataset::Dataset,
    ordered: weir_dataset::Dataset,
    child: Option<tokio::process::Child>,
}

impl Node {
    async fn rows(&self, dataset: &weir_dataset::Dataset, sql: &str) -> Vec<String> {
        if dataset
            .load_chain(None)
            .await
            .unwrap()
            .state
            .last_offset()
            .is_none()
        {
            return Vec::new();
        }
        let session = datafusion::prelude::SessionContext::new();
        let table = weir_dataset::table::dataset_table(&session, &self.store, dataset, None)
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
            .map(|line| line.trim_matches('|').trim().replace(' ', ""))
            .collect()
    }
}

async fn start(name: &str, queue: &str, dead: &str) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("datasets");
    let store = weir_dataset::DatasetStore::local_fs(&storage).unwrap();
    let create = |name: &str| {
        let store = store.clone();
        let manifest = root_manifest(name, NDJSON_READ, APPEND);
        async move {
            let definition = weir_odf::manifest::parse_dataset_manifest(&manifest).unwrap();
            store
                .create_dataset(&"alice".parse().unwrap(), definition, chrono::Utc::now())
                .await
                .unwrap()
                .0
        }
    };
    let dataset = create("cities").await;
    let ordered = create("ordered").await;
    let endpoint = endpoint();
    let aws = format!(
        "endpoint: {endpoint}\n      region: us-east-1\n      access_key_id: test\n      \
         secret_access_key: test"
    );
    let config = format!(
        "storage:\n  kind: local_fs\n  root_dir: {storage}\nopen_access: true\n\
         polling:\n  s3:\n    endpoint: {endpoint}\n    region: us-east-1\n    access_key_id: test\n    \
         secret_access_key: test\n    allow_http: true\n\
         queue:\n  objects:\n    - bucket: {name}\n      prefix: cities/\n      dataset: alice/cities\n  \
         sqs:\n      queue_url: {queue}\n      dead_letter_queue_url: {dead}\n      {aws}\n      \
         wait_seconds: 1\n      batch_wait_millis: 300\n",
        storage = storage.display(),
    );
    let path = dir.path().join("service-config.yml");
    std::fs::write(&path, config).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_weir-ingest"))
        .env("PORT", port.to_string())
        .env("WEIR_LISTEN_HOST", "127.0.0.1")
        .env("WEIR_CONFIG_PATH", &path)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    Node {
        dir,
        store,
        dataset,
        ordered,
        child: Some(child),
    }
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_dropped_into_a_bucket_and_sqs_messages_are_ingested_once_and_poison_is_dead_lettered()
 {
    let name = format!("weir-drop-{}", uuid::Uuid::new_v4().simple());
    let queues = boto(&["setup", &name]);
    let queue = queues["queue"].as_str().unwrap().to_string();
    let dead = queues["dead"].as_str().unwrap().to_string();
    let mut node = start(&name, &queue, &dead).await;
    let file = |text: &str| {
        let path = node
            .dir
            .path()
            .join(format!("{}.ndjson", uuid::Uuid::new_v4()));
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let lisbon = file(concat!(
        r#"{"event_time":"2024-01-01T00:00:00Z","city":"Lisbon","population":545000}"#,
        "\n",
        r#"{"event_time":"2024-01-01T00:00:00Z","city":"Porto","population":232000}"#,
    ));
    // A user drops files with boto3: one good (its name has a space), one that cannot be read.
    boto(&["put", &name, "cities/2024 01.ndjson", &lisbon]);
    let bad = file(r#"{"event_time":"2024-01-01T00:00:00Z","city":"X","population":"lots"}"#);
    boto(&["put", &name, "cities/bad.ndjson", &bad]);
    // Straight to the queue: a record for the dataset, and one for a dataset that is not there.
    let attributes = |dataset: &str| format!(r#"{{"odf-dataset":"{dataset}"}}"#);
    boto(&[
        "send",
        &queue,
        r#"{"event_time":"2024-01-01T00:00:00Z","city":"Braga","population":193000}"#,
        &attributes("alice/cities"),
    ]);
    boto(&[
        "send",
        &queue,
        r#"{"city":"Y"}"#,
        &attributes("alice/nowhere"),
    ]);
    // A notification for an object that was removed before it could be read.
    let gone = format!(
        r#"{{"Records":[{{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","eventTime":"2024-01-01T00:00:00Z",
        "s3":{{"bucket":{{"name":"{name}"}},"object":{{"key":"cities/gone.ndjson","eTag":"x"}}}}}}]}}"#
    );
    boto(&["send", &queue, &gone, "{}"]);

    eventually("the good file and message are in", || async {
        node.rows(&node.dataset, "SELECT city FROM t ORDER BY city")
            .await
            == vec!["Braga", "Lisbon", "Porto"]
    })
    .await;
    let mut dead_letters: Vec<serde_json::Value> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while dead_letters.len() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "three dead letters: {dead_letters:?}"
        );
        dead_letters.extend(boto(&["drain", &dead]).as_array().unwrap().iter().cloned());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let reasons: Vec<String> = dead_letters
        .iter()
        .map(|m| {
            m["attributes"]["weir-error"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("population")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("alice/nowhere")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("is gone")), "{reasons:?}");

    // The same notification again (a redelivery, or S3 sending it twice): nothing new.
    let etag = boto(&["etag", &name, "cities/2024 01.ndjson"]);
    let again = format!(
        r#"{{"Records":[{{"eventSource":"aws:s3","eventName":"ObjectCreated:Put",
        "s3":{{"bucket":{{"name":"{name}"}},"object":{{"key":"cities%2F2024+01.ndjson","eTag":"{}"}}}}}}]}}"#,
        etag["etag"].as_str().unwrap()
    );
    boto(&["send", &queue, &again, "{}"]);
    eventually("the queue is empty", || async {
        let counts = boto(&["count", &queue]);
        counts["ApproximateNumberOfMessages"] == 0
            && counts["ApproximateNumberOfMessagesNotVisible"] == 0
    })
    .await;
    node.child.take().unwrap().kill().await.unwrap();
    assert_eq!(
        node.rows(&node.dataset, "SELECT count(*) FROM t").await,
        vec!["3"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_queue_is_committed_in_its_order() {
    let name = format!("weir-fifo-{}", uuid::Uuid::new_v4().simple());
    let queues = boto(&["setup", &name]);
    let fifo = queues["fifo"].as_str().unwrap().to_string();
    let dead = queues["dead"].as_str().unwrap().to_string();
    for n in 1..=30 {
        let body =
            format!(r#"{{"event_time":"2024-01-01T00:00:00Z","city":"c{n}","population":{n}}}"#);
        boto(&[
            "send",
            &fifo,
            &body,
            r#"{"odf-dataset":"alice/ordered"}"#,
            "sensors",
        ]);
    }
    let mut node = start(&name, &fifo, &dead).await;
    let expected: Vec<String> = (1..=30).map(|n| n.to_string()).collect();
    eventually("all thirty are in", || async {
        node.rows(&node.ordered, "SELECT population FROM t ORDER BY offset")
            .await
            .len()
            >= 30
    })
    .await;
    node.child.take().unwrap().kill().await.unwrap();
    assert_eq!(
        node.rows(&node.ordered, "SELECT population FROM t ORDER BY offset")
            .await,
        expected
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lambda_with_a_dead_letter_queue_sends_the_poison_message_there_with_the_reason() {
    let name = format!("weir-lambda-{}", uuid::Uuid::new_v4().simple());
    let queues = boto(&["setup", &name]);
    let queue = queues["queue"].as_str().unwrap().to_string();
    let dead = queues["dead"].as_str().unwrap().to_string();
    let mut node = start(&name, &queue, &dead).await;
    // The same node's config, run as a Lambda fed the recorded SQS event instead.
    node.child.take().unwrap().kill().await.unwrap();
    let event = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sqs-ingest-event.json"
    ))
    .unwrap();
    let mut runtime = weir_function_runtime::lambda_emulator::LambdaRuntimeEmulator::start(
        "weir-ingest",
        vec![event],
    )
    .await
    .unwrap();
    let mut child = lambda_binary(runtime.address, &node.dir.path().join("service-config.yml"))
        .spawn()
        .unwrap();
    let result = runtime
        .next_result(Duration::from_secs(60))
        .await
        .expect("the function answered");
    child.kill().await.unwrap();
    assert_eq!(result.kind, "response", "{}", result.body);
    let response: serde_json::Value = serde_json::from_str(&result.body).unwrap();
    assert_eq!(response, serde_json::json!({"batchItemFailures": []}));
    let dead_letters = boto(&["drain", &dead]);
    let dead_letters = dead_letters.as_array().unwrap();
    assert_eq!(dead_letters.len(), 1, "{dead_letters:?}");
    assert!(dead_letters[0]["body"].as_str().unwrap().contains("lots"));
    let reason = dead_letters[0]["attributes"]["weir-error"]
        .as_str()
        .unwrap();
    assert!(reason.contains("population"), "{reason}");
    assert_eq!(dead_letters[0]["attributes"]["odf-dataset"], "alice/cities");
    assert_eq!(
        node.rows(&node.dataset, "SELECT city FROM t ORDER BY city")
            .await,
        vec!["Braga", "Lisbon"]
    );
}
