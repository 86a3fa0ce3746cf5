//! Test harness: an ingest function served over real HTTP on loopback, over a fresh store.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use arrow::array::RecordBatch;
use chrono::Utc;
use datafusion::prelude::SessionContext;
use weir_dataset::{Dataset, DatasetStore};
use weir_ingest::{IngestConfig, IngestContext};
use weir_odf::AccountName;

pub struct Harness {
    pub store: DatasetStore,
    pub context: Arc<IngestContext>,
    pub address: SocketAddr,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut IngestConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = DatasetStore::local_fs(dir.path()).unwrap();
        let mut config = IngestConfig::default();
        adjust(&mut config);
        let context = Arc::new(IngestContext::standalone(store.clone(), config));
        let router = weir_ingest::router(context.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            store,
            context,
            address,
            client: reqwest::Client::new(),
            _dir: dir,
        }
    }

    /// The local directory the datasets are kept under.
    pub fn storage_root(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub async fn create(&self, manifest: &str) -> Dataset {
        let definition = weir_odf::manifest::parse_dataset_manifest(manifest).unwrap();
        let account: AccountName = "alice".parse().unwrap();
        let (dataset, _) = self
            .store
            .create_dataset(&account, definition, Utc::now())
            .await
            .unwrap();
        dataset
    }

    pub async fn push(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, serde_json::Value) {
        self.push_with(path, &[("content-type", content_type)], body)
            .await
    }

    pub async fn push_with(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> (u16, serde_json::Value) {
        let mut request = self
            .client
            .post(format!("http://{}{}", self.address, path))
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let json =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("response is not JSON: {text}"));
        (status, json)
    }

    pub async fn query(&self, dataset: &Dataset, sql: &str) -> Vec<RecordBatch> {
        let session = SessionContext::new();
        let table = weir_dataset::table::dataset_table(&session, &self.store, dataset, None)
            .await
            .unwrap();
        session.register_table("t", table).unwrap();
        session.sql(sql).await.unwrap().collect().await.unwrap()
    }

    /// Rows of a query rendered as text lines, for compact assertions.
    pub async fn rows(&self, dataset: &Dataset, sql: &str) -> Vec<String> {
        let batches = self.query(dataset, sql).await;
        let text = arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        text.lines()
            .filter(|line| line.starts_with('|'))
            .skip(1)
            .map(|line| {
                line.trim_matches('|')
                    .split('|')
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    }
}

pub fn root_manifest(name: &str, read: &str, merge: &str) -> String {
    format!(
        "kind: DatasetSnapshot
version: 1
content:
  name: {name}
  kind: Root
  metadata:
    - kind: AddPushSource
      sourceName: default
      read:
{read}
      merge:
{merge}
"
    )
}

pub const NDJSON_READ: &str = "        kind: NdJson
        schema:
          fields:
            - name: event_time
              type: Timestamp
            - name: city
              type: String
            - name: population
              type: Int64";

pub const APPEND: &str = "        kind: Append";

/// The real `weir-ingest` binary as a Lambda: the Runtime API at `api` (the emulator), its
/// config at `config`.
pub fn lambda_binary(api: SocketAddr, config: &std::path::Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_weir-ingest"));
    command
        .env("AWS_LAMBDA_RUNTIME_API", api.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "weir-ingest")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/weir-ingest")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("WEIR_CONFIG_PATH", config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true);
    command
}
