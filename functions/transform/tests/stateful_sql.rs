//! Derivatives computed step by step, as pushes arrive (late readings included), hold exactly
//! what one batch query over the inputs gives, once retractions and corrections are applied:
//! for several query shapes, random push sequences and random transform runs in between.

mod common;

use common::{Harness, derivative_manifest, readings_manifest};
use proptest::prelude::*;
use weir_transform::engine::Maintenance;

const SHAPES: &[&str] = &[
    // time buckets
    "SELECT date_trunc('hour', event_time) AS event_time, sensor, avg(temp) AS avg_temp, count(*) AS n FROM readings GROUP BY 1, 2",
    // row by row
    "SELECT event_time, sensor, temp * 2 AS double_temp FROM readings WHERE temp > 20",
    // DISTINCT
    "SELECT DISTINCT date_trunc('day', event_time) AS event_time, sensor FROM readings",
    // HAVING, a group that appears and disappears
    "SELECT max(event_time) AS event_time, sensor, sum(temp) AS total FROM readings GROUP BY sensor HAVING count(*) > 2",
    // window function
    "SELECT event_time, sensor, temp, rank() OVER (PARTITION BY sensor ORDER BY temp DESC, event_time) AS place FROM readings",
];

/// One reading: sensor, minute of the day, temperature in half degrees.
fn reading() -> impl Strategy<Value = (u8, u16, i16)> {
    (0u8..3, 0u16..600, 20i16..70)
}

fn ndjson(readings: &[(u8, u16, i16)]) -> String {
    readings
        .iter()
        .map(|(sensor, minute, temp)| {
            format!(
                "{{\"event_time\": \"2026-01-01T{:02}:{:02}:00Z\", \"sensor\": \"s{sensor}\", \"temp\": {}}}",
                minute / 60,
                minute % 60,
                f64::from(*temp) / 2.0
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Records of one push, and whether a transform step runs after it.
type Push = (Vec<(u8, u16, i16)>, bool);

async fn check(shape: usize, merge: &str, pushes: Vec<Push>) {
    let harness = Harness::start();
    let root = harness.create(&readings_manifest("readings", merge)).await;
    let query = SHAPES[shape];
    let derived = harness
        .create(&derivative_manifest(
            "derived",
            &[(&root, "readings")],
            query,
        ))
        .await;
    let mut computed = Vec::new();
    for (records, run_after) in pushes {
        if !records.is_empty() {
            harness.push("readings", ndjson(&records)).await;
        }
        if run_after {
            computed.extend(
                harness
                    .transformer
                    .run_step(&derived)
                    .await
                    .unwrap()
                    .maintenance,
            );
        }
    }
    computed.extend(
        harness
            .transformer
            .run_step(&derived)
            .await
            .unwrap()
            .maintenance,
    );
    // Up to date: a second run adds nothing.
    let again = harness.transformer.run_step(&derived).await.unwrap();
    assert_eq!(again.new_head, None);
    let expected = harness.batch_rows(&[(&root, "readings")], query).await;
    let actual = harness.current_rows(&derived).await;
    assert_eq!(actual, expected, "query: {query}");
    // Appends only: grouped queries are computed in full once, then group by group.
    if merge == "kind: Append" && !computed.is_empty() {
        let expected: Vec<Maintenance> = match shape {
            1 => vec![Maintenance::RowByRow; computed.len()],
            4 => vec![Maintenance::Full; computed.len()],
            _ => std::iter::once(Maintenance::Full)
                .chain(std::iter::repeat_n(
                    Maintenance::GroupByGroup,
                    computed.len() - 1,
                ))
                .collect(),
        };
        assert_eq!(computed, expected, "query: {query}");
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn appended_inputs(
        shape in 0..SHAPES.len(),
        pushes in prop::collection::vec((prop::collection::vec(reading(), 0..8), any::<bool>()), 1..6),
    ) {
        runtime().block_on(check(shape, "kind: Append", pushes));
    }

    /// A snapshot root emits retractions and corrections itself; they flow through.
    #[test]
    fn snapshot_inputs_with_retractions(
        shape in 0..SHAPES.len(),
        pushes in prop::collection::vec((prop::collection::vec(reading(), 0..6), any::<bool>()), 1..5),
    ) {
        // A snapshot keyed by sensor and minute: a push replaces the whole state.
        let pushes = pushes
            .into_iter()
            .map(|(mut records, run)| {
                records.sort_by_key(|(sensor, minute, _)| (*sensor, *minute));
                records.dedup_by_key(|(sensor, minute, _)| (*sensor, *minute));
                (records, run)
            })
            .collect();
        runtime().block_on(check(
            shape,
            "{kind: Snapshot, primaryKey: [sensor, event_time]}",
            pushes,
        ));
    }
}

#[tokio::test]
async fn late_reading_corrects_an_emitted_hour() {
    let harness = Harness::start();
    let root = harness
        .create(&readings_manifest("readings", "kind: Append"))
        .await;
    let query = SHAPES[0];
    let derived = harness
        .create(&derivative_manifest(
            "derived",
            &[(&root, "readings")],
            query,
        ))
        .await;
    harness
        .push("readings", ndjson(&[(0, 600 - 590, 40), (0, 70, 44)]))
        .await;
    let first = harness.transformer.run_step(&derived).await.unwrap();
    assert_eq!(first.num_records, 2);
    // A late reading for hour 0 of s0: one correction pair, nothing else.
    harness.push("readings", ndjson(&[(0, 20, 50)])).await;
    let second = harness.transformer.run_step(&derived).await.unwrap();
    assert_eq!(second.num_records, 2, "a -C/+C pair");
    assert_eq!(second.maintenance, Some(Maintenance::GroupByGroup));
    let expected = harness.batch_rows(&[(&root, "readings")], query).await;
    assert_eq!(harness.current_rows(&derived).await, expected);
}
