//! The `weir-governance` binary as a Lambda under the Runtime API emulator, linked to a control
//! plane on loopback: API Gateway events read and change a dataset's documentation, a reader is
//! refused a change, and the change is in the chain.

mod common;

use std::time::Duration;

use common::Node;
use serde_json::{Value, json};
use weir_function_runtime::lambda_emulator::LambdaRuntimeEmulator;

fn event(method: &str, path: &str, token: &str, body: Option<Value>) -> String {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {"content-type": "application/json", "host": "api.example.com",
                    "authorization": format!("Bearer {token}")},
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123", "domainName": "api.example.com",
            "domainPrefix": "api", "requestId": "r", "routeKey": "$default", "stage": "$default",
            "time": "30/Nov/2026:15:00:00 +0000", "timeEpoch": 1796050800000_i64,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "test"}
        },
        "body": body.map(|body| body.to_string()), "isBase64Encoded": false
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documentation_is_served_as_a_lambda() {
    let node = Node::start(false).await;
    node.create_dataset("lambda-docs", "private").await;
    let reader = node.user("reader").await;
    node.grant("admin/lambda-docs", "reader", "reader").await;
    let config = node.dir.path().join("governance.yml");
    std::fs::write(&config, serde_yaml_like(&node)).unwrap();
    let docs = "/datasets/admin/lambda-docs/docs";
    let mut runtime = LambdaRuntimeEmulator::start(
        "weir-governance",
        vec![
            event(
                "PATCH",
                docs,
                &node.admin,
                Some(json!({"description": "From a Lambda", "license": {"spdxId": "MIT"}})),
            ),
            event("GET", docs, &reader, None),
            event("PATCH", docs, &reader, Some(json!({"description": "nope"}))),
        ],
    )
    .await
    .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_weir-governance"))
        .env("AWS_LAMBDA_RUNTIME_API", runtime.address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "weir-governance")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/weir-governance")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("WEIR_CONFIG_PATH", &config)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut answers = Vec::new();
    for _ in 0..3 {
        let result = runtime
            .next_result(Duration::from_secs(60))
            .await
            .expect("the function answered within a minute");
        let response: Value = serde_json::from_str(&result.body).unwrap();
        let body: Value = serde_json::from_str(response["body"].as_str().unwrap_or("null"))
            .unwrap_or(Value::Null);
        answers.push((response["statusCode"].clone(), body));
    }
    child.kill().await.unwrap();
    assert_eq!(answers[0].0, json!(200), "{:?}", answers[0]);
    assert_eq!(answers[0].1["committed"], json!(["SetInfo", "SetLicense"]));
    assert_eq!(answers[1].0, json!(200), "{:?}", answers[1]);
    assert_eq!(answers[1].1["description"], "From a Lambda");
    assert_eq!(answers[1].1["license"]["spdxId"], "MIT");
    assert_eq!(answers[2].0, json!(403), "{:?}", answers[2]);
    assert_eq!(answers[2].1["error"], "forbidden");
    let (_, blocks) = node
        .get("/datasets/admin/lambda-docs/blocks", Some(&node.admin))
        .await;
    let text = blocks.to_string();
    assert!(
        text.contains("SetLicense") && text.contains("SetInfo"),
        "{text}"
    );
}

/// The function's config as YAML (JSON is YAML): storage shared with the control plane.
fn serde_yaml_like(node: &Node) -> String {
    json!({
        "storage": {"kind": "local_fs", "root_dir": node.dir.path().join("datasets")},
        "control_plane": {"url": node.url, "permission_cache_seconds": 0},
    })
    .to_string()
}
