//! Hardening: the SQL catalog views BI tools ask for (`information_schema.tables`, `.columns`,
//! `SHOW TABLES`) answer over /query and FlightSQL, listing only what the caller may read.

mod common;

use common::*;
use serde_json::{Value, json};

async fn query(url: &str, token: Option<&str>, sql: &str) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{url}/query"))
        .json(&json!({ "query": sql }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn column(body: &Value, name: &str) -> Vec<String> {
    body["output"]["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|row| row[name].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_views_list_only_readable_datasets() {
    let harness = Harness::with_cities().await;
    harness.create("alice", SECRET).await;
    harness
        .push(
            "alice",
            "secret",
            r#"{"event_time": "2024-01-01T00:00:00Z", "password": "x"}"#,
        )
        .await;
    let secret = harness
        .store
        .resolve_alias(&"alice".parse().unwrap(), &"secret".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let url = serve_hiding(&harness, secret).await;

    let tables = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name";
    let (status, body) = query(&url, None, tables).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(column(&body, "table_name"), vec!["alice/cities"]);
    let (_, body) = query(&url, Some("owner"), tables).await;
    assert_eq!(
        column(&body, "table_name"),
        vec!["alice/cities", "alice/secret"]
    );

    let (status, body) = query(&url, None, "SHOW TABLES").await;
    assert_eq!(status, 200, "{body}");
    let shown = column(&body, "table_name");
    assert!(shown.contains(&"alice/cities".to_string()), "{shown:?}");
    assert!(
        !shown.iter().any(|name| name.contains("secret")),
        "{shown:?}"
    );

    let columns = "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position";
    let (status, body) = query(&url, None, columns).await;
    assert_eq!(status, 200, "{body}");
    let names = column(&body, "column_name");
    assert!(names.contains(&"population".to_string()), "{names:?}");
    assert!(!names.contains(&"password".to_string()), "{names:?}");
    assert!(
        column(&body, "table_name")
            .iter()
            .all(|table| table == "alice/cities")
    );
}
