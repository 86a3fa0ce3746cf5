//! The real `weir up`, with transform tasks left to workers deployed apart.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

pub struct WeirNode {
    child: Child,
    pub url: String,
    pub token: String,
    pub data_dir: tempfile::TempDir,
    client: reqwest::Client,
}

impl Drop for WeirNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn example(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../docs/examples")
            .join(name),
    )
    .unwrap()
}

impl WeirNode {
    pub fn start() -> Self {
        Self::start_with(&|_| String::new())
    }

    /// With the control plane's bus on the test suite's NATS server under `prefix`, so that
    /// queued tasks are announced there.
    pub fn start_with_nats_bus(prefix: &str) -> Self {
        Self::start_with(&|dir: &Path| {
            // A `control_plane` section replaces the embedded one whole.
            format!(
                "control_plane:\n  database_url: \"sqlite://{dir}/metadata.db\"\n  \
                 storage: {{kind: local_fs, root_dir: \"{dir}/datasets\"}}\n  \
                 bus: {{kind: nats, url: \"nats://127.0.0.1:4222\", prefix: {prefix}}}\n",
                dir = dir.display()
            )
        })
    }

    fn start_with(extra_config: &dyn Fn(&Path) -> String) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let extra_config = extra_config(data_dir.path());
        let config = data_dir.path().join("weir.yaml");
        std::fs::write(
            &config,
            format!(
                "transform: {{in_process_executor: false}}\ndevices: {{mqtt: null}}\n{extra_config}"
            ),
        )
        .unwrap();
        let port = free_port();
        let mut child = Command::new(super::workspace_binary("weir"))
            .arg("up")
            .arg("--data-dir")
            .arg(data_dir.path())
            .arg("--config")
            .arg(&config)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--flightsql-listen", &format!("127.0.0.1:{}", free_port())])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("weir up prints a line").unwrap();
        assert!(first.starts_with("weir is up on http://"), "{first}");
        let _ = lines.next();
        let token = lines
            .next()
            .expect("the admin token")
            .unwrap()
            .trim()
            .to_string();
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            token,
            data_dir,
            client: reqwest::Client::new(),
        }
    }

    pub fn datasets_dir(&self) -> PathBuf {
        self.data_dir.path().join("datasets")
    }

    /// The config of a worker (the ConfigMap the pool's pods mount at /srv/transform).
    pub fn worker_config(&self) -> String {
        format!(
            "storage: {{kind: local_fs, root_dir: {}}}\ncontrol_plane: {{url: \"{}\"}}\n\
             tasks: {{url: \"{}\", poll_millis: 200, lease_seconds: 5}}\n",
            self.datasets_dir().display(),
            self.url,
            self.url
        )
    }

    pub async fn send(
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

    pub async fn get(&self, path: &str) -> Value {
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

    /// `admin/sensor.temp` with two readings.
    pub async fn create_root(&self) {
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                "/datasets",
                "application/yaml",
                example("sensor-temp.yaml"),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        self.push(
            "{\"ts\": \"2026-01-01T10:00:00Z\", \"sensor\": \"s1\", \"temp\": 20.0}\n\
             {\"ts\": \"2026-01-01T10:30:00Z\", \"sensor\": \"s1\", \"temp\": 22.0}",
        )
        .await;
    }

    pub async fn push(&self, ndjson: &str) {
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

    /// A derivative of `admin/sensor.temp` named `name` (its creation queues a transform task).
    pub async fn create_derivative(&self, name: &str) {
        let manifest =
            example("sensor-hourly.yaml").replace("name: sensor.hourly", &format!("name: {name}"));
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                "/datasets",
                "application/yaml",
                manifest,
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    pub async fn depth(&self) -> (u64, u64) {
        let depth = self.get("/tasks/depth?kinds=transform,reset").await;
        (
            depth["queued"].as_u64().unwrap(),
            depth["leased"].as_u64().unwrap(),
        )
    }

    /// The derivative's rows (sensor, avg_temp) by SQL; null before its first data.
    pub async fn rows(&self, name: &str) -> Value {
        let query = serde_json::json!({"query": format!("SELECT sensor, avg_temp FROM \"{name}\" ORDER BY event_time, sensor")});
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                "/query",
                "application/json",
                query.to_string(),
            )
            .await;
        if status == 400 && body.to_string().contains("no data schema yet") {
            return Value::Null; // not computed yet
        }
        assert_eq!(status, 200, "{body}");
        body["output"]["data"].clone()
    }

    /// The event types of a dataset's blocks, newest first.
    pub async fn block_events(&self, name: &str) -> Vec<String> {
        let blocks = self
            .get(&format!("/datasets/admin/{name}/blocks?limit=100"))
            .await;
        blocks
            .as_array()
            .unwrap()
            .iter()
            .map(|block| block["eventType"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}
