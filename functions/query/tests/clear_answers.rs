//! Hardening: answers that were wrong or misleading. EXPLAIN works, huge limits are limits
//! rather than cast errors, and a header that is not ASCII is 401, not anonymous.

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_and_huge_limits_answer() {
    let harness = Harness::with_cities().await;
    let (status, body) = harness
        .post_json(
            "/query",
            json!({"query": "EXPLAIN SELECT city FROM cities"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.to_string().contains("plan"), "{body}");

    let huge = u64::MAX;
    let (status, body) = harness
        .post_json(
            "/query",
            json!({"query": "SELECT city FROM cities ORDER BY city", "limit": huge, "skip": huge}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["data"], json!([]));
    let (status, body) = harness
        .post_json(
            "/query",
            json!({"query": "SELECT city FROM cities ORDER BY city", "limit": huge}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["data"].as_array().unwrap().len(), 3);
    let (status, body) = harness
        .get_json(&format!("/alice/cities/tail?limit={huge}"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["data"].as_array().unwrap().len(), 3);
    let (status, body) = harness
        .post_json(
            "/query",
            json!({"query": format!("SELECT city FROM cities LIMIT {huge}")}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["data"].as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_ascii_authorization_header_is_401() {
    let harness = Harness::with_cities().await;
    let response = harness
        .client
        .post(harness.url("/query"))
        .header(
            "authorization",
            reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
        )
        .json(&json!({"query": "SELECT 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unauthenticated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_no_handler_wrote_are_json_too() {
    let harness = Harness::with_cities().await;
    let big = format!("{{\"query\": \"SELECT 1 {}\"}}", " ".repeat(3 << 20));
    // Its own client: the server closes a connection whose body it refused unread, and a
    // pooled connection reused after that would fail the next request.
    let response = reqwest::Client::new()
        .post(harness.url("/query"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "payload_too_large", "{body}");
    for path in [
        "/query?query=SELECT%201&bogus=1",
        "/alice/cities/tail?limit=x",
    ] {
        let (status, body) = harness.get_json(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body["message"].is_string(), "{body}");
    }
}
