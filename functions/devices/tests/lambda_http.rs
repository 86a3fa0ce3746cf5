//! The `weir-devices` binary as a Lambda (under the Runtime API emulator): API Gateway events for
//! `POST /kp1/…/json` are answered 200 once the samples are committed, and 401 for an unknown
//! token; the MQTT bridge does not run there.

mod common;

use std::time::Duration;

use common::{Node, unique};
use weir_function_runtime::lambda_emulator::LambdaRuntimeEmulator;

fn event(path: &str, body: &str) -> String {
    serde_json::json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {"content-type": "application/json", "host": "api.example.com"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123", "domainName": "api.example.com",
            "domainPrefix": "api", "requestId": "r", "routeKey": "$default", "stage": "$default",
            "time": "30/Nov/2026:15:00:00 +0000", "timeEpoch": 1796050800000_i64,
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "device"}
        },
        "body": body, "isBase64Encoded": false
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_path_runs_as_a_lambda() {
    let node = Node::start().await;
    let p = node.provision(&unique("lambda")).await;
    let config = node.dir.path().join("devices.yml");
    node.bridge_config(&config, &unique("unused-"), &unique("unused-"));
    let good = format!("/kp1/{}/dcx/{}/json", p.version, p.token);
    let bad = format!("/kp1/{}/dcx/unknown-token-000000/json", p.version);
    let mut runtime = LambdaRuntimeEmulator::start(
        "weir-devices",
        vec![
            event(
                &good,
                r#"[{"temperature": 3.5, "seq": 1}, {"temperature": 4.5, "seq": 2}]"#,
            ),
            event(&bad, "[]"),
        ],
    )
    .await
    .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_weir-devices"))
        .env("AWS_LAMBDA_RUNTIME_API", runtime.address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "weir-devices")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/weir-devices")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("WEIR_CONFIG_PATH", &config)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let result = runtime
            .next_result(Duration::from_secs(60))
            .await
            .expect("the function answered within a minute");
        let response: serde_json::Value = serde_json::from_str(&result.body).unwrap();
        statuses.push((result.request_id, response["statusCode"].clone()));
    }
    child.kill().await.unwrap();
    assert_eq!(
        statuses,
        vec![
            ("request-1".to_string(), serde_json::json!(200)),
            ("request-2".to_string(), serde_json::json!(401)),
        ]
    );
    assert_eq!(
        node.rows(&p.dataset_id, "SELECT seq FROM t ORDER BY seq")
            .await,
        vec!["1", "2"]
    );
    node.cleanup().await;
}
