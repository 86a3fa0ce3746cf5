//! Hardening: a table source cached for one dataset is never served for another. Knowing a
//! private dataset's head hash must not let anyone read it through a public dataset's alias,
//! nor get a signed proof for that false pin.

mod common;

use common::*;
use serde_json::json;

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

    // A query function over the same storage that hides the secret from anonymous callers.
    let url = format!("{}/query", serve_hiding(&seed, secret_id).await);
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
