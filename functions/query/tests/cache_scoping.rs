//! Hardening: a table source cached for one dataset is never served for another. Knowing a
//! private dataset's head hash must not let anyone read it through a public dataset's alias,
//! nor get a signed proof for that false pin.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use common::*;
use serde_json::json;
use weir_function_runtime::{AccessDecision, AccessPolicy, ApiError, Caller, DatasetAction};

/// `Bearer owner` is alice; everyone else is anonymous and may not see `hidden`.
struct OneHiddenDataset {
    hidden: String,
}

#[async_trait]
impl AccessPolicy for OneHiddenDataset {
    async fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        Ok(match authorization {
            Some("Bearer owner") => Caller {
                account_id: Some("alice".to_string()),
                account_name: Some("alice".to_string()),
                ..Caller::default()
            },
            _ => Caller::anonymous(),
        })
    }

    async fn decide(
        &self,
        caller: &Caller,
        dataset_id: &str,
        _action: DatasetAction,
    ) -> Result<AccessDecision, ApiError> {
        if dataset_id == self.hidden && caller.account_id.is_none() {
            return Ok(AccessDecision::Hidden);
        }
        Ok(AccessDecision::Allowed)
    }
}

const SECRET: &str = "kind: DatasetSnapshot
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_head_hash_does_not_open_it_through_another_alias() {
    let seed = Harness::with_cities().await;
    seed.create("alice", SECRET).await;
    let secret_head = seed
        .push(
            "alice",
            "secret",
            r#"{"event_time": "2024-01-01T00:00:00Z", "password": "hunter2"}"#,
        )
        .await;
    let secret_id = seed
        .store
        .resolve_alias(&"alice".parse().unwrap(), &"secret".parse().unwrap())
        .await
        .unwrap()
        .unwrap();

    // A query function over the same storage with the access policy above.
    let config = weir_query::QueryConfig {
        default_account: "alice".to_string(),
        node_private_key: Some("11".repeat(32)),
        storage: weir_dataset::StorageConfig::LocalFs {
            root_dir: seed.storage_root().to_path_buf(),
        },
        ..Default::default()
    };
    let policy = Arc::new(OneHiddenDataset {
        hidden: secret_id.to_did_string(),
    });
    let context = weir_query::build_context_with_access(config, policy).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/query", listener.local_addr().unwrap());
    let router = weir_query::router(context);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let client = reqwest::Client::new();

    // The owner reads the secret: its source is now cached.
    let owner = client
        .post(&url)
        .bearer_auth("owner")
        .json(&json!({"query": "SELECT password FROM \"alice/secret\""}))
        .send()
        .await
        .unwrap();
    assert_eq!(owner.status(), 200);

    // Anonymous pins the public dataset to the secret's head.
    for include in [json!([]), json!(["Proof", "Schema"])] {
        let answer = client
            .post(&url)
            .json(&json!({
                "query": "SELECT * FROM \"alice/cities\"",
                "include": include,
                "datasets": [{"alias": "alice/cities", "blockHash": secret_head}]
            }))
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        let body = answer.text().await.unwrap();
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("not in the chain"), "{body}");
        assert!(
            !body.contains("password") && !body.contains("hunter2"),
            "{body}"
        );
    }
    // And the secret itself stays hidden.
    let answer = client
        .post(&url)
        .json(&json!({"query": "SELECT * FROM \"alice/secret\""}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
}
