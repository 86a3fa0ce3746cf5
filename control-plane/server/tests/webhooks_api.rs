//! Webhooks end to end over real HTTP: subscriptions (who may create them, which targets are
//! refused), deliveries to a real receiver on loopback that checks each RFC 9421 signature and
//! content digest itself, retries through the flow system, the subscription disabled after N
//! consecutive failures with its reason, and the delivery history.

mod common;

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{Node, assert_error, start, start_configured};
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const SCHEMA_MANIFEST: &str = "
kind: DatasetSnapshot
version: 1
content:
  name: rates
  kind: Root
  metadata:
    - kind: SetDataSchema
      schema:
        fields:
          - name: event_time
            type:
              kind: Timestamp
              unit: Millisecond
              timezone: UTC
          - name: rate
            type:
              kind: Float64
";

/// What the receiver saw: the verified payloads, or why a request failed verification.
#[derive(Default)]
struct Received {
    payloads: Vec<Value>,
    rejected: Vec<String>,
}

struct Receiver {
    url: String,
    received: Arc<Mutex<Received>>,
    answer: Arc<AtomicU16>,
    secret: Arc<Mutex<String>>,
}

/// Checks a delivery as a receiver would, from the request alone and the shared secret.
fn verify(url: &str, headers: &HeaderMap, body: &[u8], secret: &str) -> Result<Value, String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
            .ok_or(format!("no {name}"))
    };
    let digest = header("content-digest")?;
    let expected = format!("sha-256=:{}:", STANDARD.encode(Sha256::digest(body)));
    if digest != expected {
        return Err("content digest does not match the body".into());
    }
    let input = header("signature-input")?;
    let params = input.strip_prefix("sig1=").ok_or("no sig1 input")?;
    let components = params.split(';').next().unwrap_or_default();
    if components != r#"("@method" "@target-uri" "content-type" "content-digest" "webhook-id")"# {
        return Err(format!("unexpected components {components}"));
    }
    let created: i64 = params
        .split(';')
        .find_map(|part| part.strip_prefix("created="))
        .ok_or("no created")?
        .parse()
        .map_err(|_| "bad created")?;
    if (chrono::Utc::now().timestamp() - created).abs() > 300 {
        return Err("signature too old".into());
    }
    let base = format!(
        "\"@method\": POST\n\"@target-uri\": {url}\n\"content-type\": {}\n\"content-digest\": {digest}\n\"webhook-id\": {}\n\"@signature-params\": {params}",
        header("content-type")?,
        header("webhook-id")?,
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(base.as_bytes());
    let signature = header("signature")?;
    let given = signature
        .strip_prefix("sig1=:")
        .and_then(|rest| rest.strip_suffix(':'))
        .ok_or("bad signature header")?;
    mac.verify_slice(
        &STANDARD
            .decode(given)
            .map_err(|_| "signature is not base64")?,
    )
    .map_err(|_| "signature does not verify".to_string())?;
    serde_json::from_slice(body).map_err(|error| error.to_string())
}

