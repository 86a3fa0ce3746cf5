//! Derivative definitions that could never be computed, or never replayed, are refused at
//! creation with a 400 naming the field, and nothing is created.

mod common;

use common::{MANIFEST, assert_error, start};
use reqwest::StatusCode;

fn derivative(name: &str, input: &str, query: &str) -> String {
    format!(
        "kind: DatasetSnapshot
version: 1
content:
  name: {name}
  kind: Derivative
  metadata:
    - kind: SetTransform
      inputs:
        - datasetRef: {input}
          alias: readings
      transform:
        kind: Sql
        engine: datafusion
        query: {query:?}
"
    )
}

#[tokio::test]
async fn bad_transforms_answer_400_and_create_nothing() {
    let node = start(None).await;
    let (status, body) = node.create_dataset(&node.admin, MANIFEST).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let cases = [
        (
            "admin/missing",
            "SELECT event_time FROM readings",
            "admin/missing",
        ),
        // itself: a cycle in the lineage graph
        ("admin/bad", "SELECT event_time FROM readings", "admin/bad"),
        (
            "admin/readings",
            "SELEC event_time FROM readings",
            "invalid SQL",
        ),
        ("admin/readings", "SELECT * FROM readings", "EXCLUDE"),
        (
            "admin/readings",
            "SELECT offset, event_time FROM readings",
            "`offset`",
        ),
        (
            "admin/readings",
            "SELECT event_time, 1 AS system_time FROM readings",
            "`system_time`",
        ),
        (
            "admin/readings",
            "SELECT event_time, random() AS r FROM readings",
            "random",
        ),
        (
            "admin/readings",
            "SELECT now() AS event_time FROM readings",
            "now",
        ),
        (
            "admin/readings",
            "SELECT event_time FROM readings WHERE event_time < current_timestamp",
            "current_timestamp",
        ),
    ];
    for (input, query, needle) in cases {
        let answer = node
            .create_dataset(&node.admin, &derivative("bad", input, query))
            .await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_input", needle);
        let (status, _) = node.get("/datasets/admin/bad", Some(&node.admin)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{query} created a dataset");
    }
    // Refusals name the field.
    let answer = node
        .create_dataset(
            &node.admin,
            &derivative(
                "bad",
                "admin/readings",
                "SELECT now() AS event_time FROM readings",
            ),
        )
        .await;
    assert!(
        answer.1["message"]
            .as_str()
            .unwrap()
            .contains("metadata[0].transform.query"),
        "{}",
        answer.1
    );
    // An engine this node does not have.
    let spark = derivative("bad", "admin/readings", "SELECT event_time FROM readings")
        .replace("engine: datafusion", "engine: spark");
    let answer = node.create_dataset(&node.admin, &spark).await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "transform.engine",
    );
    // CTEs and table functions are not inputs to look for.
    let (status, body) = node
        .create_dataset(
            &node.admin,
            &derivative(
                "ctes",
                "admin/readings",
                "WITH recent AS (SELECT * EXCLUDE (\"offset\", op, system_time) FROM readings) SELECT r.event_time, g.value FROM recent r CROSS JOIN generate_series(1, 2) g",
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // `* EXCLUDE` of the system columns is fine.
    let (status, body) = node
        .create_dataset(
            &node.admin,
            &derivative(
                "good",
                "admin/readings",
                "SELECT * EXCLUDE (\"offset\", op, system_time) FROM readings",
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
