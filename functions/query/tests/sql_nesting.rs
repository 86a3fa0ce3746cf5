//! Hardening: no query text may take the process down. Deeply nested shapes answer 400 naming
//! the limit (over HTTP and FlightSQL); queries within the limit still run, and the node keeps
//! answering afterwards.

mod common;

use common::*;
use serde_json::json;

fn chain(item: &str, separator: &str, count: usize) -> String {
    vec![item; count].join(separator)
}

fn nested(open: &str, inner: &str, close: &str, count: usize) -> String {
    format!("{}{inner}{}", open.repeat(count), close.repeat(count))
}

/// Shapes that aborted the process with a stack overflow, each a few hundred bytes to a few KB.
fn deep_queries() -> Vec<(&'static str, String)> {
    vec![
        (
            "arithmetic chain",
            format!("SELECT {}", chain("1", "+", 3000)),
        ),
        (
            "OR chain",
            format!(
                "SELECT city FROM cities WHERE {}",
                chain("population = 1", " OR ", 2000)
            ),
        ),
        (
            "UNION ALL chain",
            chain("SELECT 1 AS x", " UNION ALL ", 1500),
        ),
        (
            "nested subqueries",
            format!(
                "SELECT * FROM {}",
                nested("(SELECT * FROM ", "cities", ") AS t", 200)
            ),
        ),
        (
            "nested CASE",
            format!(
                "SELECT {}",
                nested("CASE WHEN true THEN ", "1", " END", 200)
            ),
        ),
        (
            "nested parentheses",
            format!("SELECT {}", nested("(", "1", ")", 200)),
        ),
        (
            "many joins",
            format!(
                "SELECT 1 FROM cities{}",
                " JOIN cities USING (city)".repeat(400)
            ),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_sql_answers_400_naming_the_limit() {
    let harness = Harness::with_cities().await;
    for (shape, sql) in deep_queries() {
        let (status, body) = harness.post_json("/query", json!({ "query": sql })).await;
        assert_eq!(status, 400, "{shape}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("max_query_depth") || message.contains("max_query_nesting"),
            "{shape}: {message}"
        );
        assert!(message.starts_with("query refused"), "{shape}: {message}");
        assert_eq!(body["error"], "invalid_input", "{shape}: {body}");
    }
    // GET /query takes the same path.
    let sql = format!("SELECT {}", chain("1", "%2B", 3000));
    let (status, body) = harness.get_json(&format!("/query?query={sql}")).await;
    assert_eq!(status, 400, "{body}");
    // The node is still up.
    let (status, body) = harness
        .post_json(
            "/query",
            json!({"query": "SELECT count(*) AS n FROM cities"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["data"], json!([{"n": 3}]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_within_the_depth_limit_run() {
    let harness = Harness::with_cities().await;
    let sql = format!("SELECT {} AS total", chain("1", " + ", 100));
    let (status, body) = harness.post_json("/query", json!({ "query": sql })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["data"], json!([{"total": 100}]));

    let sql = format!(
        "SELECT count(*) AS n FROM cities WHERE {}",
        (1..=60)
            .map(|i| format!("population = {}", i * 10))
            .collect::<Vec<_>>()
            .join(" OR ")
    );
    let (status, body) = harness.post_json("/query", json!({ "query": sql })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["data"], json!([{"n": 3}]));

    // Nesting that planning and optimizing recurse through, within the parser's bound.
    let sql = format!(
        "SELECT count(*) AS n FROM {}",
        nested(
            "(SELECT * FROM ",
            "cities",
            " WHERE population > 0) AS t",
            30
        )
    );
    let (status, body) = harness.post_json("/query", json!({ "query": sql })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["data"], json!([{"n": 3}]));
    let sql = format!(
        "SELECT {} AS x",
        nested("CASE WHEN true THEN ", "7", " END", 30)
    );
    let (status, body) = harness.post_json("/query", json!({ "query": sql })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["data"], json!([{"x": 7}]));

    let sql = chain("SELECT population FROM cities", " UNION ALL ", 40);
    let (status, body) = harness
        .post_json(
            "/query",
            json!({ "query": format!("SELECT count(*) AS n FROM ({sql})") }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["data"], json!([{"n": 120}]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_text_over_the_length_limit_is_refused() {
    let harness = Harness::start_with(|config| config.max_query_length = 1000).await;
    let sql = format!("SELECT {}", chain("1", ",", 600));
    let (status, body) = harness.post_json("/query", json!({ "query": sql })).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("max_query_length"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flightsql_refuses_deep_queries_and_keeps_serving() {
    use arrow_flight::sql::client::FlightSqlServiceClient;
    let harness = Harness::with_cities().await;
    let engine = harness.context.engine.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(weir_query::flight::serve_flightsql(engine, listener));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = FlightSqlServiceClient::new(channel);
    for (shape, sql) in deep_queries() {
        let error = client.execute(sql, None).await.expect_err(shape);
        let message = error.to_string();
        assert!(
            message.contains("max_query_depth") || message.contains("max_query_nesting"),
            "{shape}: {message}"
        );
    }
    let info = client
        .execute("SELECT city FROM cities".to_string(), None)
        .await
        .unwrap();
    assert_eq!(info.endpoint.len(), 1);
}
