//! `weir emulate` delivers SQS as Lambda's event source mapping does: messages from a real
//! SQS API (moto, `WEIR_TEST_S3_ENDPOINT` from ./local/test) reach the ingest function in Lambda
//! mode as `SqsEvent` batches; what it commits is deleted, and a message it reports in
//! `batchItemFailures` comes back until the queue's redrive policy dead-letters it.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn boto3(endpoint: &str, statement: &str, args: &[&str]) -> String {
    let script = format!(
        "import boto3,sys,json; sqs=boto3.client('sqs', endpoint_url=sys.argv[1], aws_access_key_id='testing', aws_secret_access_key='testing', region_name='us-east-1'); {statement}"
    );
    let output = std::process::Command::new("python3")
        .args(["-c", &script, endpoint])
        .args(args)
        .output()
        .expect("python3 with boto3 runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn sqs_messages_reach_the_lambda_ingest_and_poison_is_dead_lettered() {
    let endpoint = std::env::var("WEIR_TEST_S3_ENDPOINT")
        .expect("WEIR_TEST_S3_ENDPOINT names moto's endpoint: run ./local/test");
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let dead = boto3(
        &endpoint,
        "print(sqs.create_queue(QueueName=sys.argv[2])['QueueUrl'])",
        &[&format!("emu-dead-{suffix}")],
    );
    let dead_arn = boto3(
        &endpoint,
        "print(sqs.get_queue_attributes(QueueUrl=sys.argv[2], AttributeNames=['QueueArn'])['Attributes']['QueueArn'])",
        &[&dead],
    );
    let queue = boto3(
        &endpoint,
        "print(sqs.create_queue(QueueName=sys.argv[2], Attributes={'VisibilityTimeout': '1', 'RedrivePolicy': json.dumps({'deadLetterTargetArn': sys.argv[3], 'maxReceiveCount': '2'})})['QueueUrl'])",
        &[&format!("emu-ingest-{suffix}"), &dead_arn],
    );
    let data_dir = tempfile::tempdir().unwrap();
    let node = support::start_weir(
        "emulate",
        &[
            "--data-dir".as_ref(),
            data_dir.path().as_os_str(),
            "--sqs-endpoint".as_ref(),
            endpoint.as_ref(),
            "--ingest-queue".as_ref(),
            queue.as_ref(),
        ],
    );
    let client = reqwest::Client::new();
    let manifest = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/examples/sensor-temp.yaml"
    ))
    .unwrap();
    let created = client
        .post(format!("{}/datasets", node.url))
        .bearer_auth(&node.admin_token)
        .header("content-type", "application/yaml")
        .body(manifest)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    let send = "sqs.send_message(QueueUrl=sys.argv[2], MessageBody=sys.argv[3], MessageAttributes={'odf-dataset': {'DataType': 'String', 'StringValue': sys.argv[4]}})";
    for (body, dataset) in [
        (
            r#"{"ts": "2026-01-01T10:00:00Z", "sensor": "s1", "temp": 20.0}"#,
            "admin/sensor.temp",
        ),
        (
            r#"{"ts": "2026-01-01T10:05:00Z", "sensor": "s2", "temp": 21.0}"#,
            "admin/sensor.temp",
        ),
        (
            r#"{"ts": "2026-01-01T10:10:00Z", "sensor": "s3", "temp": 22.0}"#,
            "admin/no.such.dataset",
        ),
    ] {
        boto3(&endpoint, send, &[&queue, body, dataset]);
    }

    // The good messages are committed through the Lambda-mode ingest function.
    let query = json!({"query": "SELECT sensor FROM \"sensor.temp\" ORDER BY sensor"}).to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = client
            .post(format!("{}/query", node.url))
            .bearer_auth(&node.admin_token)
            .header("content-type", "application/json")
            .body(query.clone())
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        if status == 200 && body["output"]["data"] == json!([{"sensor": "s1"}, {"sensor": "s2"}]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the messages were never ingested: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The poison message was reported failed each time, and the redrive policy moved it.
    let receive_dead = "r=sqs.receive_message(QueueUrl=sys.argv[2], WaitTimeSeconds=1, MessageAttributeNames=['All']); print(json.dumps([m['Body'] for m in r.get('Messages', [])]))";
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let bodies: Vec<String> =
            serde_json::from_str(&boto3(&endpoint, receive_dead, &[&dead])).unwrap();
        if !bodies.is_empty() {
            assert_eq!(bodies.len(), 1, "{bodies:?}");
            assert!(bodies[0].contains("\"s3\""), "{bodies:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the poison message never reached the dead-letter queue"
        );
    }
    let left = boto3(
        &endpoint,
        "a=sqs.get_queue_attributes(QueueUrl=sys.argv[2], AttributeNames=['All'])['Attributes']; print(int(a['ApproximateNumberOfMessages'])+int(a['ApproximateNumberOfMessagesNotVisible']))",
        &[&queue],
    );
    assert_eq!(left, "0", "handled messages were deleted");
}
