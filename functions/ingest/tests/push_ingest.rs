//! Push ingest over real HTTP: every format, every merge strategy, idempotency, concurrency.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_append_commits_one_block_with_correct_offsets() {
    let harness = Harness::start().await;
    let dataset = harness
        .create(&root_manifest("cities", NDJSON_READ, APPEND))
        .await;
    let head_before = dataset.head().await.unwrap().unwrap().hash;

    let body = "{\"event_time\": \"2024-01-01T00:00:00Z\", \"city\": \"A\", \"population\": 10}\n{\"event_time\": \"2024-01-02T00:00:00Z\", \"city\": \"B\", \"population\": 20}\n";
    let (status, json) = harness
        .push("/alice/cities/ingest", "application/x-ndjson", body)
        .await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["numRecords"], 2);
    assert_eq!(
        json["offsetInterval"],
        serde_json::json!({"start": 0, "end": 1})
    );
    assert_eq!(json["oldHead"], head_before.to_string());

    let chain = dataset.load_chain(None).await.unwrap();
    // Seed, AddPushSource, SetDataSchema, AddData.
    assert_eq!(chain.blocks.len(), 4);
    assert_eq!(json["newHead"], chain.blocks[0].0.to_string());
    let weir_odf::MetadataEvent::AddData(add_data) = &chain.blocks[0].1.event else {
        panic!("head is AddData");
    };
    assert_eq!(
        add_data.new_watermark.unwrap().to_rfc3339(),
        "2024-01-02T00:00:00+00:00"
    );

    let body = "{\"event_time\": \"2024-01-03T00:00:00Z\", \"city\": \"C\", \"population\": 30}";
    let (status, json) = harness
        .push("/alice/cities/ingest", "application/x-ndjson", body)
        .await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        json["offsetInterval"],
        serde_json::json!({"start": 2, "end": 2})
    );
    assert_eq!(
        harness
            .rows(
                &dataset,
                "SELECT \"offset\", op, city, population FROM t ORDER BY \"offset\""
            )
            .await,
        vec!["0,0,A,10", "1,0,B,20", "2,0,C,30"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_json_array_geojson_and_parquet_bodies_are_read() {
    let harness = Harness::start().await;
    let read = "        kind: Csv
        header: true
        schema:
          fields:
            - name: event_time
              type: Timestamp
            - name: city
              type: String
            - name: population
              type: Int64";
    let dataset = harness.create(&root_manifest("mixed", read, APPEND)).await;

    let csv = "event_time,city,population\n2024-01-01T00:00:00Z,A,10\n2024-01-01T00:00:00Z,\"B, south\",20";
    let (status, json) = harness
        .push("/alice/mixed/ingest", "text/csv; charset=utf-8", csv)
        .await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["numRecords"], 2);

    let array = r#"[{"event_time": "2024-01-02T00:00:00Z", "city": "C", "population": 30},
                    {"event_time": "2024-01-02T00:00:00Z", "city": "D [x]", "population": 40}]"#;
    let (status, json) = harness
        .push("/alice/mixed/ingest", "application/json", array)
        .await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["numRecords"], 2);

    let parquet = {
        use arrow::array::{Int64Array, RecordBatch, StringArray};
        use arrow::datatypes::{DataType, Field, Schema};
        use std::sync::Arc;
        let schema = Arc::new(Schema::new(vec![
            Field::new("event_time", DataType::Utf8, false),
            Field::new("city", DataType::Utf8, false),
            Field::new("population", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["2024-01-03T00:00:00Z"])),
                Arc::new(StringArray::from(vec!["E"])),
                Arc::new(Int64Array::from(vec![50])),
            ],
        )
        .unwrap();
        let mut buffer = Vec::new();
        let mut writer = parquet::arrow::ArrowWriter::try_new(&mut buffer, schema, None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        buffer
    };
    let (status, json) = harness
        .push(
            "/alice/mixed/ingest",
            "application/vnd.apache.parquet",
            parquet,
        )
        .await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["numRecords"], 1);

    assert_eq!(
        harness
            .rows(&dataset, "SELECT city FROM t ORDER BY \"offset\"")
            .await,
        vec!["A", "B, south", "C", "D [x]", "E"]
    );

    let read = "        kind: GeoJson";
    let places = harness.create(&root_manifest("places", read, APPEND)).await;
    let geojson = r#"{"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1.5, 2.5]}, "properties": {"name": "p1", "rank": 1}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [3, 4]}, "properties": {"name": "p2", "rank": 2}}]}"#;
    let (status, json) = harness
        .push_with(
            "/alice/places/ingest",
            &[
                ("content-type", "application/geo+json"),
                ("odf-event-time", "2024-05-01T10:00:00Z"),
            ],
            geojson,
        )
        .await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        harness
            .rows(
                &places,
                "SELECT name, rank, geometry, CAST(event_time AS VARCHAR) FROM t ORDER BY rank"
            )
            .await,
        vec![
            "p1,1,{\"coordinates\":[1.5,2.5],\"type\":\"Point\"},2024-05-01T10:00:00Z",
            "p2,2,{\"coordinates\":[3,4],\"type\":\"Point\"},2024-05-01T10:00:00Z",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_is_inferred_and_preprocess_runs() {
    let harness = Harness::start().await;
    let manifest = "kind: DatasetSnapshot
version: 1
content:
  name: sensors
  kind: Root
  metadata:
    - kind: AddPushSource
      sourceName: default
      read:
        kind: NdJson
      preprocess:
        kind: Sql
        engine: datafusion
        query: SELECT CAST(ts AS TIMESTAMP) AS event_time, upper(id) AS sensor, temp * 10 AS deci_temp FROM input
      merge:
        kind: Append
";
    let dataset = harness.create(manifest).await;
    let body = "{\"ts\": \"2024-01-01T00:00:00Z\", \"id\": \"s1\", \"temp\": 1.5}\n{\"ts\": \"2024-01-01T00:01:00Z\", \"id\": \"s2\", \"temp\": 2}\n";
    let (status, json) = harness
        .push("/alice/sensors/ingest", "application/x-ndjson", body)
        .await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        harness
            .rows(&dataset, "SELECT sensor, deci_temp FROM t ORDER BY sensor")
            .await,
        vec!["S1,15.0", "S2,20.0"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_skips_rows_already_seen() {
    let harness = Harness::start().await;
    let merge = "        kind: Ledger\n        primaryKey: [city]";
    let dataset = harness
        .create(&root_manifest("ledger", NDJSON_READ, merge))
        .await;
    let first = "{\"event_time\": \"2024-01-01T00:00:00Z\", \"city\": \"A\", \"population\": 10}\n{\"event_time\": \"2024-01-01T00:00:00Z\", \"city\": \"B\", \"population\": 20}";
    let (status, _) = harness
        .push("/alice/ledger/ingest", "application/x-ndjson", first)
        .await;
    assert_eq!(status, 200);
    let second = "{\"event_time\": \"2024-01-01T00:00:00Z\", \"city\": \"A\", \"population\": 10}\n{\"event_time\": \"2024-01-01T00:00:00Z\", \"city\": \"B\", \"population\": 20}\n{\"event_time\": \"2024-01-02T00:00:00Z\", \"city\": \"C\", \"population\": 30}";
    let (status, json) = harness
        .push("/alice/ledger/ingest", "application/x-ndjson", second)
        .await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["numRecords"], 1);
    let (status, json) = harness
        .push("/alice/ledger/ingest", "application/x-ndjson", second)
        .await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["numRecords"], 0);
    assert_eq!(json["oldHead"], json["newHead"]);
    assert_eq!(
        harness
            .rows(&dataset, "SELECT city FROM t ORDER BY \"offset\"")
            .await,
        vec!["A", "B", "C"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_keyed_by_entity_and_event_time_takes_time_series() {
    let harness = Harness::start().await;
    let merge = "        kind: Ledger\n        primaryKey: [city, event_time]";
    let dataset = harness
        .create(&root_manifest("series", NDJSON_READ, merge))
        .await;
    let first = "{\"event_time\": \"2024-01-01T00:00:00Z\", \"city\": \"A\", \"population\": 10}\n{\"event_time\": \"2024-01-02T00:00:00Z\", \"city\": \"A\", \"population\": 11}";
    let (status, json) = harness
        .push("/alice/series/ingest", "application/x-ndjson", first)
        .await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["numRecords"], 2);
    // The same sensor at a new time is new; at a time already seen it is not.
    let second = "{\"event_time\": \"2024-01-02T00:00:00Z\", \"city\": \"A\", \"population\": 11}\n{\"event_time\": \"2024-01-03T00:00:00Z\", \"city\": \"A\", \"population\": 12}";
    let (status, json) = harness
        .push("/alice/series/ingest", "application/x-ndjson", second)
        .await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["numRecords"], 1);
    assert_eq!(
        harness
            .rows(&dataset, "SELECT population FROM t ORDER BY \"offset\"")
            .await,
        vec!["10", "11", "12"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_emits_retractions_and_corrections() {
    let harness = Harness::start().await;
    let read = "        kind: Csv
        header: true
        schema:
          fields:
            - name: city
              type: String
            - name: population
              type: Int64";
    let merge = "        kind: Snapshot\n        primaryKey: [city]";
    let dataset = harness.create(&root_manifest("census", read, merge)).await;
    let push = |csv: &'static str, time: &'static str| {
        let harness = &harness;
        async move {
            harness
                .push_with(
                    "/alice/census/ingest",
                    &[("content-type", "text/csv"), ("odf-event-time", time)],
                    csv,
                )
                .await
        }
    };
    let (status, json) = push("city,population\nA,10\nB,20\n", "2024-01-01T00:00:00Z").await;
    assert_eq!(status, 200, "{json}");
    let (status, json) = push("city,population\nA,11\nC,30\n", "2024-02-01T00:00:00Z").await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["numRecords"], 4);
    let (status, json) = push("city,population\nA,11\nC,30\n", "2024-03-01T00:00:00Z").await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["numRecords"], 0, "an unchanged snapshot adds nothing");
    assert_eq!(
        harness.rows(&dataset, "SELECT \"offset\", op, city, population, CAST(event_time AS VARCHAR) FROM t ORDER BY \"offset\"").await,
        vec![
            "0,0,A,10,2024-01-01T00:00:00Z",
            "1,0,B,20,2024-01-01T00:00:00Z",
            "2,2,A,10,2024-01-01T00:00:00Z",
            "3,3,A,11,2024-02-01T00:00:00Z",
            "4,0,C,30,2024-02-01T00:00:00Z",
            "5,1,B,20,2024-01-01T00:00:00Z",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_may_key_by_event_time() {
    let harness = Harness::start().await;
    let merge = "        kind: Snapshot\n        primaryKey: [city, event_time]";
    let dataset = harness
        .create(&root_manifest("states", NDJSON_READ, merge))
        .await;
    let first = "{\"event_time\": \"2024-01-01T00:00:00Z\", \"city\": \"A\", \"population\": 10}\n{\"event_time\": \"2024-01-01T00:00:00Z\", \"city\": \"B\", \"population\": 20}";
    let (status, json) = harness
        .push("/alice/states/ingest", "application/x-ndjson", first)
        .await;
    assert_eq!(
        (status, json["numRecords"].clone()),
        (200, 2.into()),
        "{json}"
    );
    // A at the same time changed, B at that time is gone.
    let second = "{\"event_time\": \"2024-01-01T00:00:00Z\", \"city\": \"A\", \"population\": 11}";
    let (status, json) = harness
        .push("/alice/states/ingest", "application/x-ndjson", second)
        .await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        harness
            .rows(
                &dataset,
                "SELECT op, city, population FROM t ORDER BY \"offset\""
            )
            .await,
        vec!["0,A,10", "0,B,20", "2,A,10", "3,A,11", "1,B,20"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changelog_and_upsert_streams() {
    let harness = Harness::start().await;
    let read = "        kind: NdJson
        schema:
          fields:
            - name: op
              type: String
            - name: id
              type: Int64
            - name: value
              type: String";
    let changelog = harness
        .create(&root_manifest(
            "changes",
            read,
            "        kind: ChangelogStream\n        primaryKey: [id]",
        ))
        .await;
    let body = "{\"op\": \"+A\", \"id\": 1, \"value\": \"a\"}\n{\"op\": \"-C\", \"id\": 1, \"value\": \"a\"}\n{\"op\": \"+C\", \"id\": 1, \"value\": \"b\"}";
    let (status, json) = harness
        .push("/alice/changes/ingest", "application/x-ndjson", body)
        .await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        harness
            .rows(
                &changelog,
                "SELECT op, id, value FROM t ORDER BY \"offset\""
            )
            .await,
        vec!["0,1,a", "2,1,a", "3,1,b"]
    );
    let bad = "{\"op\": \"?\", \"id\": 1, \"value\": \"a\"}";
    let (status, json) = harness
        .push("/alice/changes/ingest", "application/x-ndjson", bad)
        .await;
    assert_eq!(status, 400, "{json}");

    let read = "        kind: NdJson
        schema:
          fields:
            - name: op
              type:
                kind: Option
                inner: String
            - name: id
              type: Int64
            - name: value
              type: String";
    let upsert = harness
        .create(&root_manifest(
            "upserts",
            read,
            "        kind: UpsertStream\n        primaryKey: [id]",
        ))
        .await;
    let first = "{\"id\": 1, \"value\": \"a\"}\n{\"id\": 2, \"value\": \"b\"}\n{\"id\": 1, \"value\": \"a2\"}";
    let (status, json) = harness
        .push("/alice/upserts/ingest", "application/x-ndjson", first)
        .await;
    assert_eq!(status, 200, "{json}");
    let second = "{\"id\": 2, \"value\": \"b\", \"op\": \"retract\"}\n{\"id\": 1, \"value\": \"a3\"}\n{\"id\": 3, \"value\": \"c\"}";
    let (status, json) = harness
        .push("/alice/upserts/ingest", "application/x-ndjson", second)
        .await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        harness
            .rows(&upsert, "SELECT op, id, value FROM t ORDER BY \"offset\"")
            .await,
        // The last upsert per key wins and rows keep the order of their final input position.
        vec!["0,2,b", "0,1,a2", "1,2,b", "2,1,a2", "3,1,a3", "0,3,c"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_replays_the_first_result() {
    let harness = Harness::start().await;
    let dataset = harness
        .create(&root_manifest("idem", NDJSON_READ, APPEND))
        .await;
    let body = "{\"event_time\": \"2024-01-01T00:00:00Z\", \"city\": \"A\", \"population\": 10}";
    let headers = [
        ("content-type", "application/x-ndjson"),
        ("idempotency-key", "req-1"),
    ];
    let (status, first) = harness
        .push_with("/alice/idem/ingest", &headers, body)
        .await;
    assert_eq!(status, 200, "{first}");
    let (status, second) = harness
        .push_with("/alice/idem/ingest", &headers, body)
        .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(first, second);
    assert_eq!(
        harness.rows(&dataset, "SELECT count(*) FROM t").await,
        vec!["1"]
    );
    let other = [
        ("content-type", "application/x-ndjson"),
        ("idempotency-key", "req-2"),
    ];
    let (status, third) = harness.push_with("/alice/idem/ingest", &other, body).await;
    assert_eq!(status, 200, "{third}");
    assert_eq!(
        harness.rows(&dataset, "SELECT count(*) FROM t").await,
        vec!["2"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushes_all_land() {
    let harness = std::sync::Arc::new(Harness::start().await);
    let dataset = harness
        .create(&root_manifest("busy", NDJSON_READ, APPEND))
        .await;
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let harness = harness.clone();
        tasks.push(tokio::spawn(async move {
            let body = format!("{{\"event_time\": \"2024-01-01T00:00:00Z\", \"city\": \"w{writer}\", \"population\": {writer}}}");
            harness.push("/alice/busy/ingest", "application/x-ndjson", body).await
        }));
    }
    for task in tasks {
        let (status, json) = task.await.unwrap();
        assert_eq!(status, 200, "{json}");
    }
    assert_eq!(
        harness
            .rows(
                &dataset,
                "SELECT count(*), sum(population), max(\"offset\") FROM t"
            )
            .await,
        vec!["8,28,7"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_in_one_process_queue_instead_of_racing() {
    // One commit attempt each: a writer that lost a race to another of this process would fail.
    let harness =
        std::sync::Arc::new(Harness::start_with(|config| config.max_commit_attempts = 1).await);
    let dataset = harness
        .create(&root_manifest("lanes", NDJSON_READ, APPEND))
        .await;
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let harness = harness.clone();
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for push in 0..10 {
                let body = format!("{{\"event_time\": \"2024-01-01T00:00:00Z\", \"city\": \"w{writer}-{push}\", \"population\": 1}}");
                let (status, json) = harness.push("/alice/lanes/ingest", "application/x-ndjson", body).await;
                statuses.push((status, json));
            }
            statuses
        }));
    }
    for task in tasks {
        for (status, json) in task.await.unwrap() {
            assert_eq!(status, 200, "{json}");
        }
    }
    assert_eq!(
        harness
            .rows(&dataset, "SELECT count(*), max(\"offset\") FROM t")
            .await,
        vec!["80,79"]
    );
    // Nobody lost a race, so nothing was left behind: every block and data file is referenced.
    let chain = dataset.load_chain(None).await.unwrap();
    let root = harness
        .storage_root()
        .join(dataset.layout().prefix().to_string());
    let count =
        |folder: &str| std::fs::read_dir(root.join(folder)).map_or(0, |entries| entries.count());
    assert_eq!(count("blocks"), chain.blocks.len());
    assert_eq!(count("data"), 80);
    assert_eq!(count("staging"), 0);
}
