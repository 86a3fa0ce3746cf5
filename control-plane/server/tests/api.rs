//! The control plane's REST and GraphQL APIs over real HTTP on loopback, with SQLite, local-FS
//! storage and the in-process bus: permissions, tokens, bad inputs, reindex after a lost database.

mod common;

use common::{MANIFEST, assert_error, start};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn private_datasets_are_hidden_and_roles_grant_access() {
    let node = start(None).await;
    let bob = node.user("bob").await;
    let (status, created) = node.create_dataset(&node.admin, MANIFEST).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["visibility"], "private");

    let path = "/datasets/admin/readings";
    assert_error(
        &node.get(path, None).await,
        StatusCode::NOT_FOUND,
        "not_found",
        "admin/readings",
    );
    assert_error(
        &node.get(path, Some(&bob)).await,
        StatusCode::NOT_FOUND,
        "not_found",
        "admin/readings",
    );
    assert_eq!(node.get("/datasets", Some(&bob)).await.1, json!([]));
    assert_eq!(
        node.get(&format!("{path}/blocks"), None).await.0,
        StatusCode::NOT_FOUND
    );

    let grant = node
        .send_json(
            reqwest::Method::PUT,
            &format!("{path}/roles/bob"),
            Some(&node.admin),
            json!({"role": "reader"}),
        )
        .await;
    assert_eq!(grant.0, StatusCode::OK, "{}", grant.1);
    let (status, seen) = node.get(path, Some(&bob)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["yourRole"], "reader");
    assert_error(
        &node
            .send_json(
                reqwest::Method::POST,
                &format!("{path}/rename"),
                Some(&bob),
                json!({"newName": "x"}),
            )
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
        "maintainer",
    );
    assert_eq!(
        node.call(reqwest::Method::DELETE, path, Some(&bob), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    let public = node
        .send_json(
            reqwest::Method::PUT,
            &format!("{path}/visibility"),
            Some(&node.admin),
            json!({"visibility": "public"}),
        )
        .await;
    assert_eq!(public.0, StatusCode::OK, "{}", public.1);
    let (status, seen) = node.get(path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["yourRole"], "reader");
    let (_, blocks) = node.get(&format!("{path}/blocks?limit=2"), None).await;
    assert_eq!(blocks.as_array().unwrap().len(), 2);
    assert_eq!(blocks[0]["eventType"], "SetInfo");

    let renamed = node
        .send_json(
            reqwest::Method::POST,
            &format!("{path}/rename"),
            Some(&node.admin),
            json!({"newName": "measurements"}),
        )
        .await;
    assert_eq!(renamed.1["alias"], "admin/measurements", "{}", renamed.1);
    assert_eq!(
        node.get(path, Some(&node.admin)).await.0,
        StatusCode::NOT_FOUND
    );
    let deleted = node
        .call(
            reqwest::Method::DELETE,
            "/datasets/admin/measurements",
            Some(&node.admin),
            None,
        )
        .await;
    assert_eq!(deleted.0, StatusCode::NO_CONTENT, "{}", deleted.1);
    assert_eq!(node.get("/datasets", Some(&node.admin)).await.1, json!([]));
    assert!(
        node.control_plane
            .store
            .list_datasets()
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn revoked_tokens_stop_working_at_once() {
    let node = start(None).await;
    let bob = node.user("bob").await;
    let (status, created) = node
        .send_json(
            reqwest::Method::POST,
            "/accounts/me/tokens",
            Some(&bob),
            json!({"name": "ci"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap();
    let (status, me) = node.get("/accounts/me", Some(token)).await;
    assert_eq!((status, me["name"].clone()), (StatusCode::OK, json!("bob")));

    let revoke = node
        .call(
            reqwest::Method::DELETE,
            &format!("/accounts/me/tokens/{}", created["id"].as_str().unwrap()),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(revoke.0, StatusCode::NO_CONTENT, "{}", revoke.1);
    assert_error(
        &node.get("/accounts/me", Some(token)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "revoked",
    );
    let (_, tokens) = node.get("/accounts/me/tokens", Some(&bob)).await;
    assert!(tokens[0]["revokedAt"].is_i64(), "{tokens}");
    let again = node
        .call(
            reqwest::Method::DELETE,
            &format!("/accounts/me/tokens/{}", created["id"].as_str().unwrap()),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(again.0, StatusCode::NOT_FOUND);

    let mut forged = token.to_string();
    forged.replace_range(forged.len() - 4.., "AAAA");
    assert_error(
        &node.get("/accounts/me", Some(&forged)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "invalid token",
    );
    let basic = node
        .client
        .get(format!("{}/accounts/me", node.url))
        .header("authorization", "Basic eDp5")
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_inputs_answer_4xx_naming_the_problem() {
    let node = start(None).await;
    let bob = node.user("bob").await;
    let admin = Some(node.admin.as_str());
    let post = reqwest::Method::POST;

    assert_error(
        &node
            .call(
                post.clone(),
                "/datasets",
                None,
                Some(("application/yaml", MANIFEST.to_string())),
            )
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "token",
    );
    assert_error(
        &node
            .call(
                post.clone(),
                "/datasets",
                admin,
                Some(("application/json", "{}".to_string())),
            )
            .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "application/yaml",
    );
    assert_error(
        &node.create_dataset(&node.admin, "").await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "empty",
    );
    assert_error(
        &node.create_dataset(&node.admin, "kind: [unclosed").await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "manifest",
    );
    assert_error(
        &node
            .create_dataset(
                &node.admin,
                &MANIFEST.replace("kind: SetInfo", "kind: NoSuchEvent"),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "manifest",
    );
    assert_eq!(
        node.create_dataset(&node.admin, MANIFEST).await.0,
        StatusCode::CREATED
    );
    assert_error(
        &node.create_dataset(&node.admin, MANIFEST).await,
        StatusCode::CONFLICT,
        "conflict",
        "admin/readings",
    );
    assert_error(
        &node
            .call(
                post.clone(),
                "/datasets?account=admin",
                Some(&bob),
                Some(("application/yaml", MANIFEST.replace("readings", "other"))),
            )
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
        "admin",
    );
    assert_error(
        &node
            .call(
                post.clone(),
                "/datasets?visibility=secret",
                admin,
                Some(("application/yaml", MANIFEST.replace("readings", "v"))),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "secret",
    );
    assert_error(
        &node
            .send_json(
                reqwest::Method::PUT,
                "/datasets/admin/readings/roles/bob",
                admin,
                json!({"role": "god"}),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "god",
    );
    assert_error(
        &node
            .send_json(
                reqwest::Method::PUT,
                "/datasets/admin/readings/roles/nobody",
                admin,
                json!({"role": "reader"}),
            )
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
        "nobody",
    );
    assert_error(
        &node
            .send_json(
                post.clone(),
                "/auth/login",
                None,
                json!({"login": "bob", "password": "wrong-password"}),
            )
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "password",
    );
    assert_error(
        &node
            .call(
                post.clone(),
                "/auth/login",
                None,
                Some(("application/json", "{\"login\": 1".to_string())),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "line 1",
    );
    assert_error(
        &node
            .send_json(
                post.clone(),
                "/accounts",
                Some(&bob),
                json!({"name": "eve", "password": "password-1"}),
            )
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
        "administrators",
    );
    assert_error(
        &node
            .send_json(
                post.clone(),
                "/accounts",
                admin,
                json!({"name": "datasets", "password": "password-1"}),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "reserved",
    );
    assert_error(
        &node
            .send_json(
                post.clone(),
                "/accounts",
                admin,
                json!({"name": "BOB", "password": "password-1"}),
            )
            .await,
        StatusCode::CONFLICT,
        "conflict",
        "BOB",
    );
    assert_error(
        &node
            .send_json(
                post.clone(),
                "/accounts",
                admin,
                json!({"name": "eve", "password": "short"}),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "8 characters",
    );
    assert_error(
        &node
            .call(
                post.clone(),
                "/graphql",
                None,
                Some(("application/json", "not json".to_string())),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "graphql",
    );
    assert_error(
        &node.call(post, "/admin/reindex", Some(&bob), None).await,
        StatusCode::FORBIDDEN,
        "forbidden",
        "administrator",
    );
    assert_error(
        &node.get("/datasets?limit=abc", None).await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "limit",
    );
}

#[tokio::test]
async fn lost_database_is_rebuilt_from_storage() {
    let node = start(None).await;
    let (_, created) = node
        .call(
            reqwest::Method::POST,
            "/datasets?visibility=public",
            Some(&node.admin),
            Some(("application/yaml", MANIFEST.to_string())),
        )
        .await;
    let storage = tempfile::TempDir::new().unwrap();
    // Copy storage, then start over with an empty database on the copy.
    copy_dir(&node.storage_dir, storage.path());
    let rebuilt = start(Some(storage)).await;
    let reindex = rebuilt
        .call(
            reqwest::Method::POST,
            "/admin/reindex",
            Some(&rebuilt.admin),
            None,
        )
        .await;
    assert_eq!(reindex.0, StatusCode::OK, "{}", reindex.1);
    assert_eq!(reindex.1["datasets"], 1);
    let (status, seen) = rebuilt.get("/datasets/admin/readings", None).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["id"], created["id"]);
    assert_eq!(seen["head"], created["head"]);
    assert_eq!(
        seen["visibility"], "public",
        "visibility is kept in storage"
    );
    let (_, blocks) = rebuilt.get("/datasets/admin/readings/blocks", None).await;
    assert_eq!(blocks.as_array().unwrap().len(), 2);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn openapi_and_graphql_describe_the_same_datasets() {
    let node = start(None).await;
    node.create_dataset(&node.admin, MANIFEST).await;
    let (status, document) = node.get("/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        document["paths"]["/datasets"]["post"].is_object(),
        "{document}"
    );
    assert!(document["paths"]["/accounts/me/tokens"]["post"].is_object());

    let query = r#"{ datasets { alias kind visibility metadataChain(first: 1) { blocks { sequenceNumber eventType } nextBefore } } }"#;
    let (status, answer) = node
        .send_json(
            reqwest::Method::POST,
            "/graphql",
            Some(&node.admin),
            json!({"query": query}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer["data"]["datasets"],
        json!([{"alias": "admin/readings", "kind": "root", "visibility": "private",
            "metadataChain": {"blocks": [{"sequenceNumber": 1, "eventType": "SetInfo"}], "nextBefore": 1}}]),
        "{answer}"
    );
    let (_, anonymous) = node
        .send_json(
            reqwest::Method::POST,
            "/graphql",
            None,
            json!({"query": query}),
        )
        .await;
    assert_eq!(anonymous["data"]["datasets"], json!([]));
}
