//! The real `weir-query` binary in Lambda mode: run under the Lambda Runtime API emulator
//! (`weir_function_runtime::lambda_emulator`) and fed recorded API Gateway HTTP API events: a
//! query, then bad SQL, which must come back as a 400 response, not a function error.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use weir_function_runtime::lambda_emulator::LambdaRuntimeEmulator;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_answers_api_gateway_events_under_the_lambda_runtime_api() {
    let harness = Harness::with_cities().await;
    let config = harness.storage_root().join("service-config.yml");
    std::fs::write(
        &config,
        format!(
            "storage:\n  kind: local_fs\n  root_dir: {}\nnode_private_key: \"{}\"\nopen_access: true\n",
            harness.storage_root().display(),
            "22".repeat(32)
        ),
    )
    .unwrap();
    let events = vec![
        fixture("apigw-http-v2-query.json"),
        fixture("apigw-http-v2-bad-query.json"),
    ];
    let mut runtime = LambdaRuntimeEmulator::start("weir-query", events)
        .await
        .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_weir-query"))
        .env("AWS_LAMBDA_RUNTIME_API", runtime.address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "weir-query")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/weir-query")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("WEIR_CONFIG_PATH", &config)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let mut answers = Vec::new();
    for _ in 0..2 {
        let result = runtime
            .next_result(Duration::from_secs(60))
            .await
            .expect("the function answered within a minute");
        assert_eq!(result.kind, "response", "{}", result.body);
        let response: serde_json::Value = serde_json::from_str(&result.body).unwrap();
        let payload: serde_json::Value =
            serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        answers.push((result.request_id, response["statusCode"].clone(), payload));
    }
    child.kill().await.unwrap();

    let (request_id, status, payload) = &answers[0];
    assert_eq!((request_id.as_str(), status), ("request-1", &200.into()));
    assert_eq!(
        payload["output"]["data"],
        serde_json::json!([["A", 10], ["B", 20], ["C", 30]]),
        "{payload}"
    );
    let (request_id, status, payload) = &answers[1];
    assert_eq!((request_id.as_str(), status), ("request-2", &400.into()));
    assert_eq!(payload["error"], "invalid_input", "{payload}");
    assert!(
        payload["message"].as_str().unwrap().contains("SQL"),
        "{payload}"
    );
}
