//! End to end under the real `weir up`: flows that run by themselves.
//! - A derivative's default flow recovers by itself after its input is reset or compacted (a
//!   breaking change): the step finds the input's history rewritten, resets the derivative, and
//!   computes it again from what the input holds now.
//! - Polling sources ingest on their flow's schedule or trigger: a URL on loopback (only what
//!   changed, 304 adds nothing) and files dropped into the node's inbox; sources the node must
//!   not read are refused at creation.

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

    /// Runs of the derivative's flow that reset it.
    async fn resets(&self) -> usize {
        let runs = self
            .get("/datasets/admin/sensor.hourly/flows/runs?limit=100")
            .await;
        runs["runs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|run| !run["outcome"]["details"]["reset"].is_null())
            .count()
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
                "sensor.hourly never became {expected} (it is {}): {status}",
                self.hourly().await
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

    // Compaction of the input is a breaking change too: small pushes merged into one slice,
    // the derivative resets and computes the same rows again.
    api.push(r#"{"ts": "2026-01-01T12:20:00Z", "sensor": "s9", "temp": 32.0}"#)
        .await;
    api.push(r#"{"ts": "2026-01-01T12:40:00Z", "sensor": "s9", "temp": 34.0}"#)
        .await;
    // The derivative's changelog goes +A 30, then -C/+C to 32 (through 31 when the two pushes
    // are computed in two steps): wait until its newest record says 32.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let query = json!({"query": "SELECT avg_temp FROM \"sensor.hourly\" ORDER BY \"offset\" DESC LIMIT 1"});
        let (_, body) = api
            .send(
                reqwest::Method::POST,
                "/query",
                "application/json",
                query.to_string(),
            )
            .await;
        let status = api.get("/datasets/admin/sensor.hourly/transform").await;
        if body["output"]["data"] == json!([{"avg_temp": 32.0}]) && status["upToDate"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "{body} {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resets_before = api.resets().await;
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/datasets/admin/sensor.temp/flows/compaction/trigger",
            "application/json",
            "{}".to_string(),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let runs = api
            .get("/datasets/admin/sensor.temp/flows/runs?limit=10")
            .await;
        let compacted = &runs["runs"][0];
        if compacted["outcome"]["kind"] == "success" {
            assert_eq!(compacted["flowType"], "compaction", "{runs}");
            assert_eq!(compacted["outcome"]["details"]["slicesAfter"], 1, "{runs}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "compaction never finished: {runs}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while api.resets().await == resets_before {
        assert!(Instant::now() < deadline, "sensor.hourly never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Computed again from the compacted input: one row, no changelog of the past pushes.
    api.wait_for_hourly(json!([{"sensor": "s9", "avg_temp": 32.0}]))
        .await;
}

/// A CSV served on loopback with an ETag, as a source that changes now and then.
struct CsvSource {
    body: std::sync::Mutex<(String, String)>,
    requests: std::sync::atomic::AtomicUsize,
}

async fn serve_csv(
    axum::extract::State(source): axum::extract::State<std::sync::Arc<CsvSource>>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    source
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let (etag, body) = source.body.lock().unwrap().clone();
    if headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return axum::http::StatusCode::NOT_MODIFIED.into_response();
    }
    ([("etag", etag)], body).into_response()
}

fn polling_dataset(name: &str, fetch: &str) -> String {
    format!(
        "kind: DatasetSnapshot
version: 1
content:
  name: {name}
  kind: Root
  metadata:
    - kind: SetPollingSource
      fetch:
{fetch}
      read:
        kind: Csv
        header: true
        schema:
          fields:
            - name: city
              type: String
            - name: population
              type: Int64
      merge:
        kind: Ledger
        primaryKey: [city]
"
    )
}

impl Api {
    async fn cities(&self, dataset: &str) -> Value {
        let query = json!({"query": format!("SELECT city FROM \"{dataset}\" ORDER BY city")});
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                "/query",
                "application/json",
                query.to_string(),
            )
            .await;
        if status != 200 {
            return Value::Null;
        }
        body["output"]["data"].clone()
    }

    async fn block_count(&self, dataset: &str) -> usize {
        let blocks = self
            .get(&format!("/datasets/admin/{dataset}/blocks?limit=100"))
            .await;
        blocks.as_array().map_or(0, Vec::len)
    }

    async fn wait_for_cities(&self, dataset: &str, expected: Value) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.cities(dataset).await != expected {
            assert!(
                Instant::now() < deadline,
                "{dataset} never held {expected}: {}",
                self.get(&format!("/datasets/admin/{dataset}/flows/runs"))
                    .await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test]
async fn polling_sources_ingest_by_themselves() {
    let source = std::sync::Arc::new(CsvSource {
        body: std::sync::Mutex::new((
            "\"v1\"".to_string(),
            "city,population\nA,1\nB,2\n".to_string(),
        )),
        requests: std::sync::atomic::AtomicUsize::new(0),
    });
    let router = axum::Router::new()
        .route("/cities.csv", axum::routing::get(serve_csv))
        .with_state(source.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let data_dir = tempfile::tempdir().unwrap();
    let node = start_weir_up(&["--data-dir".as_ref(), data_dir.path().as_os_str()]);
    let api = Api {
        client: reqwest::Client::new(),
        url: node.url.clone(),
        token: node.admin_token.clone(),
    };
    let create = |manifest: String| {
        api.send(
            reqwest::Method::POST,
            "/datasets",
            "application/yaml",
            manifest,
        )
    };

    // Sources the node must not read are refused at creation, naming the field.
    let (status, body) = create(polling_dataset(
        "passwd",
        "        kind: Url\n        url: file:///etc/passwd",
    ))
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("fetch.url"),
        "{body}"
    );
    let (status, body) = create(polling_dataset(
        "etc",
        "        kind: FilesGlob\n        path: /etc/*.conf",
    ))
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("fetch.path"),
        "{body}"
    );

    // A URL on a schedule: ingested, then only what changed.
    let fetch = format!("        kind: Url\n        url: http://{address}/cities.csv");
    let (status, body) = create(polling_dataset("cities", &fetch)).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = api
        .send(
            reqwest::Method::PUT,
            "/datasets/admin/cities/flows/ingest",
            "application/json",
            json!({"trigger": {"kind": "schedule", "every": "1s"}}).to_string(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    api.wait_for_cities("cities", json!([{"city": "A"}, {"city": "B"}]))
        .await;
    *source.body.lock().unwrap() = (
        "\"v2\"".to_string(),
        "city,population\nA,1\nB,2\nC,3\n".to_string(),
    );
    api.wait_for_cities(
        "cities",
        json!([{"city": "A"}, {"city": "B"}, {"city": "C"}]),
    )
    .await;
    // Later polls find nothing new (304) and commit nothing.
    let before = api.block_count("cities").await;
    let requests = source.requests.load(std::sync::atomic::Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(20);
    while source.requests.load(std::sync::atomic::Ordering::SeqCst) < requests + 2 {
        assert!(Instant::now() < deadline, "the schedule stopped polling");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        api.block_count("cities").await,
        before,
        "an unchanged source added blocks"
    );
    let runs = api.get("/datasets/admin/cities/flows/runs?limit=100").await;
    let up_to_date = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|run| run["outcome"]["details"]["upToDate"] == true);
    assert!(up_to_date, "{runs}");

    // Files dropped into the node's inbox, polled on a manual trigger.
    let inbox = data_dir.path().join("inbox");
    std::fs::write(inbox.join("towns-1.csv"), "city,population\nX,7\n").unwrap();
    std::fs::write(inbox.join("towns-2.csv"), "city,population\nY,8\n").unwrap();
    let fetch = format!(
        "        kind: FilesGlob\n        path: {}/towns-*.csv",
        inbox.canonicalize().unwrap().display()
    );
    let (status, body) = create(polling_dataset("towns", &fetch)).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/datasets/admin/towns/flows/ingest/trigger",
            "application/json",
            "{}".to_string(),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    api.wait_for_cities("towns", json!([{"city": "X"}, {"city": "Y"}]))
        .await;
}
