//! The query function over real HTTP: formats, as-of, proofs, limits and every bad input.

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_returns_every_json_format() {
    let harness = Harness::with_cities().await;
    let sql = "SELECT city, population FROM \"alice/cities\" ORDER BY population";
    let (status, body) = harness.post_json("/query", json!({"query": sql})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["output"]["data"],
        json!([{"city": "A", "population": 10}, {"city": "B", "population": 20}, {"city": "C", "population": 30}])
    );
    assert_eq!(body["output"]["dataFormat"], "JsonAoS");

    let (_, body) = harness
        .post_json("/query", json!({"query": sql, "dataFormat": "JsonSoA"}))
        .await;
    assert_eq!(
        body["output"]["data"],
        json!({"city": ["A", "B", "C"], "population": [10, 20, 30]})
    );
    let (_, body) = harness
        .post_json("/query", json!({"query": sql, "dataFormat": "JsonAoA"}))
        .await;
    assert_eq!(
        body["output"]["data"],
        json!([["A", 10], ["B", 20], ["C", 30]])
    );
    let (_, body) = harness
        .post_json(
            "/query",
            json!({"query": sql, "dataFormat": "NdJson", "limit": 1}),
        )
        .await;
    assert_eq!(
        body["output"]["data"],
        json!("{\"city\":\"A\",\"population\":10}\n")
    );
    let (_, body) = harness
        .post_json(
            "/query",
            json!({"query": sql, "dataFormat": "Csv", "skip": 1}),
        )
        .await;
    assert_eq!(
        body["output"]["data"],
        json!("city,population\nB,20\nC,30\n")
    );

    // Bare names are the default account's datasets; GET takes the query as a parameter.
    let (status, body) = harness
        .get_json("/query?query=SELECT%20count(*)%20AS%20n%20FROM%20cities")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["data"], json!([{"n": 3}]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_answers_arrow_and_parquet_on_accept() {
    let harness = Harness::with_cities().await;
    let body = json!({"query": "SELECT city FROM \"alice/cities\" ORDER BY city"});
    let bytes = harness
        .client
        .post(harness.url("/query"))
        .header("accept", "application/vnd.apache.arrow.stream")
        .json(&body)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let reader =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes.to_vec()), None)
            .unwrap();
    // Strings are scanned as Utf8View for speed but answered with the dataset's Utf8 type.
    assert_eq!(
        reader.schema().field(0).data_type(),
        &arrow::datatypes::DataType::Utf8
    );
    let rows: usize = reader.map(|batch| batch.unwrap().num_rows()).sum();
    assert_eq!(rows, 3);

    let response = harness
        .client
        .post(harness.url("/query"))
        .header("accept", "application/vnd.apache.parquet")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.apache.parquet"
    );
    let batches = weir_dataset::slices::read_slice(response.bytes().await.unwrap()).unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_blocks_give_as_of_results_and_input_shows_pins() {
    let harness = Harness::start().await;
    harness.create("alice", CITIES).await;
    let first = harness
        .push(
            "alice",
            "cities",
            "{\"event_time\": \"2024-01-01T00:00:00Z\", \"city\": \"A\", \"population\": 10}",
        )
        .await;
    let second = harness
        .push(
            "alice",
            "cities",
            "{\"event_time\": \"2024-01-02T00:00:00Z\", \"city\": \"B\", \"population\": 20}",
        )
        .await;
    let sql = "SELECT sum(population) AS total FROM \"alice/cities\"";
    let (status, body) = harness
        .post_json("/query", json!({"query": sql, "include": ["Input", "Schema"], "datasets": [{"alias": "alice/cities", "blockHash": first}]}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["data"], json!([{"total": 10}]));
    assert_eq!(body["input"]["datasets"][0]["blockHash"], first);
    assert_eq!(body["output"]["schema"]["fields"][0]["name"], "total");

    let (_, body) = harness
        .post_json("/query", json!({"query": sql, "include": ["Input"]}))
        .await;
    assert_eq!(body["output"]["data"], json!([{"total": 30}]));
    assert_eq!(body["input"]["datasets"][0]["blockHash"], second);
    assert!(
        body["input"]["datasets"][0]["id"]
            .as_str()
            .unwrap()
            .starts_with("did:odf:")
    );

    let other = weir_odf::Multihash::sha3_256(b"not a block").to_string();
    let (status, body) = harness
        .post_json(
            "/query",
            json!({"query": sql, "datasets": [{"alias": "alice/cities", "blockHash": other}]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not in the chain"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_verify_and_tampering_is_reported_exactly() {
    let harness = Harness::with_cities().await;
    let sql = "SELECT city, population FROM \"alice/cities\"";
    let (status, response) = harness
        .post_json("/query", json!({"query": sql, "include": ["Proof"]}))
        .await;
    assert_eq!(status, 200, "{response}");
    assert!(
        response["proof"]["verificationMethod"]
            .as_str()
            .unwrap()
            .starts_with("did:key:z6Mk")
    );
    let verify_request = json!({
        "input": response["input"],
        "subQueries": response["subQueries"],
        "commitment": response["commitment"],
        "proof": response["proof"],
    });
    let (status, verdict) = harness.post_json("/verify", verify_request.clone()).await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict, json!({"ok": true}));
    // The response exactly as it came back verifies too; a changed output is caught.
    let (status, verdict) = harness.post_json("/verify", response.clone()).await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict, json!({"ok": true}));
    let mut changed = response.clone();
    changed["output"]["data"][0]["population"] = json!(1_000_000);
    let (_, verdict) = harness.post_json("/verify", changed).await;
    assert_eq!(verdict["error"]["kind"], "OutputHashMismatch", "{verdict}");

    // New data does not change a pinned result.
    harness
        .push(
            "alice",
            "cities",
            "{\"event_time\": \"2024-02-01T00:00:00Z\", \"city\": \"D\", \"population\": 40}",
        )
        .await;
    let (_, verdict) = harness.post_json("/verify", verify_request.clone()).await;
    assert_eq!(verdict, json!({"ok": true}));

    let mut tampered = verify_request.clone();
    tampered["commitment"]["outputHash"] =
        json!(weir_odf::Multihash::sha3_256(b"other output").to_string());
    let (_, verdict) = harness.post_json("/verify", tampered).await;
    assert_eq!(verdict["ok"], false);
    assert_eq!(verdict["error"]["kind"], "BadSignature", "{verdict}");

    let mut tampered = verify_request.clone();
    tampered["input"]["query"] = json!("SELECT 1");
    let (_, verdict) = harness.post_json("/verify", tampered).await;
    assert_eq!(verdict["error"]["kind"], "InputHashMismatch", "{verdict}");

    // A node that signs a wrong output: signature valid, re-execution differs.
    let committed: weir_query::proof::Commitment = serde_json::from_value(json!({
        "inputHash": response["commitment"]["inputHash"],
        "outputHash": weir_odf::Multihash::sha3_256(b"forged").to_string(),
        "subQueriesHash": response["commitment"]["subQueriesHash"],
    }))
    .unwrap();
    let forged_proof = weir_query::proof::sign(&harness.context.key, &committed);
    let mut forged = verify_request.clone();
    forged["commitment"] = serde_json::to_value(&committed).unwrap();
    forged["proof"] = serde_json::to_value(&forged_proof).unwrap();
    let (_, verdict) = harness.post_json("/verify", forged).await;
    assert_eq!(verdict["error"]["kind"], "OutputMismatch", "{verdict}");
    assert_eq!(
        verdict["error"]["expectedHash"],
        committed.output_hash.to_string()
    );
    assert_eq!(
        verdict["error"]["actualHash"],
        response["commitment"]["outputHash"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_queries_are_clear_4xx() {
    let harness = Harness::with_cities().await;
    let cases = [
        ("SELEC city FROM cities", 400, "SELEC"),
        ("SELEC city FROM cities", 400, "Line: 1, Column: 1"),
        (
            "SELECT city FROM \"alice/cities\" WHERE",
            400,
            "Line: 1, Column: 38",
        ),
        ("SELECT * FROM \"alice/nowhere\"", 400, "alice/nowhere"),
        ("SELECT nope FROM \"alice/cities\"", 400, "nope"),
        ("CREATE TABLE t AS SELECT 1", 400, "only read queries"),
        (
            "INSERT INTO \"alice/cities\" VALUES (1)",
            400,
            "only read queries",
        ),
        ("DROP TABLE \"alice/cities\"", 400, "only read queries"),
        (
            "SET datafusion.execution.batch_size = 1",
            400,
            "only read queries",
        ),
    ];
    for (sql, status, needle) in cases {
        let (actual, body) = harness.post_json("/query", json!({"query": sql})).await;
        assert_eq!(actual, status, "{sql}: {body}");
        assert_eq!(body["error"], "invalid_input", "{sql}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains(needle),
            "{sql}: `{message}` should mention `{needle}`"
        );
    }
    let (status, body) = harness
        .post_json("/query", json!({"quer": "SELECT 1"}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("quer"), "{body}");
    let (status, body) = harness
        .post_json("/query", json!({"query": "SELECT 1", "dataFormat": "Xml"}))
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = harness.get_json("/query").await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_answer_clearly() {
    let harness = Harness::start_with(|config| {
        config.max_result_rows = 2;
        config.memory_limit_bytes = 256 * 1024;
    })
    .await;
    harness.create("alice", CITIES).await;
    harness
        .push("alice", "cities", "{\"event_time\": \"2024-01-01T00:00:00Z\", \"city\": \"A\", \"population\": 10}\n{\"event_time\": \"2024-01-01T00:00:00Z\", \"city\": \"B\", \"population\": 10}\n{\"event_time\": \"2024-01-01T00:00:00Z\", \"city\": \"C\", \"population\": 10}")
        .await;
    let (status, body) = harness
        .post_json("/query", json!({"query": "SELECT * FROM cities"}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("more than 2 rows"),
        "{body}"
    );
    let (status, _) = harness
        .post_json(
            "/query",
            json!({"query": "SELECT * FROM cities", "limit": 2}),
        )
        .await;
    assert_eq!(status, 200);

    let big = "SELECT v, count(*) FROM (SELECT v FROM generate_series(1, 3000000) AS t(v) ORDER BY v DESC) GROUP BY v ORDER BY v LIMIT 1";
    let (status, body) = harness.post_json("/query", json!({"query": big})).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("memory limit"),
        "{body}"
    );

    let harness = Harness::start_with(|config| config.timeout_seconds = 0).await;
    let (status, body) = harness
        .post_json(
            "/query",
            json!({"query": "SELECT count(*) FROM generate_series(1, 50000000)"}),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "retryable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_metadata_and_transfer_protocol() {
    let harness = Harness::with_cities().await;
    let (status, body) = harness.get_json("/alice/cities/tail?limit=2").await;
    assert_eq!(status, 200, "{body}");
    let cities: Vec<&str> = body["output"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["city"].as_str().unwrap())
        .collect();
    assert_eq!(cities, vec!["B", "C"]);

    let (status, metadata) = harness.get_json("/alice/cities/metadata").await;
    assert_eq!(status, 200, "{metadata}");
    assert_eq!(metadata["alias"], "alice/cities");
    assert_eq!(metadata["numRecords"], 3);
    assert_eq!(metadata["pushSources"][0]["sourceName"], "default");
    assert_eq!(metadata["info"]["keywords"], json!(["census"]));
    assert_eq!(metadata["license"]["shortName"], "CC0");
    assert_eq!(metadata["schema"]["fields"][0]["name"], "offset");
    let head = metadata["head"].as_str().unwrap().to_string();

    let text = harness
        .client
        .get(harness.url("/alice/cities/refs/head"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, head);
    // Walk the chain over the simple transfer protocol like a foreign client would.
    let mut next = Some(head);
    let mut blocks = 0;
    let mut data_files = 0;
    while let Some(hash) = next {
        let bytes = harness
            .client
            .get(harness.url(&format!("/alice/cities/blocks/{hash}")))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(weir_odf::Multihash::sha3_256(&bytes).to_string(), hash);
        let block = weir_odf::decode_block(&bytes).unwrap();
        if let weir_odf::MetadataEvent::AddData(add_data) = &block.event {
            let slice = add_data.new_data.as_ref().unwrap();
            let data = harness
                .client
                .get(harness.url(&format!("/alice/cities/data/{}", slice.physical_hash)))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(weir_odf::Multihash::sha3_256(&data), slice.physical_hash);
            data_files += 1;
        }
        blocks += 1;
        next = block.prev_block_hash.map(|h| h.to_string());
    }
    assert_eq!((blocks, data_files), (7, 2));

    let missing = weir_odf::Multihash::sha3_256(b"missing");
    let (status, body) = harness
        .get_json(&format!("/alice/cities/blocks/{missing}"))
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = harness.get_json("/alice/cities/blocks/not-a-hash").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = harness.get_json("/alice/nowhere/metadata").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "not_found");
}
