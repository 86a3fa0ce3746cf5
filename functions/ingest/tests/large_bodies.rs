//! Bodies of several megabytes: they are cut into blocks decoded in parallel, so these tests
//! check that order, offsets, quoted multi-line CSV fields and error positions survive the cut.

mod common;

use common::*;

const ROWS: usize = 60_000;

/// The read step's schema, after a `kind` line of each format.
macro_rules! read_step {
    ($kind:literal) => {
        concat!(
            $kind,
            "
        schema:
          fields:
            - name: event_time
              type: Timestamp
            - name: id
              type: Int64
            - name: note
              type: String"
        )
    };
}

const CSV_READ: &str = read_step!("        kind: Csv\n        header: true");

const NDJSON_ID_READ: &str = read_step!("        kind: NdJson");

/// `header`, then `ROWS` records made by `record` from the row index, with `bad_row`'s line in
/// place of that row's record.
fn body(header: &str, bad_row: Option<(usize, &str)>, record: impl Fn(usize) -> String) -> String {
    let mut body = String::from(header);
    for id in 0..ROWS {
        match bad_row {
            Some((row, line)) if row == id => body.push_str(line),
            _ => body.push_str(&record(id)),
        }
        body.push('\n');
    }
    body
}

/// `ROWS` CSV rows whose `id` is the row index; every 997th note is quoted and spans lines.
fn csv_body(bad_row: Option<(usize, &str)>) -> String {
    body("event_time,id,note\n", bad_row, |id| {
        let note = if id % 997 == 0 {
            format!("\"multi\nline, \"\"quoted\"\" {id}\"")
        } else {
            format!("note number {id} with some padding text to make rows longer")
        };
        format!("2024-01-01T00:00:{:02}Z,{id},{note}", id % 60)
    })
}

fn ndjson_body(bad_row: Option<(usize, &str)>) -> String {
    body("", bad_row, |id| {
        format!(
            "{{\"event_time\": \"2024-01-01T00:00:{:02}Z\", \"id\": {id}, \"note\": \"note number {id} with some padding text to make rows longer\"}}",
            id % 60
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_block_bodies_keep_record_order_and_offsets() {
    let harness = Harness::start().await;
    let csv = harness
        .create(&root_manifest("csv", CSV_READ, APPEND))
        .await;
    let body = csv_body(None);
    assert!(body.len() > 4 << 20, "the body spans several blocks");
    let (status, json) = harness.push("/alice/csv/ingest", "text/csv", body).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["numRecords"], ROWS);
    assert_eq!(
        harness
            .rows(
                &csv,
                "SELECT count(*) AS n, sum(CASE WHEN \"offset\" = id THEN 1 ELSE 0 END) AS in_order, \
                 sum(CASE WHEN note LIKE 'multi\nline, \"quoted\" %' THEN 1 ELSE 0 END) AS quoted \
                 FROM t"
            )
            .await,
        vec![format!("{ROWS},{ROWS},{}", ROWS.div_ceil(997))]
    );

    let ndjson = harness
        .create(&root_manifest("ndjson", NDJSON_ID_READ, APPEND))
        .await;
    let (status, json) = harness
        .push(
            "/alice/ndjson/ingest",
            "application/x-ndjson",
            ndjson_body(None),
        )
        .await;
    assert_eq!(status, 200, "{json}");
    // A JSON array of the same records goes through the array splitter, then the same blocks.
    let array = format!("[{}]", ndjson_body(None).trim_end().replace('\n', ",\n"));
    let (status, json) = harness
        .push("/alice/ndjson/ingest", "application/json", array)
        .await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        json["offsetInterval"],
        serde_json::json!({"start": ROWS, "end": 2 * ROWS - 1})
    );
    assert_eq!(
        harness
            .rows(
                &ndjson,
                "SELECT count(*), sum(CASE WHEN \"offset\" % 60000 = id THEN 1 ELSE 0 END) FROM t"
            )
            .await,
        vec![format!("{},{}", 2 * ROWS, 2 * ROWS)]
    );
}

async fn rejected_message(
    harness: &Harness,
    path: &str,
    content_type: &str,
    body: String,
) -> String {
    let (status, json) = harness.push(path, content_type, body).await;
    assert_eq!(status, 400, "{json}");
    json["message"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_in_later_blocks_name_the_record_and_line_of_the_body() {
    let harness = Harness::start().await;
    let csv = harness
        .create(&root_manifest("csv", CSV_READ, APPEND))
        .await;
    let ndjson = harness
        .create(&root_manifest("ndjson", NDJSON_ID_READ, APPEND))
        .await;
    const NDJSON: (&str, &str) = ("/alice/ndjson/ingest", "application/x-ndjson");
    const CSV: (&str, &str) = ("/alice/csv/ingest", "text/csv");
    let bad_json = "{\"event_time\": \"2024-01-01T00:00:00Z\", \"id\": }";
    let bad_id = "{\"event_time\": \"2024-01-01T00:00:00Z\", \"id\": \"many\"}";
    // (target, body, what the message names). Data row 50,000 (0-based) is record 50,001 of
    // the NDJSON body. CSV line numbers count the body's records from 1, the header included,
    // so data row 50,000 is line 50,002 (a quoted field that spans lines counts once), and the
    // same errors in the first block are numbered the same way.
    let cases = [
        (
            NDJSON,
            ndjson_body(Some((50_000, bad_json))),
            vec!["record 50001"],
        ),
        (
            NDJSON,
            ndjson_body(Some((50_000, bad_id))),
            vec!["record 50001", "id"],
        ),
        (
            CSV,
            csv_body(Some((50_000, "2024-01-01T00:00:00Z,many,x"))),
            vec!["line 50002", "`id`"],
        ),
        (
            CSV,
            csv_body(Some((50_000, "2024-01-01T00:00:00Z,7"))),
            vec!["line 50002"],
        ),
        (
            CSV,
            csv_body(Some((1, "2024-01-01T00:00:00Z,many,x"))),
            vec!["line 3"],
        ),
        (
            CSV,
            csv_body(Some((1, "2024-01-01T00:00:00Z,7"))),
            vec!["line 3"],
        ),
    ];
    for ((path, content_type), body, needles) in cases {
        let message = rejected_message(&harness, path, content_type, body).await;
        for needle in needles {
            assert!(message.contains(needle), "`{message}` should name {needle}");
        }
    }

    for dataset in [&csv, &ndjson] {
        let chain = dataset.load_chain(None).await.unwrap();
        assert!(
            chain.state.last_offset().is_none(),
            "rejected bodies must commit nothing"
        );
    }
}
