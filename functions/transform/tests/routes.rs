//! The transform function over real HTTP: status, run, verify and reset, and their bad inputs
//! (4xx with a JSON body naming the problem, nothing committed).

mod common;

use std::sync::Arc;

use common::{Harness, derivative_manifest, readings_manifest};
use serde_json::Value;
use weir_function_runtime::OpenAccess;
use weir_transform::{TransformContext, router};

async fn serve(harness: &Harness) -> String {
    let context = Arc::new(TransformContext {
        store: harness.store.clone(),
        transformer: harness.transformer.clone(),
        access: Arc::new(OpenAccess),
        runs: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(context)).await.unwrap() });
    url
}

async fn post(url: &str, body: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn status_run_verify_and_reset_over_http() {
    let harness = Harness::start();
    let root = harness
        .create(&readings_manifest("readings", "kind: Append"))
        .await;
    let derived = harness
        .create(&derivative_manifest(
            "hourly",
            &[(&root, "readings")],
            "SELECT event_time, sensor, temp FROM readings",
        ))
        .await;
    let url = serve(&harness).await;
    harness
        .push(
            "readings",
            "{\"event_time\": \"2026-01-01T10:00:00Z\", \"sensor\": \"s1\", \"temp\": 1.5}".into(),
        )
        .await;
    let status: Value = reqwest::get(format!("{url}/datasets/alice/hourly/transform"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["upToDate"], false, "{status}");
    let (code, ran) = post(&format!("{url}/datasets/alice/hourly/transform"), "").await;
    assert_eq!((code, &ran["numRecords"]), (200, &Value::from(1)), "{ran}");
    let status: Value = reqwest::get(format!("{url}/datasets/alice/hourly/transform"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["upToDate"], true, "{status}");
    let (code, report) = post(&format!("{url}/datasets/alice/hourly/verify"), "").await;
    assert_eq!((code, &report["stepsVerified"]), (200, &Value::from(1)));

    let head_before = harness
        .store
        .dataset(&derived)
        .head()
        .await
        .unwrap()
        .map(|h| h.hash);
    // A block of another dataset.
    let root_head = harness
        .store
        .dataset(&root)
        .head()
        .await
        .unwrap()
        .unwrap()
        .hash;
    let foreign = format!("{{\"toBlock\": \"{root_head}\"}}");
    let bad = [
        // (path, body, status, needle)
        ("hourly/reset", "{\"toBlock\": \"nope\"}", 400, "toBlock"),
        ("hourly/reset", "{\"toBlock\": 5}", 400, "invalid body"),
        ("hourly/reset", "{\"block\": \"x\"}", 400, "unknown field"),
        ("hourly/reset", "[", 400, "invalid body"),
        (
            "hourly/reset",
            foreign.as_str(),
            400,
            "not in the dataset's chain",
        ),
        ("readings/reset", "", 400, "toBlock"),
        ("readings/transform", "", 400, "not a derivative"),
        ("readings/verify", "", 400, "not a derivative"),
        ("missing/reset", "", 404, "alice/missing"),
        ("NOT%20A%20NAME/transform", "", 404, "not found"),
    ];
    for (path, body, expected, needle) in bad {
        let (code, answer) = post(&format!("{url}/datasets/alice/{path}"), body).await;
        assert_eq!(code, expected, "{path} {body}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{path} {body}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    assert_eq!(
        harness
            .store
            .dataset(&derived)
            .head()
            .await
            .unwrap()
            .map(|h| h.hash),
        head_before,
        "a refused request moved nothing"
    );

    let (code, reset) = post(&format!("{url}/datasets/alice/hourly/reset"), "{}").await;
    assert_eq!(
        (code, &reset["newHeadSequence"]),
        (200, &Value::from(1)),
        "{reset}"
    );
}
