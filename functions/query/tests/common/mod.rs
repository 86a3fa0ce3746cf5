//! Test harness: a store with datasets pushed through the ingest function, and the query
//! function served over real HTTP on loopback.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use weir_dataset::DatasetStore;
use weir_ingest::read::MediaFormat;
use weir_ingest::{IngestConfig, IngestContext, IngestRequest};
use weir_query::{QueryConfig, QueryContext};

pub struct Harness {
    pub store: DatasetStore,
    pub context: Arc<QueryContext>,
    pub address: SocketAddr,
    pub client: reqwest::Client,
    ingest: IngestContext,
    _dir: tempfile::TempDir,
}

pub const CITIES: &str = "kind: DatasetSnapshot
version: 1
content:
  name: cities
  kind: Root
  metadata:
    - kind: AddPushSource
      sourceName: default
      read:
        kind: NdJson
        schema:
          fields:
            - {name: event_time, type: Timestamp}
            - {name: city, type: String}
            - {name: population, type: Int64}
      merge:
        kind: Append
    - kind: SetInfo
      description: City populations
      keywords: [census]
    - kind: SetLicense
      shortName: CC0
      name: Public Domain Dedication
      websiteUrl: https://creativecommons.org/publicdomain/zero/1.0/
";

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut QueryConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = DatasetStore::local_fs(dir.path()).unwrap();
        let mut config = QueryConfig {
            default_account: "alice".to_string(),
            node_private_key: Some("11".repeat(32)),
            open_access: true,
            ..Default::default()
        };
        adjust(&mut config);
        config.storage = weir_dataset::StorageConfig::LocalFs {
            root_dir: dir.path().to_path_buf(),
        };
        let context = weir_query::build_context(config).await.unwrap();
        let router = weir_query::router(context.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        let ingest = IngestContext::standalone(store.clone(), IngestConfig::default());
        Self {
            store,
            context,
            address,
            client: reqwest::Client::new(),
            ingest,
            _dir: dir,
        }
    }

    pub async fn create(&self, account: &str, manifest: &str) {
        let definition = weir_odf::manifest::parse_dataset_manifest(manifest).unwrap();
        self.store
            .create_dataset(&account.parse().unwrap(), definition, Utc::now())
            .await
            .unwrap();
    }

    /// Pushes NDJSON records and returns the new head.
    pub async fn push(&self, account: &str, dataset: &str, ndjson: &str) -> String {
        let request = IngestRequest {
            caller: weir_function_runtime::Caller::anonymous(),
            account: account.to_string(),
            dataset: dataset.to_string(),
            source_name: None,
            format: MediaFormat::NdJson,
            event_time: None,
            idempotency_key: None,
        };
        let body = futures::stream::once({
            let bytes = Bytes::from(ndjson.to_string());
            async move { Ok(bytes) }
        });
        let response = self.ingest.ingest(request, body).await.unwrap();
        response.new_head.unwrap().to_string()
    }

    pub async fn with_cities() -> Self {
        let harness = Self::start().await;
        harness.create("alice", CITIES).await;
        harness
            .push(
                "alice",
                "cities",
                "{\"event_time\": \"2024-01-01T00:00:00Z\", \"city\": \"A\", \"population\": 10}\n{\"event_time\": \"2024-01-02T00:00:00Z\", \"city\": \"B\", \"population\": 20}",
            )
            .await;
        harness
            .push(
                "alice",
                "cities",
                "{\"event_time\": \"2024-01-03T00:00:00Z\", \"city\": \"C\", \"population\": 30}",
            )
            .await;
        harness
    }

    /// The local-FS root the datasets are kept under.
    pub fn storage_root(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let response = self
            .client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
        )
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
        )
    }
}

/// A dataset only its owner may read.
pub const SECRET: &str = "kind: DatasetSnapshot
version: 1
content:
  name: secret
  kind: Root
  metadata:
    - kind: AddPushSource
      sourceName: default
      read:
        kind: NdJson
        schema:
          fields:
            - {name: event_time, type: Timestamp}
            - {name: password, type: String}
      merge:
        kind: Append
";

/// `Bearer owner` is alice; everyone else is anonymous and may not see `hidden`.
pub struct OneHiddenDataset {
    pub hidden: String,
}

#[async_trait::async_trait]
impl weir_function_runtime::AccessPolicy for OneHiddenDataset {
    async fn authenticate(
        &self,
        authorization: Option<&str>,
    ) -> Result<weir_function_runtime::Caller, weir_function_runtime::ApiError> {
        Ok(match authorization {
            Some("Bearer owner") => weir_function_runtime::Caller {
                account_id: Some("alice".to_string()),
                account_name: Some("alice".to_string()),
                ..Default::default()
            },
            _ => weir_function_runtime::Caller::anonymous(),
        })
    }

    async fn decide(
        &self,
        caller: &weir_function_runtime::Caller,
        dataset_id: &str,
        _action: weir_function_runtime::DatasetAction,
    ) -> Result<weir_function_runtime::AccessDecision, weir_function_runtime::ApiError> {
        if dataset_id == self.hidden && caller.account_id.is_none() {
            return Ok(weir_function_runtime::AccessDecision::Hidden);
        }
        Ok(weir_function_runtime::AccessDecision::Allowed)
    }
}

/// A query function over `harness`'s storage that hides `hidden` from anonymous callers
/// (`Bearer owner` reads everything); returns its base URL.
pub async fn serve_hiding(harness: &Harness, hidden: weir_odf::DatasetId) -> String {
    let config = QueryConfig {
        default_account: "alice".to_string(),
        node_private_key: Some("11".repeat(32)),
        storage: weir_dataset::StorageConfig::LocalFs {
            root_dir: harness.storage_root().to_path_buf(),
        },
        ..Default::default()
    };
    let policy = Arc::new(OneHiddenDataset {
        hidden: hidden.to_did_string(),
    });
    let context = weir_query::build_context_with_access(config, policy).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = weir_query::router(context);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}
