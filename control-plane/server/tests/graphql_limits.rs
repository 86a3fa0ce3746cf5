//! Hardening: one GraphQL request cannot run for long, return megabytes or stall others.
//! Aliases, fields, depth and complexity are bounded and answer 400 naming the limit.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn graphql(node: &Node, query: &str) -> (StatusCode, Value) {
    node.send_json(Method::POST, "/graphql", None, json!({ "query": query }))
        .await
}

fn assert_refused(answer: &(StatusCode, Value), needle: &str) {
    assert_error(answer, StatusCode::BAD_REQUEST, "invalid_input", needle);
    assert!(answer.1["errors"].is_array(), "{}", answer.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn costly_graphql_requests_are_refused_naming_the_limit() {
    let node = start(None).await;
    // The attack shape: many aliases over nested lists.
    let nested =
        "datasets(limit: 1000) { lineage { upstream { lineage { downstream { alias } } } } }";
    let many: String = (0..200).map(|i| format!("a{i}: {nested} ")).collect();
    let answer = graphql(&node, &format!("{{ {many} }}")).await;
    assert_refused(&answer, "aliases");

    let deep = format!(
        "{{ datasets {{ {} alias {} }} }}",
        "lineage { upstream { ".repeat(6),
        "} } ".repeat(6)
    );
    assert_refused(&graphql(&node, &deep).await, "limit of");
    let deep_cheap = format!(
        "{{ me {{ {}name{} }} }}",
        "name { ".repeat(12),
        " }".repeat(12)
    );
    assert_eq!(graphql(&node, &deep_cheap).await.0, StatusCode::BAD_REQUEST);

    let costly = "{ datasets(limit: 1000) { metadataChain(first: 1000) { blocks { event } } } }";
    assert_refused(&graphql(&node, costly).await, "limit of 5000");

    let fields: String = (0..600).map(|_| "alias ").collect();
    let answer = graphql(&node, &format!("{{ datasets {{ {fields} }} }}")).await;
    assert_refused(&answer, "fields");

    // Parser recursion: nested selections far beyond the depth limit.
    let nested_sets = format!(
        "{{ {}alias{} }}",
        "datasets { ".repeat(500),
        " }".repeat(500)
    );
    let answer = graphql(&node, &nested_sets).await;
    assert_eq!(answer.0, StatusCode::BAD_REQUEST, "{}", answer.1);

    // Bodies over the GraphQL body limit answer 413 in the JSON error shape.
    // Its own client: the server closes a connection whose body it refused unread.
    let padding = " ".repeat(300 << 10);
    let response = reqwest::Client::new()
        .post(format!("{}/graphql", node.url))
        .json(&json!({ "query": format!("{{ datasets {{ alias }} {padding} }}") }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].is_string(), "{body}");

    // Ordinary requests still work, and page sizes are capped rather than refused.
    node.create_dataset(&node.admin, MANIFEST).await;
    let answer = node
        .send_json(
            Method::POST,
            "/graphql",
            Some(&node.admin),
            json!({"query": "{ datasets(limit: 100000) { alias } dataset(account: \"admin\", name: \"readings\") { metadataChain(first: 100000) { blocks { eventType } } } }"}),
        )
        .await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    assert_eq!(answer.1["data"]["datasets"][0]["alias"], "admin/readings");
    assert_eq!(
        answer.1["data"]["dataset"]["metadataChain"]["blocks"][0]["eventType"],
        "SetInfo"
    );
}
