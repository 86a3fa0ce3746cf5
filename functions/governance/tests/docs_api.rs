//! Dataset documentation through the governance function deployed apart from the control plane
//! (real HTTP both ways), on SQLite and PostgreSQL: changes land in the chain as ODF events,
//! search finds them, the permission matrix holds, and bad input is refused naming the problem.

mod common;

use std::time::{Duration, Instant};

use common::{Node, assert_error, names};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documentation_lands_in_the_chain_and_search_finds_it_on_sqlite() {
    documentation_lands_in_the_chain_and_search_finds_it(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documentation_lands_in_the_chain_and_search_finds_it_on_postgres() {
    documentation_lands_in_the_chain_and_search_finds_it(true).await;
}

async fn documentation_lands_in_the_chain_and_search_finds_it(postgres: bool) {
    let node = Node::start(postgres).await;
    node.create_dataset("rain", "public").await;
    node.create_dataset("river", "public").await;
    let admin = Some(node.admin.as_str());
    let change = json!({
        "description": "Hourly rainfall from tipping-bucket gauges",
        "keywords": ["Weather", "rain", "weather"],
        "license": {"spdxId": "CC0-1.0"},
        "readme": "# Rain\nCalibrated every spring.\n"
    });
    let (status, answer) = node
        .json(
            Method::PATCH,
            "fn:/datasets/admin/rain/docs",
            admin,
            change.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["committed"],
        json!(["SetInfo", "SetLicense", "SetAttachments"])
    );
    assert_eq!(answer["keywords"], json!(["Weather", "rain"]));
    assert_eq!(
        answer["license"]["name"],
        "Creative Commons Zero v1.0 Universal"
    );
    assert_eq!(
        answer["attachments"],
        json!([{"path": "README.md", "mediaType": "text/markdown", "size": 32}])
    );
    let head = answer["head"].clone();

    // The same change again commits nothing.
    let (status, again) = node
        .json(Method::PATCH, "fn:/datasets/admin/rain/docs", admin, change)
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["committed"], json!([]));
    assert_eq!(again["head"], head);

    // The chain holds the events, as any ODF tool reads them.
    let (status, blocks) = node.get("/datasets/admin/rain/blocks", admin).await;
    assert_eq!(status, StatusCode::OK, "{blocks}");
    let kinds: Vec<&str> = blocks["blocks"]
        .as_array()
        .or(blocks.as_array())
        .unwrap_or_else(|| panic!("{blocks}"))
        .iter()
        .map(|block| block["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(
        &kinds[..3],
        ["SetAttachments", "SetLicense", "SetInfo"],
        "{blocks}"
    );

    // Readers see it; search finds it once the control plane indexed the commit.
    let (status, docs) = node.get("fn:/datasets/admin/rain/docs", None).await;
    assert_eq!(status, StatusCode::OK, "{docs}");
    assert_eq!(
        docs["description"],
        "Hourly rainfall from tipping-bucket gauges"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, found) = node
            .search("keywords = 'weather' AND license = 'CC0-1.0'", None)
            .await;
        assert_eq!(status, StatusCode::OK, "{found}");
        if names(&found) == ["rain"] {
            break;
        }
        assert!(Instant::now() < deadline, "search never found it: {found}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        names(&node.search("calibrated spring", None).await.1),
        ["rain"]
    );
    assert_eq!(
        names(&node.search("'rain' OR name = 'river'", None).await.1),
        ["rain", "river"]
    );
    assert_error(
        &node.search("keywords = weather", None).await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "at position 11",
    );

    // GraphQL takes the same expressions.
    let (status, graphql) = node
        .json(
            Method::POST,
            "/graphql",
            None,
            json!({"query": "{ datasets(search: \"license = 'cc0-1.0'\") { name } }"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{graphql}");
    assert_eq!(graphql["data"]["datasets"], json!([{"name": "rain"}]));
    // GraphQL reads the documentation from the chain.
    let (_, documented) = node
        .json(
            Method::POST,
            "/graphql",
            None,
            json!({"query": "{ dataset(account: \"admin\", name: \"rain\") { documentation } }"}),
        )
        .await;
    assert_eq!(
        documented["data"]["dataset"]["documentation"],
        json!({
            "description": "Hourly rainfall from tipping-bucket gauges",
            "keywords": ["Weather", "rain"],
            "license": "CC0-1.0",
            "readme": "# Rain\nCalibrated every spring.\n",
        }),
        "{documented}"
    );
    let (_, bad) = node
        .json(
            Method::POST,
            "/graphql",
            None,
            json!({"query": "{ datasets(search: \"numRecords > 'x'\") { name } }"}),
        )
        .await;
    assert!(
        bad["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at position 13"),
        "{bad}"
    );

    // A license change replaces the license; a keyword-only change keeps the description.
    let (_, answer) = node
        .json(
            Method::PATCH,
            "fn:/datasets/admin/rain/docs",
            admin,
            json!({"keywords": ["hydrology"], "license": {
                "shortName": "OGL-ON", "name": "Open Government Licence – Ontario",
                "websiteUrl": "https://www.ontario.ca/page/open-government-licence-ontario"}}),
        )
        .await;
    assert_eq!(
        answer["committed"],
        json!(["SetInfo", "SetLicense"]),
        "{answer}"
    );
    assert_eq!(
        answer["description"],
        "Hourly rainfall from tipping-bucket gauges"
    );
    assert_eq!(answer["license"]["spdxId"], json!(null));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_read_and_change_documentation() {
    let node = Node::start(false).await;
    node.create_dataset("private-docs", "private").await;
    node.create_dataset("public-docs", "public").await;
    let reader = node.user("reader").await;
    let maintainer = node.user("maintainer").await;
    let outsider = node.user("outsider").await;
    node.grant("admin/private-docs", "reader", "reader").await;
    node.grant("admin/private-docs", "maintainer", "maintainer")
        .await;
    let change = json!({"description": "documented"});
    let docs = "fn:/datasets/admin/private-docs/docs";
    let readme = "fn:/datasets/admin/private-docs/docs/attachments/README.md";
    // Anonymous callers and outsiders see nothing: the same 404 as a missing dataset.
    for token in [None, Some(outsider.as_str())] {
        for answer in [
            node.get(docs, token).await,
            node.json(Method::PATCH, docs, token, change.clone()).await,
            node.get(readme, token).await,
            node.get("fn:/datasets/admin/no-such/docs", token).await,
        ] {
            assert_error(&answer, StatusCode::NOT_FOUND, "not_found", "not found");
        }
    }
    // Readers read but do not change.
    assert_eq!(node.get(docs, Some(&reader)).await.0, StatusCode::OK);
    assert_error(
        &node
            .json(Method::PATCH, docs, Some(&reader), change.clone())
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
        "maintainer",
    );
    let (status, _, body) = node
        .call(
            Method::PUT,
            readme,
            Some(&reader),
            Some(("text/markdown", b"# x".to_vec())),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // Maintainers and owners change it.
    let (status, body) = node
        .json(Method::PATCH, docs, Some(&maintainer), change)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["committed"], json!(["SetInfo"]));
    let (status, body) = node
        .json(
            Method::PATCH,
            docs,
            Some(&node.admin),
            json!({"description": null}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["description"], json!(null));
    // Public documentation is readable by anyone, changeable by no anonymous caller.
    let public = "fn:/datasets/admin/public-docs/docs";
    assert_eq!(node.get(public, None).await.0, StatusCode::OK);
    assert_eq!(node.get(public, Some(&outsider)).await.0, StatusCode::OK);
    let answer = node
        .json(
            Method::PATCH,
            public,
            Some(&outsider),
            json!({"description": "x"}),
        )
        .await;
    assert_error(&answer, StatusCode::FORBIDDEN, "forbidden", "maintainer");
    let answer = node
        .json(Method::PATCH, public, None, json!({"description": "x"}))
        .await;
    assert!(
        matches!(answer.0, StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED),
        "{answer:?}"
    );
    // Search hides what the caller may not read, before paging.
    let deadline = Instant::now() + Duration::from_secs(10);
    while names(&node.search("kind = 'root'", Some(&node.admin)).await.1).len() < 2 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        names(&node.search("kind = 'root'", None).await.1),
        ["public-docs"]
    );
    assert_eq!(
        names(&node.search("kind = 'root'", Some(&outsider)).await.1),
        ["public-docs"]
    );
    assert_eq!(
        names(&node.search("kind = 'root'", Some(&reader)).await.1),
        ["private-docs", "public-docs"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_are_checked_and_served_as_inert_text() {
    let node = Node::start(false).await;
    node.create_dataset("files", "public").await;
    let admin = Some(node.admin.as_str());
    let base = "fn:/datasets/admin/files/docs/attachments";
    let put = |path: &str, content_type: &str, body: Vec<u8>| {
        let path = format!("{base}/{path}");
        let content_type = content_type.to_string();
        let node = &node;
        async move {
            let (status, _, body) = node
                .call(Method::PUT, &path, admin, Some((&content_type, body)))
                .await;
            (status, body)
        }
    };
    let (status, body) = put(
        "docs/schema.yaml",
        "application/yaml",
        b"columns: [a]\n".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["committed"], json!(["SetAttachments"]));
    let (status, headers, content) = node
        .call(Method::GET, &format!("{base}/docs/schema.yaml"), None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content, json!("columns: [a]\n"));
    assert_eq!(headers["content-type"], "application/yaml; charset=utf-8");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    assert_eq!(
        headers["content-disposition"],
        "inline; filename=\"schema.yaml\""
    );

    assert_error(
        &put(
            "index.html",
            "text/html",
            b"<script>alert(1)</script>".to_vec(),
        )
        .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "index.html",
    );
    assert_error(
        &put("notes.md", "image/png", b"# x".to_vec()).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "text/markdown",
    );
    assert_error(
        &put("a/..%2F..%2Fetc.md", "text/markdown", b"x".to_vec()).await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "path",
    );
    assert_error(
        &put("binary.txt", "text/plain", vec![0xff, 0xfe, 0x00]).await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "UTF-8",
    );
    assert_error(
        &put("big.md", "text/markdown", vec![b'a'; 256 * 1024 + 1]).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "at most 262144",
    );
    // Bad PATCH bodies name the field.
    for (body, needle) in [
        (json!({"license": {"spdxId": "Apache 2"}}), "license.spdxId"),
        (json!({"license": null}), "cannot drop its license"),
        (json!({"keywords": ["ok", ""]}), "keywords[1]"),
        (json!({"colour": "red"}), "unknown field `colour`"),
        (json!({}), "at least one"),
    ] {
        assert_error(
            &node
                .json(Method::PATCH, "fn:/datasets/admin/files/docs", admin, body)
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_input",
            needle,
        );
    }
    let (status, _, body) = node
        .call(
            Method::PATCH,
            "fn:/datasets/admin/files/docs",
            admin,
            Some(("application/json", b"{not json".to_vec())),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Removal; removing what is not there is 404 and commits nothing.
    let (status, _, body) = node
        .call(
            Method::DELETE,
            &format!("{base}/docs/schema.yaml"),
            admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["attachments"], json!([]));
    let (status, _, _) = node
        .call(Method::GET, &format!("{base}/docs/schema.yaml"), None, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) = node
        .call(
            Method::DELETE,
            &format!("{base}/docs/schema.yaml"),
            admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_for_issues_are_content_addressed_checked_and_served_inert() {
    let node = Node::start(false).await;
    node.create_dataset("shared", "public").await;
    node.create_dataset("closed", "private").await;
    let reader = node.user("reader").await;
    let outsider = node.user("outsider").await;
    node.grant("admin/closed", "reader", "reader").await;
    let png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR-not-a-real-image".to_vec();
    let upload =
        |path: &'static str, token: Option<String>, content_type: &'static str, body: Vec<u8>| {
            let node = &node;
            async move {
                let (status, _, answer) = node
                    .call(
                        Method::POST,
                        path,
                        token.as_deref(),
                        Some((content_type, body)),
                    )
                    .await;
                (status, answer)
            }
        };
    let (status, first) = upload(
        "fn:/datasets/admin/closed/files",
        Some(reader.clone()),
        "image/png",
        png.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let path = first["path"].as_str().unwrap().to_string();
    assert!(
        path.starts_with("/datasets/admin/closed/files/") && path.ends_with(".png"),
        "{path}"
    );
    assert_eq!(first["size"], png.len());
    // The same bytes again: the same file, stored once.
    let (status, again) = upload(
        "fn:/datasets/admin/closed/files",
        Some(node.admin.clone()),
        "image/png",
        png.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["path"], first["path"]);
    // Who may upload: not outsiders (404) nor anonymous callers (401), even on public datasets.
    assert_eq!(
        upload(
            "fn:/datasets/admin/closed/files",
            Some(outsider.clone()),
            "image/png",
            png.clone()
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        upload(
            "fn:/datasets/admin/closed/files",
            None,
            "image/png",
            png.clone()
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_error(
        &upload(
            "fn:/datasets/admin/shared/files",
            None,
            "image/png",
            png.clone(),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "sign in",
    );
    // What may be uploaded.
    for (content_type, body, status, needle) in [
        (
            "image/jpeg",
            png.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not the declared image/jpeg",
        ),
        (
            "image/svg+xml",
            b"<svg onload=alert(1)/>".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not accepted",
        ),
        (
            "text/html",
            b"<script>alert(1)</script>".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not accepted",
        ),
        (
            "text/plain",
            vec![0u8, 159, 146, 150],
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "of no accepted type",
        ),
        (
            "text/plain",
            vec![b'a'; 4097],
            StatusCode::PAYLOAD_TOO_LARGE,
            "at most 4096",
        ),
        ("text/plain", Vec::new(), StatusCode::BAD_REQUEST, "empty"),
    ] {
        let answer = upload(
            "fn:/datasets/admin/shared/files",
            Some(reader.clone()),
            content_type,
            body,
        )
        .await;
        assert_eq!(answer.0, status, "{content_type}: {}", answer.1);
        assert!(
            answer.1["message"].as_str().unwrap().contains(needle),
            "{content_type}: {}",
            answer.1
        );
    }
    // Downloads: readers only, with headers that keep browsers from running anything.
    let (status, headers, _) = node
        .call(Method::GET, &format!("fn:{path}"), Some(&reader), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline")
    );
    assert_eq!(
        node.call(Method::GET, &format!("fn:{path}"), Some(&outsider), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (status, answer) = upload(
        "fn:/datasets/admin/shared/files",
        Some(reader.clone()),
        "text/csv",
        b"a,b\n1,2\n".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let (_, headers, body) = node
        .call(
            Method::GET,
            &format!("fn:{}", answer["path"].as_str().unwrap()),
            None,
            None,
        )
        .await;
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(body, json!("a,b\n1,2\n"));
    for missing in [
        format!("fn:/datasets/admin/shared/files/{}.png", "0".repeat(64)),
        "fn:/datasets/admin/shared/files/..%2F..%2Fblocks.png".to_string(),
        "fn:/datasets/admin/shared/files/x.html".to_string(),
    ] {
        assert_eq!(
            node.call(Method::GET, &missing, None, None).await.0,
            StatusCode::NOT_FOUND,
            "{missing}"
        );
    }
}
