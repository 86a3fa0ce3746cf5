//! Hardening: deeply nested JSON never takes the process down. NDJSON, JSON arrays, a nested
//! document at the top level and GeoJSON properties, with a declared schema and with an
//! inferred one, answer 400 naming the record; nothing is committed; the function keeps serving.

mod common;

use common::*;

fn deep(levels: usize) -> String {
    format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
}

fn deep_object(levels: usize) -> String {
    format!("{}1{}", "{\"a\":".repeat(levels), "}".repeat(levels))
}

const INFERRED: &str = "        kind: NdJson";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_json_answers_400_naming_the_record() {
    let harness = Harness::start().await;
    harness
        .create(&root_manifest("declared", NDJSON_READ, APPEND))
        .await;
    harness
        .create(&root_manifest("inferred", INFERRED, APPEND))
        .await;
    let good = r#"{"event_time": "2024-01-01T00:00:00Z", "city": "A", "population": 1}"#;
    let cases = [
        (
            "application/x-ndjson",
            format!(
                "{good}\n{{\"event_time\": \"2024-01-01T00:00:00Z\", \"city\": {}}}\n",
                deep(100_000)
            ),
            "record 2",
        ),
        (
            "application/x-ndjson",
            format!("{good}\n{good}\n{{\"city\": {}}}", deep_object(50_000)),
            "record 3",
        ),
        (
            "application/json",
            format!("[{good}, {{\"city\": {}}}]", deep(100_000)),
            "record 2",
        ),
        (
            "application/json",
            format!("[{}]", deep(100_000)),
            "record 1",
        ),
        ("application/json", deep(200_000), "record 1"),
        ("application/x-ndjson", deep(200_000), "record 1"),
    ];
    for dataset in ["declared", "inferred"] {
        let path = format!("/alice/{dataset}/ingest");
        for (content_type, body, record) in &cases {
            let (status, json) = harness.push(&path, content_type, body.clone()).await;
            assert_eq!(status, 400, "{dataset} {content_type} {record}: {json}");
            let message = json["message"].as_str().unwrap();
            assert!(
                message.contains(record) && message.contains("nested deeper than"),
                "{dataset}: {message}"
            );
        }
        let rows = harness.push(&path, "application/x-ndjson", good).await;
        assert_eq!(rows.0, 200, "{dataset} still takes pushes: {}", rows.1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_geojson_properties_answer_400() {
    let harness = Harness::start().await;
    harness
        .create(&root_manifest("places", "        kind: GeoJson", APPEND))
        .await;
    let feature = |properties: String| {
        format!(r#"{{"type": "Feature", "geometry": null, "properties": {properties}}}"#)
    };
    let body = format!(
        r#"{{"type": "FeatureCollection", "features": [{}, {}]}}"#,
        feature(r#"{"name": "ok"}"#.to_string()),
        feature(format!("{{\"name\": {}}}", deep(100)))
    );
    let (status, json) = harness
        .push("/alice/places/ingest", "application/geo+json", body)
        .await;
    assert_eq!(status, 400, "{json}");
    let message = json["message"].as_str().unwrap();
    assert!(message.contains("record 2"), "{message}");
    // Deeper than the JSON parser's own bound.
    let body = feature(deep(100_000));
    let (status, json) = harness
        .push("/alice/places/ingest", "application/geo+json", body)
        .await;
    assert_eq!(status, 400, "{json}");
}
