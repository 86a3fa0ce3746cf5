//! Hardening: no record can poison a dataset. Values that do not fit their column are refused
//! with 400 naming the record and column, and whatever a dataset holds, every JSON and CSV
//! encoding of it and every tail still answers.

mod common;

use bytes::Bytes;
use common::*;
use serde_json::json;
use weir_ingest::read::MediaFormat;
use weir_ingest::{IngestConfig, IngestContext, IngestRequest};

const INFERRED: &str = "kind: DatasetSnapshot
version: 1
content:
  name: loose
  kind: Root
  metadata:
    - kind: AddPushSource
      sourceName: default
      read:
        kind: NdJson
      merge:
        kind: Append
";

async fn push(harness: &Harness, dataset: &str, body: &str) -> Result<(), String> {
    let ingest = IngestContext::standalone(harness.store.clone(), IngestConfig::default());
    let request = IngestRequest {
        caller: weir_function_runtime::Caller::anonymous(),
        account: "alice".to_string(),
        dataset: dataset.to_string(),
        source_name: None,
        format: MediaFormat::NdJson,
        event_time: None,
        idempotency_key: None,
    };
    let bytes = Bytes::from(body.to_string());
    let body = futures::stream::once(async move { Ok(bytes) });
    ingest
        .ingest(request, body)
        .await
        .map(|_| ())
        .map_err(|error| error.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_values_are_refused_naming_record_and_column() {
    let harness = Harness::with_cities().await;
    harness.create("alice", INFERRED).await;
    let good = r#"{"event_time": "2024-01-01T00:00:00Z", "city": "A", "population": 1}"#;
    let cases = [
        (
            "cities",
            r#"{"event_time": 12345678901234567890, "city": "X", "population": 1}"#,
            "event_time",
        ),
        (
            "cities",
            r#"{"event_time": 1e300, "city": "X", "population": 1}"#,
            "event_time",
        ),
        (
            "cities",
            r#"{"event_time": 9223372036854775807, "city": "X", "population": 1}"#,
            "event_time",
        ),
        (
            "cities",
            r#"{"event_time": "2024-01-01T00:00:00Z", "city": "X", "population": 1e300}"#,
            "population",
        ),
        (
            "loose",
            r#"{"event_time": 12345678901234567890, "v": 1}"#,
            "event_time",
        ),
        ("loose", r#"{"event_time": 1e300, "v": 1}"#, "event_time"),
        (
            "loose",
            r#"{"event_time": 9223372036854775807, "v": 1}"#,
            "event_time",
        ),
        (
            "loose",
            r#"{"event_time": "+262142-01-01T00:00:00Z", "v": 1}"#,
            "event_time",
        ),
    ];
    for (dataset, bad, column) in cases {
        let error = push(&harness, dataset, &format!("{good}\n{bad}\n"))
            .await
            .expect_err(bad);
        assert!(
            error.contains("record 2") && error.contains(column),
            "{dataset} {bad}: {error}"
        );
    }
    // Nothing was stored, and every encoding and the tail still answer.
    for format in ["JsonAoS", "JsonSoA", "JsonAoA", "NdJson", "Csv"] {
        let (status, body) = harness
            .post_json(
                "/query",
                json!({"query": "SELECT * FROM cities", "dataFormat": format}),
            )
            .await;
        assert_eq!(status, 200, "{format}: {body}");
    }
    let (status, body) = harness.get_json("/alice/cities/tail?limit=10").await;
    assert_eq!(status, 200, "{body}");
}
