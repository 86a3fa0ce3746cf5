//! A row-by-row step gives its records in input order across files (whose paths are hashes, in
//! no particular order) and row groups, the same on every run: verification replays it exactly.

mod common;

use common::{Harness, derivative_manifest, readings_manifest};
use datafusion::prelude::SessionContext;
use weir_transform::engine::Maintenance;

const ROWS: usize = 300_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_by_row_steps_keep_input_order_across_files() {
    let harness = Harness::start();
    let root = harness
        .create(&readings_manifest("readings", "kind: Append"))
        .await;
    let query = "SELECT event_time, sensor, temp + 0.5 AS temp FROM readings WHERE temp > 20";
    let derived = harness
        .create(&derivative_manifest("warm", &[(&root, "readings")], query))
        .await;
    // Distinct times and temperatures: a file of several MiB, which the scan splits.
    let body: String = (0..ROWS)
        .map(|i| {
            format!(
                "{{\"event_time\": \"2026-01-{:02}T{:02}:{:02}:{:02}Z\", \"sensor\": \"s{}\", \"temp\": {}}}\n",
                1 + i / 86_400,
                i / 3600 % 24,
                i / 60 % 60,
                i % 60,
                i % 7,
                ((i * 7919) % 100_003) as f64 / 1000.0
            )
        })
        .collect();
    // Five pushes: five files.
    let lines: Vec<&str> = body.lines().collect();
    for part in lines.chunks(ROWS / 5) {
        harness.push("readings", part.join("\n")).await;
    }
    let step = harness.transformer.run_step(&derived).await.unwrap();
    assert_eq!(step.maintenance, Some(Maintenance::RowByRow));

    // The derivative's records in offset order are the root's filtered records in offset order.
    let ordered = |id| {
        let harness = &harness;
        async move {
            let session = SessionContext::new();
            let dataset = harness.store.dataset(id);
            let table =
                weir_dataset::table::dataset_table(&session, &harness.store, &dataset, None)
                    .await
                    .unwrap();
            session.register_table("t", table).unwrap();
            session
                .sql("SELECT sensor, temp FROM t ORDER BY \"offset\"")
                .await
                .unwrap()
                .collect()
                .await
                .unwrap()
        }
    };
    let expected = {
        let session = SessionContext::new();
        let dataset = harness.store.dataset(&root);
        let table = weir_dataset::table::dataset_table(&session, &harness.store, &dataset, None)
            .await
            .unwrap();
        session.register_table("t", table).unwrap();
        session
            .sql("SELECT sensor, temp + 0.5 AS temp FROM t WHERE temp > 20 ORDER BY \"offset\"")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap()
    };
    let flat = |batches: Vec<arrow::array::RecordBatch>| -> Vec<String> {
        let mut lines = Vec::new();
        for batch in batches {
            let text = arrow::util::pretty::pretty_format_batches(&[batch])
                .unwrap()
                .to_string();
            lines.extend(
                text.lines()
                    .filter(|line| line.starts_with("| s") && !line.starts_with("| sensor"))
                    .map(str::to_string),
            );
        }
        lines
    };
    let actual = flat(ordered(&derived).await);
    assert!(actual.len() > ROWS / 2, "{}", actual.len());
    let expected = flat(expected);
    assert_eq!(actual.len(), expected.len());
    if let Some(row) = (0..actual.len()).find(|&row| actual[row] != expected[row]) {
        panic!(
            "record {row} differs: {} instead of {}",
            actual[row], expected[row]
        );
    }
    let report = harness.transformer.verify(&derived).await.unwrap();
    assert_eq!((report.steps_verified, report.first_mismatch), (1, None));
}
