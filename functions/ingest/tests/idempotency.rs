//! Hardening: idempotency keys never drop an acknowledged push. An empty or malformed key is
//! 400; a key reused with a different request is 422 and stores nothing; keys of different
//! accounts do not collide; the same request again is answered with the first result.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use weir_dataset::DatasetStore;
use weir_function_runtime::{AccessDecision, AccessPolicy, ApiError, Caller, DatasetAction};
use weir_ingest::{IngestConfig, IngestContext};

use common::*;

/// `Bearer <name>` is account `<name>`; every account may write.
struct NamedAccounts;

#[async_trait]
impl AccessPolicy for NamedAccounts {
    async fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        Ok(
            match authorization.and_then(|value| value.strip_prefix("Bearer ")) {
                Some(name) => Caller {
                    account_id: Some(format!("id-{name}")),
                    account_name: Some(name.to_string()),
                    ..Caller::default()
                },
                None => Caller::anonymous(),
            },
        )
    }

    async fn decide(
        &self,
        _: &Caller,
        _: &str,
        _: DatasetAction,
    ) -> Result<AccessDecision, ApiError> {
        Ok(AccessDecision::Allowed)
    }
}

async fn serve(store: DatasetStore) -> String {
    let mut context = IngestContext::standalone(store, IngestConfig::default());
    context.access = Arc::new(NamedAccounts);
    let router = weir_ingest::router(Arc::new(context));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/alice/idem/ingest",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

fn record(city: &str) -> String {
    format!("{{\"event_time\": \"2024-01-01T00:00:00Z\", \"city\": \"{city}\", \"population\": 1}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_are_scoped_and_bound_to_their_request() {
    let dir = tempfile::tempdir().unwrap();
    let store = DatasetStore::local_fs(dir.path()).unwrap();
    let definition =
        weir_odf::manifest::parse_dataset_manifest(&root_manifest("idem", NDJSON_READ, APPEND))
            .unwrap();
    let (dataset, _) = store
        .create_dataset(&"alice".parse().unwrap(), definition, Utc::now())
        .await
        .unwrap();
    let url = serve(store.clone()).await;
    let client = reqwest::Client::new();
    let push = |token: &'static str, key: &'static str, body: String| {
        let request = client
            .post(&url)
            .bearer_auth(token)
            .header("content-type", "application/x-ndjson")
            .header("idempotency-key", key)
            .body(body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let json: serde_json::Value = response.json().await.unwrap();
            (status, json)
        }
    };
    let count = || {
        let store = store.clone();
        let dataset = dataset.clone();
        async move {
            let session = datafusion::prelude::SessionContext::new();
            let table = weir_dataset::table::dataset_table(&session, &store, &dataset, None)
                .await
                .unwrap();
            session.register_table("t", table).unwrap();
            let batches = session
                .sql("SELECT city FROM t ORDER BY \"offset\"")
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
            batches[0]
                .column(0)
                .as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .unwrap()
                .iter()
                .map(|city| city.unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };

    // Empty, blank and over-long keys are refused before anything is read.
    for key in ["", "   ", &*"k".repeat(300).leak()] {
        let (status, json) = push("a", key, record("X")).await;
        assert_eq!(status, 400, "{key:?}: {json}");
        assert!(
            json["message"]
                .as_str()
                .unwrap()
                .contains("Idempotency-Key"),
            "{json}"
        );
    }

    let (status, first) = push("a", "k1", record("A")).await;
    assert_eq!(status, 200, "{first}");
    // A retry of the same request: the first result, nothing stored twice.
    let (status, again) = push("a", "k1", record("A")).await;
    assert_eq!((status, &again), (200, &first));
    // The same key with another body: 422, and the new body is not silently dropped as done.
    let (status, json) = push("a", "k1", record("B")).await;
    assert_eq!(status, 422, "{json}");
    assert_eq!(json["error"], "unprocessable");
    assert!(json["message"].as_str().unwrap().contains("k1"), "{json}");
    // Another account's key of the same name is its own key.
    let (status, other) = push("b", "k1", record("C")).await;
    assert_eq!(status, 200, "{other}");
    assert_ne!(other["newHead"], first["newHead"]);
    let (status, again) = push("b", "k1", record("C")).await;
    assert_eq!((status, &again), (200, &other));
    assert_eq!(count().await, vec!["A", "C"]);
}
