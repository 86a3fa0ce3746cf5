//! The device registry's REST API over real HTTP (SQLite, in-process bus): who may manage
//! applications, endpoints and tokens (maintainers of the dataset), token resolution for
//! bridges, metering and quotas, and bad input answered 400 naming the problem.

mod common;

use common::{MANIFEST, Node, assert_error, start};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn post(node: &Node, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    node.send_json(Method::POST, path, token, body).await
}

#[tokio::test]
async fn maintainers_of_the_dataset_manage_its_applications() {
    let node = start(None).await;
    let bob = node.user("bob").await;
    let carol = node.user("carol").await;
    assert_eq!(
        node.create_dataset(&node.admin, MANIFEST).await.0,
        StatusCode::CREATED
    );
    let new_app = json!({"name": "lamps", "dataset": "admin/readings"});
    // Anonymous and outsiders cannot see the dataset; readers may see but not manage it.
    assert_error(
        &post(&node, "/devices/applications", None, new_app.clone()).await,
        StatusCode::NOT_FOUND,
        "not_found",
        "admin/readings",
    );
    assert_error(
        &post(&node, "/devices/applications", Some(&bob), new_app.clone()).await,
        StatusCode::NOT_FOUND,
        "not_found",
        "admin/readings",
    );
    let role = |role: &str| json!({"role": role});
    node.send_json(
        Method::PUT,
        "/datasets/admin/readings/roles/bob",
        Some(&node.admin),
        role("reader"),
    )
    .await;
    assert_error(
        &post(&node, "/devices/applications", Some(&bob), new_app.clone()).await,
        StatusCode::FORBIDDEN,
        "forbidden",
        "maintainer",
    );
    node.send_json(
        Method::PUT,
        "/datasets/admin/readings/roles/bob",
        Some(&node.admin),
        role("maintainer"),
    )
    .await;
    let (status, app) = post(&node, "/devices/applications", Some(&bob), new_app.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{app}");
    assert!(app["datasetId"].as_str().unwrap().starts_with("did:odf:"));
    assert_error(
        &post(&node, "/devices/applications", Some(&bob), new_app).await,
        StatusCode::CONFLICT,
        "conflict",
        "lamps",
    );
    // The owner sees it too; an outsider neither sees nor lists it.
    assert_eq!(
        node.get("/devices/applications/lamps", Some(&node.admin))
            .await
            .0,
        StatusCode::OK
    );
    assert_error(
        &node.get("/devices/applications/lamps", Some(&carol)).await,
        StatusCode::NOT_FOUND,
        "not_found",
        "lamps",
    );
    assert_eq!(
        node.get("/devices/applications", Some(&carol)).await.1,
        json!([])
    );
    let (status, endpoint) = post(
        &node,
        "/devices/applications/lamps/endpoints",
        Some(&carol),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{endpoint}");

    // Versions, endpoints with attributes, tokens.
    let (status, version) = post(
        &node,
        "/devices/applications/lamps/versions",
        Some(&bob),
        json!({"name": "lamps-v1", "eventTimePointer": "/ts"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{version}");
    let mut ids = Vec::new();
    for room in ["kitchen", "kitchen", "hall"] {
        let (status, endpoint) = post(
            &node,
            "/devices/applications/lamps/endpoints",
            Some(&bob),
            json!({"attributes": {"room": room}}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{endpoint}");
        ids.push(endpoint["id"].as_str().unwrap().to_string());
    }
    let (status, kitchen) = node
        .get(
            "/devices/applications/lamps/endpoints?attr.room=kitchen&limit=10",
            Some(&bob),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kitchen.as_array().unwrap().len(), 2);
    let (_, page) = node
        .get(
            &format!(
                "/devices/applications/lamps/endpoints?attr.room=kitchen&after={}",
                kitchen[0]["id"].as_str().unwrap()
            ),
            Some(&bob),
        )
        .await;
    assert_eq!(page.as_array().unwrap().len(), 1);
    let tokens = format!("/devices/applications/lamps/endpoints/{}/tokens", ids[0]);
    let (status, issued) = post(
        &node,
        &tokens,
        Some(&bob),
        json!({"token": "lamp-kitchen-000001"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    assert_eq!(issued["token"], "lamp-kitchen-000001");
    let (status, generated) = post(&node, &tokens, Some(&bob), json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(generated["token"].as_str().unwrap().len() >= 32);
    let (_, listed) = node.get(&tokens, Some(&bob)).await;
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(
        !listed.to_string().contains("lamp-kitchen-000001"),
        "values are never shown again: {listed}"
    );

    // Bridges (administrators) resolve tokens; nobody else may.
    let resolve = |token: &str, version: &str| json!({"version": version, "token": token});
    assert_error(
        &post(
            &node,
            "/devices/resolve",
            Some(&bob),
            resolve("lamp-kitchen-000001", "lamps-v1"),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
        "administrator",
    );
    let outcome = |answer: (StatusCode, Value)| answer.1["outcome"].as_str().unwrap().to_string();
    let admin = Some(node.admin.as_str());
    let ok = post(
        &node,
        "/devices/resolve",
        admin,
        resolve("lamp-kitchen-000001", "lamps-v1"),
    )
    .await;
    assert_eq!(ok.1["outcome"], "ok", "{}", ok.1);
    assert_eq!(ok.1["endpointId"], ids[0].as_str());
    assert_eq!(ok.1["dataset"], "admin/readings");
    assert_eq!(ok.1["eventTimePointer"], "/ts");
    assert_eq!(
        outcome(
            post(
                &node,
                "/devices/resolve",
                admin,
                resolve("lamp-kitchen-000001", "nope")
            )
            .await
        ),
        "unknown-version"
    );
    assert_eq!(
        outcome(
            post(
                &node,
                "/devices/resolve",
                admin,
                resolve("never-issued-000000", "lamps-v1")
            )
            .await
        ),
        "unknown-token"
    );
    let token_id = issued["id"].as_str().unwrap();
    let (status, revoked) = post(
        &node,
        &format!("{tokens}/{token_id}/revoke"),
        Some(&bob),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert!(revoked["revokedAt"].is_i64());
    assert_eq!(
        outcome(
            post(
                &node,
                "/devices/resolve",
                admin,
                resolve("lamp-kitchen-000001", "lamps-v1")
            )
            .await
        ),
        "revoked"
    );
    // A token of another application's endpoint does not fit this application's version.
    node.create_dataset(&node.admin, &MANIFEST.replace("readings", "other"))
        .await;
    post(
        &node,
        "/devices/applications",
        admin,
        json!({"name": "others", "dataset": "admin/other"}),
    )
    .await;
    let (_, foreign) = post(
        &node,
        "/devices/applications/others/endpoints",
        admin,
        json!({"token": {"token": "foreign-token-000001"}}),
    )
    .await;
    assert_eq!(foreign["token"]["token"], "foreign-token-000001");
    assert_eq!(
        outcome(
            post(
                &node,
                "/devices/resolve",
                admin,
                resolve("foreign-token-000001", "lamps-v1")
            )
            .await
        ),
        "other-application"
    );

    // Deleting an endpoint drops its tokens.
    let (status, _) = node
        .call(
            Method::DELETE,
            &format!("/devices/applications/lamps/endpoints/{}", ids[0]),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(node.get(&tokens, Some(&bob)).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_problem() {
    let node = start(None).await;
    node.create_dataset(&node.admin, MANIFEST).await;
    let admin = Some(node.admin.as_str());
    for (body, needle) in [
        (json!({"name": "a/b", "dataset": "admin/readings"}), "name"),
        (
            json!({"name": "ok", "dataset": "readings"}),
            "<owner>/<name>",
        ),
        (
            json!({"name": "ok", "dataset": "admin/readings", "colour": "red"}),
            "colour",
        ),
        (json!({"dataset": "admin/readings"}), "name"),
    ] {
        assert_error(
            &post(&node, "/devices/applications", admin, body).await,
            StatusCode::BAD_REQUEST,
            "invalid_input",
            needle,
        );
    }
    let (status, _) = node
        .call(
            Method::POST,
            "/devices/applications",
            admin,
            Some(("application/json", "{not json".to_string())),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    post(
        &node,
        "/devices/applications",
        admin,
        json!({"name": "lamps", "dataset": "admin/readings"}),
    )
    .await;
    assert_error(
        &post(
            &node,
            "/devices/applications/lamps/versions",
            admin,
            json!({"name": "v1", "eventTimePointer": "ts"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "JSON pointer",
    );
    let (_, endpoint) = post(
        &node,
        "/devices/applications/lamps/endpoints",
        admin,
        json!({}),
    )
    .await;
    let tokens = format!(
        "/devices/applications/lamps/endpoints/{}/tokens",
        endpoint["id"].as_str().unwrap()
    );
    for token in ["short", "has/slash-0123456789", "has+plus-0123456789"] {
        assert_error(
            &post(&node, &tokens, admin, json!({"token": token})).await,
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "token",
        );
    }
    assert_error(
        &node
            .get("/devices/applications/lamps/endpoints?colour=red", admin)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "colour",
    );
    assert_error(
        &node
            .send_json(
                Method::PUT,
                &format!(
                    "/devices/applications/lamps/endpoints/{}",
                    endpoint["id"].as_str().unwrap()
                ),
                admin,
                json!({"room": 5}),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "attributes",
    );
    assert_error(
        &node
            .get("/devices/usage?application=lamps&period=week", admin)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "period",
    );
    assert_error(
        &node
            .get("/devices/usage?application=lamps&from=10&to=5", admin)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "to",
    );
    assert_error(
        &node
            .send_json(
                Method::PUT,
                "/accounts/admin/device-quota",
                admin,
                json!({"period": "hour"}),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "maxSamples",
    );
    // What bridges send: bodies that do not fit are refused naming the field, and nothing is
    // recorded.
    for (path, body, needle) in [
        ("/devices/resolve", json!({"version": "v1"}), "token"),
        (
            "/devices/resolve",
            json!({"version": 1, "token": "x"}),
            "version",
        ),
        (
            "/devices/usage",
            json!({"usage": [{"at": "now", "accountId": "a"}]}),
            "usage[0].at",
        ),
        ("/devices/usage", json!({"seen": [{"at": 1}]}), "seen[0]"),
        ("/devices/usage", json!({"usage": [], "extra": 1}), "extra"),
    ] {
        assert_error(
            &post(&node, path, admin, body).await,
            StatusCode::BAD_REQUEST,
            "invalid_input",
            needle,
        );
    }
    let too_many: Vec<Value> = (0..10_001)
        .map(|_| json!({"endpointId": "ep_x", "at": 1}))
        .collect();
    assert_error(
        &post(&node, "/devices/usage", admin, json!({"seen": too_many})).await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "at most",
    );
    let (_, usage) = node.get("/devices/usage", admin).await;
    assert_eq!(usage, json!([]), "nothing was recorded");
}

#[tokio::test]
async fn usage_and_quotas_are_for_their_accounts_and_administrators() {
    let node = start(None).await;
    let bob = node.user("bob").await;
    node.create_dataset(&node.admin, MANIFEST).await;
    let admin = Some(node.admin.as_str());
    let (_, app) = post(
        &node,
        "/devices/applications",
        admin,
        json!({"name": "lamps", "dataset": "admin/readings"}),
    )
    .await;
    let (_, endpoint) = post(
        &node,
        "/devices/applications/lamps/endpoints",
        admin,
        json!({}),
    )
    .await;
    let now = chrono::Utc::now().timestamp_millis();
    let delta = json!({
        "at": now, "accountId": app["accountId"], "datasetId": app["datasetId"],
        "applicationId": app["id"], "endpointId": endpoint["id"],
        "messages": 2, "samples": 5, "bytes": 100, "rejections": 1,
    });
    // Only bridges (administrators) report usage.
    assert_error(
        &post(
            &node,
            "/devices/usage",
            Some(&bob),
            json!({"usage": [delta]}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
        "administrator",
    );
    let (status, body) = node
        .send_json(
            Method::PUT,
            "/accounts/admin/device-quota",
            admin,
            json!({"period": "day", "maxSamples": 7}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, quotas) = post(
        &node,
        "/devices/usage",
        admin,
        json!({"usage": [delta], "seen": [{"endpointId": endpoint["id"], "at": now}]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{quotas}");
    assert_eq!(quotas[0]["used"]["samples"], 5, "{quotas}");
    assert_eq!(quotas[0]["quota"]["maxSamples"], 7);
    post(&node, "/devices/usage", admin, json!({"usage": [delta]})).await;
    let (_, usage) = node
        .get("/devices/usage?application=lamps&period=day", admin)
        .await;
    assert_eq!(usage[0]["samples"], 10, "{usage}");
    assert_eq!(usage[0]["rejections"], 2, "{usage}");
    let (_, by_account) = node.get("/devices/usage?account=admin", admin).await;
    assert_eq!(by_account[0]["messages"], 4, "{by_account}");
    let (_, seen) = node
        .get(
            &format!(
                "/devices/applications/lamps/endpoints/{}",
                endpoint["id"].as_str().unwrap()
            ),
            admin,
        )
        .await;
    assert_eq!(seen["lastSeenAt"], now);
    // Others see neither the account's usage nor its quota, nor the node's.
    assert_error(
        &node.get("/devices/usage?account=admin", Some(&bob)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
        "admin",
    );
    assert_error(
        &node.get("/devices/usage", Some(&bob)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
        "administrator",
    );
    assert_eq!(
        node.get("/devices/usage?application=lamps", Some(&bob))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_error(
        &node.get("/accounts/admin/device-quota", Some(&bob)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
        "admin",
    );
    assert_error(
        &node
            .send_json(
                Method::PUT,
                "/accounts/bob/device-quota",
                Some(&bob),
                json!({"period": "day", "maxSamples": 1000000}),
            )
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
        "administrator",
    );
    let (status, own) = node.get("/accounts/bob/device-quota", Some(&bob)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(own, Value::Null);
    let (_, quota) = node.get("/accounts/admin/device-quota", admin).await;
    assert_eq!(quota["used"]["samples"], 10, "{quota}");
}

async fn graphql(node: &Node, token: &str, query: &str) -> Value {
    let (status, body) = post(node, "/graphql", Some(token), json!({"query": query})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn graphql_manages_the_registry_with_the_same_permissions() {
    let node = start(None).await;
    let carol = node.user("carol").await;
    node.create_dataset(&node.admin, MANIFEST).await;
    let created = graphql(
        &node,
        &node.admin,
        r#"mutation { createDeviceApplication(name: "lamps", dataset: "admin/readings") }"#,
    )
    .await;
    assert_eq!(
        created["data"]["createDeviceApplication"]["name"], "lamps",
        "{created}"
    );
    graphql(
        &node,
        &node.admin,
        r#"mutation { createDeviceVersion(application: "lamps", name: "lamps-v1", eventTimePointer: "/ts") }"#,
    )
    .await;
    let endpoint = graphql(
        &node,
        &node.admin,
        r#"mutation { createDeviceEndpoint(application: "lamps", attributes: {room: "hall"}) }"#,
    )
    .await;
    let id = endpoint["data"]["createDeviceEndpoint"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let issued = graphql(
        &node,
        &node.admin,
        &format!(
            r#"mutation {{ issueDeviceToken(application: "lamps", endpoint: "{id}", token: "graphql-token-000001") }}"#
        ),
    )
    .await;
    let token_id = issued["data"]["issueDeviceToken"]["id"].as_str().unwrap();
    let revoked = graphql(
        &node,
        &node.admin,
        &format!(
            r#"mutation {{ revokeDeviceToken(application: "lamps", endpoint: "{id}", tokenId: "{token_id}") }}"#
        ),
    )
    .await;
    assert!(
        revoked["data"]["revokeDeviceToken"]["revokedAt"].is_i64(),
        "{revoked}"
    );
    let read = graphql(
        &node,
        &node.admin,
        r#"{ deviceApplication(name: "lamps") deviceEndpoints(application: "lamps", attributes: {room: "hall"}) }"#,
    )
    .await;
    assert_eq!(
        read["data"]["deviceApplication"]["versions"][0]["name"], "lamps-v1",
        "{read}"
    );
    assert_eq!(
        read["data"]["deviceEndpoints"][0]["id"],
        id.as_str(),
        "{read}"
    );
    // An outsider sees nothing, and may change nothing.
    let (_, hidden) = post(
        &node,
        "/graphql",
        Some(&carol),
        json!({"query": r#"{ deviceApplication(name: "lamps") }"#}),
    )
    .await;
    assert!(hidden.to_string().contains("not found"), "{hidden}");
    let (_, refused) = post(
        &node,
        "/graphql",
        Some(&carol),
        json!({"query": format!(r#"mutation {{ deleteDeviceEndpoint(application: "lamps", endpoint: "{id}") }}"#)}),
    )
    .await;
    assert!(refused.to_string().contains("not found"), "{refused}");
    let listed = graphql(&node, &carol, "{ deviceApplications }").await;
    assert_eq!(listed["data"]["deviceApplications"], json!([]));
}
