//! Every bad request answers 4xx with a JSON body naming the problem, and commits nothing.

mod common;

use common::*;

async fn assert_rejected(
    harness: &Harness,
    path: &str,
    headers: &[(&str, &str)],
    body: &'static str,
    status: u16,
    needle: &str,
) {
    let dataset_id = harness
        .store
        .resolve_alias(&"alice".parse().unwrap(), &"cities".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let before = harness
        .store
        .dataset(&dataset_id)
        .head()
        .await
        .unwrap()
        .unwrap()
        .hash;
    let (actual, json) = harness.push_with(path, headers, body).await;
    assert_eq!(actual, status, "{json}");
    let message = json["message"].as_str().unwrap_or_default();
    assert!(json["error"].is_string(), "{json}");
    assert!(
        message.contains(needle),
        "message `{message}` should mention `{needle}`"
    );
    let after = harness
        .store
        .dataset(&dataset_id)
        .head()
        .await
        .unwrap()
        .unwrap()
        .hash;
    assert_eq!(
        before, after,
        "a rejected request must not change the dataset"
    );
}

async fn harness() -> Harness {
    let harness = Harness::start_with(|config| config.max_body_bytes = 4096).await;
    let read = "        kind: Csv
        header: true
        schema:
          fields:
            - name: event_time
              type: Timestamp
            - name: city
              type: String
            - name: population
              type: Int64";
    harness.create(&root_manifest("cities", read, APPEND)).await;
    harness
        .create("kind: DatasetSnapshot\nversion: 1\ncontent:\n  name: derived\n  kind: Derivative\n  metadata: []\n")
        .await;
    harness
}

const CSV: &[(&str, &str)] = &[("content-type", "text/csv")];
const NDJSON: &[(&str, &str)] = &[("content-type", "application/x-ndjson")];

#[tokio::test]
async fn malformed_csv_names_the_line() {
    let harness = harness().await;
    let body = "event_time,city,population\n2024-01-01T00:00:00Z,A,10\n2024-01-01T00:00:00Z,B\n";
    assert_rejected(&harness, "/alice/cities/ingest", CSV, body, 400, "line").await;
}

#[tokio::test]
async fn unclosed_csv_quote_names_the_line_it_opened_on() {
    let harness = harness().await;
    // Before, the records after the quote were swallowed into one field: 200 with 1 record.
    let body = "event_time,city,population\n2024-01-01T00:00:00Z,A,10\n2024-01-01T00:00:00Z,\"B,20\n2024-01-01T00:00:00Z,C,30\n2024-01-01T00:00:00Z,D,40\n";
    assert_rejected(&harness, "/alice/cities/ingest", CSV, body, 400, "line 3").await;
}

#[tokio::test]
async fn value_not_matching_schema_names_the_column() {
    let harness = harness().await;
    let body = "event_time,city,population\n2024-01-01T00:00:00Z,A,many\n";
    assert_rejected(
        &harness,
        "/alice/cities/ingest",
        CSV,
        body,
        400,
        "population",
    )
    .await;
}

#[tokio::test]
async fn malformed_json_names_the_record() {
    let harness = harness().await;
    let body = "{\"event_time\": \"2024-01-01T00:00:00Z\", \"city\": \"A\", \"population\": 1}\n{\"city\": \"B\", \"population\": }\n";
    assert_rejected(
        &harness,
        "/alice/cities/ingest",
        NDJSON,
        body,
        400,
        "record 2",
    )
    .await;
}

#[tokio::test]
async fn json_type_error_names_record_and_column() {
    let harness = harness().await;
    let body = "{\"event_time\": \"2024-01-01T00:00:00Z\", \"city\": \"A\", \"population\": 1}\n{\"event_time\": \"2024-01-01T00:00:00Z\", \"city\": \"B\", \"population\": \"lots\"}\n";
    assert_rejected(
        &harness,
        "/alice/cities/ingest",
        NDJSON,
        body,
        400,
        "record 2",
    )
    .await;
    assert_rejected(
        &harness,
        "/alice/cities/ingest",
        NDJSON,
        body,
        400,
        "population",
    )
    .await;
}

#[tokio::test]
async fn json_array_that_is_not_an_array_is_rejected() {
    let harness = harness().await;
    let headers = [("content-type", "application/json")];
    assert_rejected(
        &harness,
        "/alice/cities/ingest",
        &headers,
        "{\"city\": \"A\"}",
        400,
        "array",
    )
    .await;
    assert_rejected(
        &harness,
        "/alice/cities/ingest",
        &headers,
        "[{\"city\": \"A\"}",
        400,
        "not closed",
    )
    .await;
}

#[tokio::test]
async fn unknown_dataset_is_404() {
    let harness = harness().await;
    assert_rejected(
        &harness,
        "/alice/nope/ingest",
        CSV,
        "a\n1\n",
        404,
        "alice/nope",
    )
    .await;
    assert_rejected(
        &harness,
        "/bob/cities/ingest",
        CSV,
        "a\n1\n",
        404,
        "bob/cities",
    )
    .await;
}

#[tokio::test]
async fn unknown_source_is_400() {
    let harness = harness().await;
    assert_rejected(
        &harness,
        "/alice/cities/ingest?sourceName=other",
        CSV,
        "a\n1\n",
        400,
        "other",
    )
    .await;
}

#[tokio::test]
async fn unsupported_media_type_is_415() {
    let harness = harness().await;
    assert_rejected(
        &harness,
        "/alice/cities/ingest",
        &[("content-type", "application/xml")],
        "<a/>",
        415,
        "application/xml",
    )
    .await;
    assert_rejected(
        &harness,
        "/alice/cities/ingest",
        &[],
        "a",
        415,
        "unsupported media type",
    )
    .await;
}

#[tokio::test]
async fn derivative_dataset_is_400() {
    let harness = harness().await;
    let (status, json) = harness
        .push("/alice/derived/ingest", "text/csv", "a\n1\n")
        .await;
    assert_eq!(status, 400, "{json}");
    assert!(
        json["message"].as_str().unwrap().contains("derivative"),
        "{json}"
    );
}

#[tokio::test]
async fn empty_body_is_400() {
    let harness = harness().await;
    assert_rejected(&harness, "/alice/cities/ingest", CSV, "", 400, "empty").await;
    assert_rejected(&harness, "/alice/cities/ingest", NDJSON, "", 400, "empty").await;
}

#[tokio::test]
async fn too_large_body_is_413() {
    let harness = harness().await;
    let body: &'static str = Box::leak("x".repeat(5000).into_boxed_str());
    assert_rejected(&harness, "/alice/cities/ingest", CSV, body, 413, "4096").await;
}

#[tokio::test]
async fn bad_event_time_header_is_400() {
    let harness = harness().await;
    let headers = [
        ("content-type", "text/csv"),
        ("odf-event-time", "yesterday"),
    ];
    assert_rejected(
        &harness,
        "/alice/cities/ingest",
        &headers,
        "a\n",
        400,
        "odf-event-time",
    )
    .await;
}

#[tokio::test]
async fn columns_outside_the_schema_are_400() {
    let harness = harness().await;
    let body = "event_time,city,population\n2024-01-01T00:00:00Z,A,10\n";
    let (status, _) = harness.push("/alice/cities/ingest", "text/csv", body).await;
    assert_eq!(status, 200);
    let body = "{\"event_time\": \"2024-01-01T00:00:00Z\", \"city\": \"A\", \"population\": 1, \"mayor\": \"x\"}";
    // The NDJSON reader reads only declared columns, so an extra field is ignored, not an error.
    let (status, json) = harness
        .push("/alice/cities/ingest", "application/x-ndjson", body)
        .await;
    assert_eq!(status, 200, "{json}");
}