async fn receiver() -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Received::default()));
    let answer = Arc::new(AtomicU16::new(200));
    let secret = Arc::new(Mutex::new(String::new()));
    let (r, a, s, u) = (
        received.clone(),
        answer.clone(),
        secret.clone(),
        url.clone(),
    );
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (r, a, s, u) = (r.clone(), a.clone(), s.clone(), u.clone());
            async move {
                let status = a.load(Ordering::SeqCst);
                if status == 200 {
                    let secret = s.lock().unwrap().clone();
                    match verify(&u, &headers, &body, &secret) {
                        Ok(payload) => r.lock().unwrap().payloads.push(payload),
                        Err(reason) => r.lock().unwrap().rejected.push(reason),
                    }
                }
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Receiver {
        url,
        received,
        answer,
        secret,
    }
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn subscribe(
    node: &Node,
    path: &str,
    token: &str,
    url: &str,
    events: Value,
) -> (StatusCode, Value) {
    node.send_json(
        Method::POST,
        path,
        Some(token),
        json!({"url": url, "events": events}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_deliveries_retries_and_disabling() {
    let node = start_configured(None, None, |config| {
        config.webhooks.allow_private_targets = true;
        config.webhooks.disable_after_failures = 3;
    })
    .await;
    let hook = receiver().await;
    // An account-wide subscription sees the dataset's creation, with its schema.
    let (status, created) = subscribe(
        &node,
        "/accounts/admin/webhooks",
        &node.admin,
        &hook.url,
        json!([
            "dataset.ref.updated",
            "dataset.schema.changed",
            "issue.opened",
            "comment.added"
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    *hook.secret.lock().unwrap() = secret;
    let id = created["id"].as_str().unwrap().to_string();
    // The secret is shown once.
    let (_, shown) = node
        .get(&format!("/webhooks/{id}"), Some(&node.admin))
        .await;
    assert!(shown.get("secret").is_none(), "{shown}");

    let (status, body) = node.create_dataset(&node.admin, SCHEMA_MANIFEST).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    wait_for("the creation's deliveries", || {
        hook.received.lock().unwrap().payloads.len() >= 2
    })
    .await;
    {
        let received = hook.received.lock().unwrap();
        assert!(received.rejected.is_empty(), "{:?}", received.rejected);
        let types: Vec<&str> = received
            .payloads
            .iter()
            .map(|p| p["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["dataset.ref.updated", "dataset.schema.changed"]);
        assert_eq!(received.payloads[0]["dataset"]["alias"], "admin/rates");
        assert!(received.payloads[0]["data"]["blockHash"].is_string());
    }
    // Issues and comments.
    let (status, _) = node
        .send_json(
            Method::POST,
            "/datasets/admin/rates/issues",
            Some(&node.admin),
            json!({"title": "Stale rates", "body": "Since Monday"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    wait_for("issue.opened", || {
        hook.received.lock().unwrap().payloads.len() >= 3
    })
    .await;
    assert_eq!(
        hook.received.lock().unwrap().payloads[2]["data"]["title"],
        "Stale rates"
    );

    // The receiver fails: the flow retries, and after 3 failures in a row the subscription is
    // disabled with its reason.
    hook.answer.store(500, Ordering::SeqCst);
    let comment = json!({"body": "Still stale"});
    node.send_json(
        Method::POST,
        "/datasets/admin/rates/issues/1/comments",
        Some(&node.admin),
        comment.clone(),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(40);
    let disabled = loop {
        let (_, subscription) = node
            .get(&format!("/webhooks/{id}"), Some(&node.admin))
            .await;
        if subscription["status"] == "disabled" {
            break subscription;
        }
        assert!(Instant::now() < deadline, "never disabled: {subscription}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let reason = disabled["disabledReason"].as_str().unwrap();
    assert!(
        reason.contains("3 consecutive") && reason.contains("500"),
        "{reason}"
    );
    let (_, history) = node
        .get(&format!("/webhooks/{id}/deliveries"), Some(&node.admin))
        .await;
    let newest = &history[0];
    assert_eq!(newest["eventType"], "comment.added", "{history}");
    assert_eq!(newest["status"], "skipped");
    assert_eq!(newest["attempts"], 3);
    assert_eq!(newest["lastStatus"], 500);
    assert_eq!(history.as_array().unwrap().len(), 4);

    // Enabled again, it delivers the next event (the skipped one stays in the history).
    hook.answer.store(200, Ordering::SeqCst);
    let (status, enabled) = node
        .call(
            Method::POST,
            &format!("/webhooks/{id}/enable"),
            Some(&node.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{enabled}");
    assert_eq!(enabled["consecutiveFailures"], 0);
    node.send_json(
        Method::POST,
        "/datasets/admin/rates/issues/1/comments",
        Some(&node.admin),
        json!({"body": "Fixed"}),
    )
    .await;
    wait_for("comment.added after enabling", || {
        hook.received.lock().unwrap().payloads.len() >= 4
    })
    .await;
    {
        let received = hook.received.lock().unwrap();
        assert_eq!(received.payloads[3]["type"], "comment.added");
        assert!(received.rejected.is_empty(), "{:?}", received.rejected);
    }
    // A subscriber who may no longer read the dataset hears nothing of it.
    let reader = node.user("watcher").await;
    node.send_json(
        Method::PUT,
        "/datasets/admin/rates/roles/watcher",
        Some(&node.admin),
        json!({"role": "maintainer"}),
    )
    .await;
    let watcher_hook = receiver().await;
    let (status, watching) = subscribe(
        &node,
        "/datasets/admin/rates/webhooks",
        &reader,
        &watcher_hook.url,
        json!(["comment.added"]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{watching}");
    *watcher_hook.secret.lock().unwrap() = watching["secret"].as_str().unwrap().to_string();
    node.send_json(
        Method::POST,
        "/datasets/admin/rates/issues/1/comments",
        Some(&node.admin),
        json!({"body": "One"}),
    )
    .await;
    wait_for("the watcher's delivery", || {
        watcher_hook.received.lock().unwrap().payloads.len() == 1
    })
    .await;
    node.call(
        Method::DELETE,
        "/datasets/admin/rates/roles/watcher",
        Some(&node.admin),
        None,
    )
    .await;
    node.send_json(
        Method::POST,
        "/datasets/admin/rates/issues/1/comments",
        Some(&node.admin),
        json!({"body": "Two"}),
    )
    .await;
    wait_for("the owner's delivery", || {
        hook.received.lock().unwrap().payloads.len() >= 6
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(watcher_hook.received.lock().unwrap().payloads.len(), 1);

    // GraphQL creates and shows subscriptions too.
    let query = format!(
        r#"mutation {{ createWebhook(account: "admin", name: "rates", url: "{}", events: ["thread.changed"]) }}"#,
        hook.url
    );
    let (_, created) = node
        .send_json(
            Method::POST,
            "/graphql",
            Some(&node.admin),
            json!({"query": query}),
        )
        .await;
    let created = &created["data"]["createWebhook"];
    assert!(
        created["secret"].as_str().unwrap().starts_with("whsec_"),
        "{created}"
    );
    let query = format!(
        r#"{{ webhook(id: "{}") }}"#,
        created["id"].as_str().unwrap()
    );
    let (_, shown) = node
        .send_json(
            Method::POST,
            "/graphql",
            Some(&node.admin),
            json!({"query": query}),
        )
        .await;
    assert_eq!(
        shown["data"]["webhook"]["events"],
        json!(["thread.changed"]),
        "{shown}"
    );
    assert!(shown["data"]["webhook"].get("secret").is_none());
}

#[tokio::test]
async fn who_may_subscribe_and_which_targets_are_refused() {
    let node = start(None).await;
    assert_eq!(
        node.create_dataset(&node.admin, SCHEMA_MANIFEST).await.0,
        StatusCode::CREATED
    );
    let reader = node.user("reader").await;
    let outsider = node.user("outsider").await;
    node.send_json(
        Method::PUT,
        "/datasets/admin/rates/roles/reader",
        Some(&node.admin),
        json!({"role": "reader"}),
    )
    .await;
    let events = json!(["dataset.ref.updated"]);
    let url = "https://hooks.example.com/weir";
    assert_error(
        &subscribe(
            &node,
            "/datasets/admin/rates/webhooks",
            &reader,
            url,
            events.clone(),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
        "maintainer",
    );
    assert_error(
        &subscribe(
            &node,
            "/datasets/admin/rates/webhooks",
            &outsider,
            url,
            events.clone(),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
        "admin/rates",
    );
    assert_error(
        &subscribe(
            &node,
            "/accounts/admin/webhooks",
            &outsider,
            url,
            events.clone(),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
        "admin",
    );
    // Targets: http(s) only, never loopback or private networks unless the operator allows them.
    for (target, needle) in [
        ("http://127.0.0.1:8080/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "private"),
        ("http://[::1]/hook", "private"),
        ("http://localhost/hook", "private"),
        ("ftp://example.com/x", "http and https"),
        ("file:///etc/passwd", "http and https"),
        ("https://user:pw@example.com/hook", "credentials"),
        ("not a url", "not a URL"),
    ] {
        assert_error(
            &subscribe(
                &node,
                "/datasets/admin/rates/webhooks",
                &node.admin,
                target,
                events.clone(),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "invalid_input",
            needle,
        );
    }
    for (body, needle) in [
        (json!({"url": url, "events": []}), "events"),
        (
            json!({"url": url, "events": ["dataset.deleted"]}),
            "events[0]",
        ),
        (json!({"url": url}), "events"),
        (
            json!({"url": url, "events": ["dataset.ref.updated"], "secret": "mine"}),
            "secret",
        ),
    ] {
        assert_error(
            &node
                .send_json(
                    Method::POST,
                    "/datasets/admin/rates/webhooks",
                    Some(&node.admin),
                    body,
                )
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_input",
            needle,
        );
    }
    // Someone else's subscription is not found.
    let (_, own) = node
        .send_json(
            Method::POST,
            "/accounts/outsider/webhooks",
            Some(&outsider),
            json!({"url": "http://127.0.0.2/x", "events": ["issue.opened"]}),
        )
        .await;
    assert_eq!(own["error"], "invalid_input", "{own}");
    assert_eq!(
        node.get("/webhooks/whk_nothere", Some(&outsider)).await.0,
        StatusCode::NOT_FOUND
    );
    // GraphQL: the same checks and shapes.
    let graphql = |token: String, query: &str| {
        let node = &node;
        let query = query.to_string();
        async move {
            node.send_json(
                Method::POST,
                "/graphql",
                Some(&token),
                json!({"query": query}),
            )
            .await
            .1
        }
    };
    let refused = graphql(
        reader.clone(),
        r#"mutation { createWebhook(account: "admin", name: "rates", url: "https://hooks.example.com/x", events: ["issue.opened"]) }"#,
    )
    .await;
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("maintainer"),
        "{refused}"
    );
    let private = graphql(
        node.admin.clone(),
        r#"mutation { createWebhook(account: "admin", name: "rates", url: "http://10.0.0.8/x", events: ["issue.opened"]) }"#,
    )
    .await;
    assert!(
        private["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("private"),
        "{private}"
    );
    let listed = graphql(
        node.admin.clone(),
        r#"{ webhooks(account: "admin", name: "rates") }"#,
    )
    .await;
    assert_eq!(listed["data"]["webhooks"], json!([]), "{listed}");
    assert_eq!(
        node.get("/webhooks/'; DROP", Some(&outsider)).await.0,
        StatusCode::NOT_FOUND
    );
}
