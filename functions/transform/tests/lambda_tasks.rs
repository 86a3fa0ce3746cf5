//! The real `weir-transform` binary as a Lambda executor of flow tasks. A control plane (in this
//! process, on loopback) announces a queued transform task on a real SQS queue (moto,
//! `WEIR_TEST_S3_ENDPOINT`, started by `./local/test`); the message received from that queue
//! becomes the SQS event the binary gets under the Lambda Runtime API emulator. It leases the
//! task over HTTP, runs it, reports it, and answers with an empty partial batch response. The
//! same Lambda still answers HTTP events.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weir_function_runtime::lambda_emulator::LambdaRuntimeEmulator;

const ROOT: &str = "kind: DatasetSnapshot
version: 1
content:
  name: readings
  kind: Root
  metadata:
    - kind: AddPushSource
      sourceName: default
      read:
        kind: NdJson
      merge:
        kind: Append
";

const DERIVATIVE: &str = "kind: DatasetSnapshot
version: 1
content:
  name: copies
  kind: Derivative
  metadata:
    - kind: SetTransform
      inputs:
        - datasetRef: admin/readings
          alias: readings
      transform:
        kind: Sql
        engine: datafusion
        query: SELECT event_time FROM readings
";

fn boto3(endpoint: &str, statement: &str, args: &[&str]) -> String {
    let script = format!(
        "import boto3,sys,json; sqs=boto3.client('sqs', endpoint_url=sys.argv[1], aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1'); {statement}"
    );
    let output = std::process::Command::new("python3")
        .args(["-c", &script, endpoint])
        .args(args)
        .output()
        .expect("python3 with boto3 runs");
    assert!(output.status.success(), "{statement}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// The SQS event Lambda would deliver for `message` (as `receive_message` returned it).
fn sqs_event(message: &Value, queue_arn: &str) -> String {
    let attributes: serde_json::Map<String, Value> = message["MessageAttributes"]
        .as_object()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| {
            (
                name,
                json!({"stringValue": value["StringValue"], "dataType": value["DataType"],
                       "stringListValues": [], "binaryListValues": []}),
            )
        })
        .collect();
    json!({"Records": [{
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795359600000",
                       "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1795359600000"},
        "messageAttributes": attributes,
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1"
    }]})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lambda_takes_the_tasks_announced_on_sqs() {
    let endpoint = std::env::var("WEIR_TEST_S3_ENDPOINT").expect(
        "WEIR_TEST_S3_ENDPOINT is not set: run ./local/test, which starts moto (S3 and SQS) on loopback",
    );
    let queue_name = format!("weir-tasks-{}", uuid::Uuid::new_v4().simple());
    let queue_url = boto3(
        &endpoint,
        "print(sqs.create_queue(QueueName=sys.argv[2])['QueueUrl'])",
        &[&queue_name],
    )
    .trim()
    .to_string();

    // The control plane, announcing transform tasks on the queue.
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("datasets");
    let config: weir_control_plane::ControlPlaneConfig = serde_json::from_value(json!({
        "database_url": format!("sqlite://{}", dir.path().join("meta.db").display()),
        "storage": {"kind": "local_fs", "root_dir": storage},
        "auth": {"signing_key": "3b".repeat(32)},
        "flows": {"tick_millis": 100, "sqs_announcements": {
            "queues": {"transform": queue_url}, "endpoint": endpoint, "region": "us-east-1",
            "access_key_id": "test", "secret_access_key": "test"}},
    }))
    .unwrap();
    let control_plane = weir_control_plane::ControlPlane::start(config)
        .await
        .unwrap();
    let admin = control_plane
        .accounts
        .issue_token(&control_plane.admin, "test")
        .await
        .unwrap()
        .token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = weir_control_plane::rest::router(Arc::clone(&control_plane));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let client = reqwest::Client::new();
    for manifest in [ROOT, DERIVATIVE] {
        let response = client
            .post(format!("{url}/datasets"))
            .bearer_auth(&admin)
            .header("content-type", "application/yaml")
            .body(manifest)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    }
    let response = client
        .post(format!(
            "{url}/datasets/admin/copies/flows/transform/trigger"
        ))
        .bearer_auth(&admin)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);

    // The announcement arrives on the queue.
    let deadline = Instant::now() + Duration::from_secs(20);
    let message = loop {
        let received: Value = serde_json::from_str(&boto3(
            &endpoint,
            "print(json.dumps(sqs.receive_message(QueueUrl=sys.argv[2], MessageAttributeNames=['All'], WaitTimeSeconds=1)))",
            &[&queue_url],
        ))
        .unwrap();
        if let Some(message) = received["Messages"].get(0) {
            break message.clone();
        }
        assert!(Instant::now() < deadline, "no announcement on {queue_url}");
    };
    assert_eq!(message["Body"], "transform", "{message}");
    assert_eq!(
        message["MessageAttributes"]["kind"]["StringValue"],
        "transform"
    );

    // The binary as a Lambda: the SQS event, then an HTTP event.
    let http_event = json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/datasets/admin/copies/transform",
        "rawQueryString": "", "headers": {"authorization": format!("Bearer {admin}"),
            "host": "abc123.execute-api.us-east-1.amazonaws.com"},
        "requestContext": {"accountId": "123456789012", "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com", "domainPrefix": "abc123",
            "http": {"method": "GET", "path": "/datasets/admin/copies/transform",
                     "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "test"},
            "requestId": "r-2", "routeKey": "$default", "stage": "$default",
            "time": "21/Nov/2026:15:00:00 +0000", "timeEpoch": 1795359600000u64},
        "isBase64Encoded": false
    })
    .to_string();
    let events = vec![
        sqs_event(&message, "arn:aws:sqs:us-east-1:123456789012:tasks"),
        http_event,
    ];
    let mut runtime = LambdaRuntimeEmulator::start("weir-transform", events)
        .await
        .unwrap();
    let config_path = dir.path().join("transform.yml");
    std::fs::write(
        &config_path,
        serde_yaml::to_string(&json!({
            "storage": {"kind": "local_fs", "root_dir": storage},
            "control_plane": {"url": url},
            "tasks": {"token": admin, "executor": "lambda-transform-1", "lease_seconds": 30},
        }))
        .unwrap(),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_weir-transform"))
        .env("AWS_LAMBDA_RUNTIME_API", runtime.address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "weir-transform")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/weir-transform")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("WEIR_CONFIG_PATH", &config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let tasks = runtime
        .next_result(Duration::from_secs(60))
        .await
        .expect("the function answered the SQS event");
    let http = runtime
        .next_result(Duration::from_secs(30))
        .await
        .expect("the function answered the HTTP event");
    child.kill().await.unwrap();

    assert_eq!(tasks.kind, "response", "{}", tasks.body);
    let answer: Value = serde_json::from_str(&tasks.body).unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    // The run was taken and finished by the Lambda: nothing else executes transform tasks here.
    let runs: Value = client
        .get(format!("{url}/datasets/admin/copies/flows/runs"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(runs["runs"][0]["status"], "finished", "{runs}");
    assert_eq!(runs["runs"][0]["outcome"]["kind"], "success", "{runs}");

    assert_eq!(http.kind, "response", "{}", http.body);
    let response: Value = serde_json::from_str(&http.body).unwrap();
    assert_eq!(response["statusCode"], 200, "{response}");
}
