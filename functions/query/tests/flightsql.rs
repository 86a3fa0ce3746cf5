//! FlightSQL with the real ADBC driver (`adbc_driver_flightsql` from PyPI, installed by
//! `./local/test`): anonymous handshake, statement execution, catalog listing, errors.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adbc_flightsql_driver_queries_datasets() {
    let harness = Harness::with_cities().await;
    let engine = harness.context.engine.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(weir_query::flight::serve_flightsql(engine, listener));

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/flightsql_adbc.py");
    let output = tokio::process::Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .output()
        .await
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the ADBC client failed (is adbc_driver_flightsql installed? ./local/test installs it):\n{stderr}"
    );
    let seen: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["columns"], serde_json::json!(["city", "population"]));
    assert_eq!(
        seen["rows"],
        serde_json::json!([
            {"city": "A", "population": 10},
            {"city": "B", "population": 20},
            {"city": "C", "population": 30}
        ])
    );
    assert_eq!(seen["tables"], serde_json::json!(["alice/cities"]));
    let bad = seen["bad_query"].as_str().unwrap();
    assert!(bad.contains("nowhere_at_all"), "{bad}");
}
