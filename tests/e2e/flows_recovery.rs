//! End to end under the real `weir up`: a derivative's default flow recovers by itself after its
//! input is reset (a breaking change): the step finds the input's history rewritten, resets the
//! derivative, and computes it again from what the input holds now.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::start_weir_up;

struct Api {
    client: reqwest::Client,
    url: String,
    token: String,
}

impl Api {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: String,
    ) -> (u16, Value) {
        let response = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self
            .send(
                reqwest::Method::GET,
                path,
                "application/json",
                String::new(),
            )
            .await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    async fn push(&self, ndjson: &str) {
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                "/admin/sensor.temp/ingest",
                "application/x-ndjson",
                ndjson.to_string(),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    async fn hourly(&self) -> Value {
        let query = json!({"query": "SELECT sensor, avg_temp FROM \"sensor.hourly\" ORDER BY event_time, sensor"});
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                "/query",
                "application/json",
                query.to_string(),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["output"]["data"].clone()
    }

    /// Waits until the derivative's rows are `expected` and its flow is idle and up to date.
    async fn wait_for_hourly(&self, expected: Value) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.get("/datasets/admin/sensor.hourly/transform").await;
            if status["upToDate"] == true && self.hourly().await == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "sensor.hourly never became {expected}: {status}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn example(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../docs/examples")
            .join(name),
    )
    .unwrap()
}

#[tokio::test]
async fn a_derivative_recovers_by_itself_after_its_input_is_reset() {
    let data_dir = tempfile::tempdir().unwrap();
    let node = start_weir_up(&["--data-dir".as_ref(), data_dir.path().as_os_str()]);
    let api = Api {
        client: reqwest::Client::new(),
        url: node.url.clone(),
        token: node.admin_token.clone(),
    };
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/datasets",
            "application/yaml",
            example("sensor-temp.yaml"),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    api.push(
        r#"{"ts": "2026-01-01T10:00:00Z", "sensor": "s1", "temp": 20.0}
{"ts": "2026-01-01T10:30:00Z", "sensor": "s1", "temp": 22.0}"#,
    )
    .await;
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/datasets",
            "application/yaml",
            example("sensor-hourly.yaml"),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    api.wait_for_hourly(json!([{"sensor": "s1", "avg_temp": 21.0}]))
        .await;

    // The input goes back to before its data, then gets other data.
    let blocks = api.get("/datasets/admin/sensor.temp/blocks?limit=50").await;
    let first_data = blocks
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|block| block["eventType"] == "AddData")
        .expect("an AddData block");
    let before_data = first_data["prevBlockHash"].as_str().unwrap();
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/datasets/admin/sensor.temp/reset",
            "application/json",
            json!({"toBlock": before_data}).to_string(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    api.push(r#"{"ts": "2026-01-01T12:00:00Z", "sensor": "s9", "temp": 30.0}"#)
        .await;

    // The default flow recovers: the old hour is gone, the new one computed.
    api.wait_for_hourly(json!([{"sensor": "s9", "avg_temp": 30.0}]))
        .await;
    let runs = api
        .get("/datasets/admin/sensor.hourly/flows/runs?limit=100")
        .await;
    let recovered = runs["runs"].as_array().unwrap().iter().any(|run| {
        run["outcome"]["kind"] == "success" && !run["outcome"]["details"]["reset"].is_null()
    });
    assert!(recovered, "no run reset the derivative: {runs}");
    let (status, verified) = api
        .send(
            reqwest::Method::POST,
            "/datasets/admin/sensor.hourly/verify",
            "application/json",
            "{}".to_string(),
        )
        .await;
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["firstMismatch"], Value::Null, "{verified}");
}
