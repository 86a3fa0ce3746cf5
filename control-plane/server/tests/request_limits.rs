//! Hardening: manifests are bounded (size, flow nesting) and parsed off the async workers; every
//! error answer is JSON in the `{"error","message"}` shape, whoever produced it.

mod common;

use common::*;
use reqwest::{Method, StatusCode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_manifests_are_refused_quickly() {
    let node = start(None).await;
    let create = |manifest: String| {
        let node = &node;
        async move { node.create_dataset(&node.admin, &manifest).await }
    };
    let deep_flow = format!("{}1{}", "{a: ".repeat(40_000), "}".repeat(40_000));
    let started = std::time::Instant::now();
    let answer = create(format!(
        "{MANIFEST}    - kind: SetInfo\n      keywords: {deep_flow}\n"
    ))
    .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "nest deeper than 32",
    );
    let deep_sequence = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let answer = create(deep_sequence).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_input", "line 1");
    let mut deep_block = String::new();
    for level in 0..300 {
        deep_block.push_str(&format!("{}a:\n", " ".repeat(level)));
    }
    let answer = create(deep_block).await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "manifest",
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "refusals took {:?}",
        started.elapsed()
    );
    let answer = create(format!("{MANIFEST}# {}\n", "x".repeat(300 << 10))).await;
    assert_error(
        &answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "length limit",
    );

    // Brackets in quoted scalars and comments do not count; ordinary manifests pass.
    let quoted = format!(
        "{MANIFEST}      keywords: ['{}', \"{}\"] # {}\n",
        "[".repeat(50),
        "{".repeat(50),
        "[".repeat(50)
    );
    let answer = create(quoted).await;
    assert_eq!(answer.0, StatusCode::CREATED, "{}", answer.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_answer_is_json() {
    let node = start(None).await;
    let cases = [
        (
            Method::GET,
            "/datasets?bogus=1".to_string(),
            StatusCode::BAD_REQUEST,
            "bogus",
        ),
        (
            Method::GET,
            "/datasets?limit=-x".to_string(),
            StatusCode::BAD_REQUEST,
            "limit",
        ),
        (
            Method::GET,
            "/no/such/route".to_string(),
            StatusCode::NOT_FOUND,
            "Not Found",
        ),
        (
            Method::DELETE,
            "/openapi.json".to_string(),
            StatusCode::METHOD_NOT_ALLOWED,
            "Method",
        ),
        (
            Method::GET,
            format!("/datasets?search={}", "a".repeat(20_000)),
            StatusCode::URI_TOO_LONG,
            "limit",
        ),
    ];
    for (method, path, status, needle) in cases {
        let response = node
            .client
            .request(method.clone(), format!("{}{path}", node.url))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            status,
            "{method} {}",
            &path[..path.len().min(60)]
        );
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{method} {path}"
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(body["error"].is_string(), "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(needle), "{method}: {message}");
    }
    let answer = node
        .call(
            Method::POST,
            "/graphql",
            None,
            Some((
                "application/json",
                format!("{{\"query\": \"{}\"}}", " ".repeat(3 << 20)),
            )),
        )
        .await;
    assert_eq!(answer.0, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(answer.1["message"].is_string(), "{}", answer.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_the_session_and_bad_headers_are_401() {
    let node = start(None).await;
    let session = node.user("carol").await;
    assert_eq!(
        node.get("/accounts/me", Some(&session)).await.0,
        StatusCode::OK
    );
    let answer = node
        .call(Method::POST, "/auth/logout", Some(&session), None)
        .await;
    assert_eq!(answer.0, StatusCode::NO_CONTENT, "{}", answer.1);
    assert_error(
        &node.get("/accounts/me", Some(&session)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "revoked",
    );
    // A header that is not ASCII is refused, not taken for anonymous.
    let response = node
        .client
        .get(format!("{}/datasets", node.url))
        .header(
            "authorization",
            reqwest::header::HeaderValue::from_bytes(b"Bearer \xff").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Account names: the error says what is allowed.
    let answer = node
        .send_json(
            Method::POST,
            "/accounts",
            Some(&node.admin),
            serde_json::json!({"name": "bad_name", "password": "password-1"}),
        )
        .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "`_` is not allowed",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_and_logout_refuse_bad_callers_and_parameters() {
    let node = start(None).await;
    node.create_dataset(&node.admin, MANIFEST).await;
    let bob = node.user("bob").await;
    assert_error(
        &node
            .call(Method::POST, "/admin/sweep", Some(&bob), None)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
        "administrator",
    );
    // Anonymous callers are refused like non-administrators, as on /admin/reindex.
    assert_error(
        &node.call(Method::POST, "/admin/sweep", None, None).await,
        StatusCode::FORBIDDEN,
        "forbidden",
        "administrator",
    );
    for bad in ["graceSeconds=-1", "graceSeconds=soon", "bogus=1"] {
        let answer = node
            .call(
                Method::POST,
                &format!("/admin/sweep?{bad}"),
                Some(&node.admin),
                None,
            )
            .await;
        assert_eq!(answer.0, StatusCode::BAD_REQUEST, "{bad}: {}", answer.1);
        assert_eq!(answer.1["error"], "invalid_input", "{bad}: {}", answer.1);
    }
    // The admin sweeps: nothing is unreferenced, nothing goes, the dataset still reads.
    let answer = node
        .call(
            Method::POST,
            "/admin/sweep?graceSeconds=0",
            Some(&node.admin),
            None,
        )
        .await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    assert_eq!(answer.1["deleted"], 0, "{}", answer.1);
    assert_eq!(answer.1["datasets"], 1, "{}", answer.1);
    assert_eq!(
        node.get("/datasets/admin/readings", Some(&node.admin))
            .await
            .0,
        StatusCode::OK
    );
    // Logging out needs a token; a garbage one is 401.
    assert_eq!(
        node.call(Method::POST, "/auth/logout", None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        node.call(Method::POST, "/auth/logout", Some("not-a-jwt"), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}
