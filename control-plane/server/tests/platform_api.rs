//! What functions deployed apart from the control plane ask it (`/auth/keys`,
//! `/access/decision`, `/commits`), and `ControlPlaneLink`, their client, against it over real
//! HTTP on loopback.

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{MANIFEST, Node, assert_error, start};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use weir_function_runtime::{
    AccessDecision, AccessPolicy, CommitNotifier, ControlPlaneLink, ControlPlaneLinkConfig,
    DatasetAction, ErrorKind,
};

async fn decision(node: &Node, token: Option<&str>, dataset_id: &str, action: &str) -> Value {
    let (status, body) = node
        .get(
            &format!("/access/decision?datasetId={dataset_id}&action={action}"),
            token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["decision"].clone()
}

async fn private_dataset(node: &Node, owner_token: &str) -> String {
    let (status, created) = node.create_dataset(owner_token, MANIFEST).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["visibility"], "private");
    created["id"].as_str().unwrap().to_string()
}

async fn grant(node: &Node, owner_token: &str, path: &str, account: &str, role: &str) {
    let (status, body) = node
        .send_json(
            reqwest::Method::PUT,
            &format!("/datasets/{path}/roles/{account}"),
            Some(owner_token),
            json!({ "role": role }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn commit_events(node: &Node) -> weir_events::EventStream {
    node.control_plane
        .bus
        .subscribe(None, "dataset.block-committed.>")
        .await
        .unwrap()
}

async fn expect_commit_event(events: &mut weir_events::EventStream, dataset_id: &str) {
    let event = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("a block-committed event")
        .unwrap()
        .unwrap();
    assert_eq!(event.envelope.event.dataset_id(), Some(dataset_id));
    event.ack().await.unwrap();
}

fn link_config(node: &Node, cache_seconds: u64) -> ControlPlaneLinkConfig {
    ControlPlaneLinkConfig {
        url: node.url.clone(),
        token_public_key: None,
        permission_cache_seconds: cache_seconds,
        request_timeout_millis: 2_000,
    }
}

#[tokio::test]
async fn access_decisions_and_commit_reports_follow_roles() {
    let node = start(None).await;
    let alice = node.user("alice").await;
    let bob = node.user("bob").await;
    let dataset_id = private_dataset(&node, &alice).await;

    let (status, keys) = node.get("/auth/keys", None).await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    assert_eq!(
        (&keys["keys"][0]["kty"], &keys["keys"][0]["crv"]),
        (&json!("OKP"), &json!("Ed25519"))
    );
    let published = URL_SAFE_NO_PAD
        .decode(keys["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    let signing = node.control_plane.accounts.signer().verifying_key();
    assert_eq!(published, signing.as_bytes());

    assert_eq!(
        decision(&node, Some(&alice), &dataset_id, "write").await,
        "allowed"
    );
    assert_eq!(
        decision(&node, Some(&bob), &dataset_id, "read").await,
        "hidden"
    );
    assert_eq!(decision(&node, None, &dataset_id, "read").await, "hidden");
    grant(&node, &alice, "alice/readings", "bob", "reader").await;
    assert_eq!(
        decision(&node, Some(&bob), &dataset_id, "read").await,
        "allowed"
    );
    assert_eq!(
        decision(&node, Some(&bob), &dataset_id, "write").await,
        "forbidden"
    );
    assert_eq!(
        decision(&node, Some(&alice), "did:odf:nonexistent", "read").await,
        "hidden"
    );

    let path = format!("/access/decision?datasetId={dataset_id}&action=delete");
    assert_error(
        &node.get(&path, Some(&alice)).await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "invalid action `delete`",
    );
    let missing = node.get("/access/decision?action=read", Some(&alice)).await;
    assert_eq!(missing.0, StatusCode::BAD_REQUEST, "{}", missing.1);
    let path = format!("/access/decision?datasetId={dataset_id}&action=read");
    assert_error(
        &node.get(&path, Some("not-a-token")).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "invalid token",
    );

    let report = json!({"datasetId": dataset_id, "blockHash": "f162", "sequenceNumber": 3});
    let anonymous = node
        .send_json(reqwest::Method::POST, "/commits", None, report.clone())
        .await;
    assert_error(&anonymous, StatusCode::NOT_FOUND, "not_found", "not found");
    let reader = node
        .send_json(
            reqwest::Method::POST,
            "/commits",
            Some(&bob),
            report.clone(),
        )
        .await;
    assert_error(&reader, StatusCode::FORBIDDEN, "forbidden", "editor");
    let malformed = node
        .send_json(
            reqwest::Method::POST,
            "/commits",
            Some(&alice),
            json!({"datasetId": dataset_id}),
        )
        .await;
    assert_error(
        &malformed,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "blockHash",
    );

    let mut events = commit_events(&node).await;
    let owner = node
        .send_json(reqwest::Method::POST, "/commits", Some(&alice), report)
        .await;
    assert_eq!(owner.0, StatusCode::ACCEPTED, "{}", owner.1);
    expect_commit_event(&mut events, &dataset_id).await;
}

#[tokio::test]
async fn control_plane_link_verifies_offline_and_caches_decisions_for_its_ttl() {
    let node = start(None).await;
    let alice = node.user("alice").await;
    let bob = node.user("bob").await;
    let dataset_id = private_dataset(&node, &alice).await;
    let link = ControlPlaneLink::connect(&link_config(&node, 1))
        .await
        .unwrap();

    let bob_caller = link
        .authenticate(Some(&format!("Bearer {bob}")))
        .await
        .unwrap();
    assert_eq!(bob_caller.account_name.as_deref(), Some("bob"));
    assert!(!bob_caller.is_admin);
    let anonymous = link.authenticate(None).await.unwrap();
    assert_eq!(anonymous.account_id, None);
    let read = |caller| {
        let link = &link;
        let dataset_id = dataset_id.clone();
        async move { link.decide(caller, &dataset_id, DatasetAction::Read).await }
    };
    assert_eq!(read(&bob_caller).await, Ok(AccessDecision::Hidden));
    assert_eq!(read(&anonymous).await, Ok(AccessDecision::Hidden));

    // The grant reaches the function once its cached decision expires, not before.
    grant(&node, &alice, "alice/readings", "bob", "reader").await;
    assert_eq!(read(&bob_caller).await, Ok(AccessDecision::Hidden));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(read(&bob_caller).await, Ok(AccessDecision::Allowed));

    // Resetting a dataset (maintain) needs more than editing it.
    let alice_caller = link
        .authenticate(Some(&format!("Bearer {alice}")))
        .await
        .unwrap();
    let may = |caller, action| {
        let link = &link;
        let dataset_id = dataset_id.clone();
        async move { link.decide(caller, &dataset_id, action).await }
    };
    assert_eq!(
        may(&bob_caller, DatasetAction::Maintain).await,
        Ok(AccessDecision::Forbidden)
    );
    assert_eq!(
        may(&alice_caller, DatasetAction::Maintain).await,
        Ok(AccessDecision::Allowed)
    );

    // A revoked personal access token still verifies offline, but the control plane refuses
    // it once the cached decision expires.
    let (status, created) = node
        .send_json(
            reqwest::Method::POST,
            "/accounts/me/tokens",
            Some(&bob),
            json!({"name": "etl"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let personal = link
        .authenticate(Some(&format!(
            "Bearer {}",
            created["token"].as_str().unwrap()
        )))
        .await
        .unwrap();
    assert_eq!(read(&personal).await, Ok(AccessDecision::Allowed));
    let revoke = node
        .call(
            reqwest::Method::DELETE,
            &format!("/accounts/me/tokens/{}", created["id"].as_str().unwrap()),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(revoke.0, StatusCode::NO_CONTENT);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let refused = read(&personal).await.unwrap_err();
    assert_eq!(refused.kind, ErrorKind::Unauthenticated);
    assert!(refused.message.contains("revoked"), "{}", refused.message);

    let mut forged = bob.clone();
    forged.replace_range(forged.len() - 4.., "AAAA");
    let error = link
        .authenticate(Some(&format!("Bearer {forged}")))
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Unauthenticated);
    let error = link.authenticate(Some("Basic eDp5")).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Unauthenticated);

    // A function configured with another key refuses every token of this control plane.
    let other_key: String = ed25519_dalek::SigningKey::from_bytes(&[9; 32])
        .verifying_key()
        .as_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let mut misconfigured = link_config(&node, 1);
    misconfigured.token_public_key = Some(other_key);
    let wrong = ControlPlaneLink::connect(&misconfigured).await.unwrap();
    let error = wrong
        .authenticate(Some(&format!("Bearer {bob}")))
        .await
        .unwrap_err();
    assert!(error.message.contains("signature"), "{}", error.message);

    // Commit reports reach the bus.
    let alice_caller = link
        .authenticate(Some(&format!("Bearer {alice}")))
        .await
        .unwrap();
    let mut events = commit_events(&node).await;
    link.block_committed(&alice_caller, &dataset_id, "f162", 1)
        .await;
    expect_commit_event(&mut events, &dataset_id).await;
}

#[tokio::test]
async fn bad_links_fail_at_cold_start_naming_the_problem() {
    let node = start(None).await;
    let mut bad_key = link_config(&node, 1);
    bad_key.token_public_key = Some("xyz".to_string());
    let error = ControlPlaneLink::connect(&bad_key).await.err().unwrap();
    assert!(error.contains("control_plane.token_public_key"), "{error}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut unreachable = link_config(&node, 1);
    unreachable.url = closed_url;
    let error = ControlPlaneLink::connect(&unreachable).await.err().unwrap();
    assert!(error.contains("control plane unreachable"), "{error}");
}
