//! Verification replays every transform step and finds the first one an engine computed
//! wrongly; a derivative reset to its metadata computes itself again to the same records.

mod common;

use std::sync::Arc;

use arrow::array::{Float64Array, RecordBatch};
use common::{Harness, derivative_manifest, readings_manifest};
use weir_dataset::DatasetStore;
use weir_odf::{MetadataEvent, Multihash};
use weir_transform::engine::{
    Engine, EngineError, EngineIdentity, OutputRecords, TransformOutput, TransformRequest,
};
use weir_transform::{DataFusionEngine, Transformer};

const HOURLY: &str = "SELECT date_trunc('hour', event_time) AS event_time, sensor, avg(temp) AS avg_temp FROM readings GROUP BY 1, 2";

fn ndjson(rows: &[(&str, &str, f64)]) -> String {
    rows.iter()
        .map(|(time, sensor, temp)| {
            format!("{{\"event_time\": \"2026-01-01T{time}:00Z\", \"sensor\": \"{sensor}\", \"temp\": {temp}}}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// An engine that adds one degree to every temperature it outputs from its second step on.
struct Lying {
    steps: std::sync::atomic::AtomicU32,
}

#[async_trait::async_trait]
impl Engine for Lying {
    fn identity(&self) -> EngineIdentity {
        DataFusionEngine.identity()
    }

    async fn execute_transform(
        &self,
        store: &DatasetStore,
        request: TransformRequest,
    ) -> Result<TransformOutput, EngineError> {
        let mut output = DataFusionEngine.execute_transform(store, request).await?;
        if self.steps.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 1 {
            let records = output.records.collect().await?;
            output.records = OutputRecords::Batches(
                records
                    .iter()
                    .map(|batch| {
                        let index = batch.schema().index_of("avg_temp").unwrap();
                        let temps = batch
                            .column(index)
                            .as_any()
                            .downcast_ref::<Float64Array>()
                            .unwrap();
                        let lied: Float64Array = temps.iter().map(|t| t.map(|t| t + 1.0)).collect();
                        let mut columns = batch.columns().to_vec();
                        columns[index] = Arc::new(lied);
                        RecordBatch::try_new(batch.schema(), columns).unwrap()
                    })
                    .collect(),
            );
        }
        Ok(output)
    }
}

async fn three_steps(harness: &Harness, transformer: &Transformer) -> weir_odf::DatasetId {
    let root = harness
        .create(&readings_manifest("readings", "kind: Append"))
        .await;
    let derived = harness
        .create(&derivative_manifest(
            "hourly",
            &[(&root, "readings")],
            HOURLY,
        ))
        .await;
    let pushes = [
        vec![("10:00", "s1", 21.5), ("10:10", "s2", 19.0)],
        vec![("10:45", "s1", 25.0), ("11:05", "s2", 20.0)],
        vec![("11:30", "s2", 22.0)],
    ];
    for push in pushes {
        harness.push("readings", ndjson(&push)).await;
        transformer.run_step(&derived).await.unwrap();
    }
    derived
}

#[tokio::test]
async fn verification_replays_every_step() {
    let harness = Harness::start();
    let derived = three_steps(&harness, &harness.transformer).await;
    let report = harness.transformer.verify(&derived).await.unwrap();
    assert_eq!(report.steps_verified, 3);
    assert_eq!(report.first_mismatch, None);
}

#[tokio::test]
async fn verification_names_the_first_step_computed_wrongly() {
    let harness = Harness::start();
    let lying = Transformer::new(
        harness.store.clone(),
        Arc::new(Lying {
            steps: Default::default(),
        }),
    );
    let derived = three_steps(&harness, &lying).await;
    let report = harness.transformer.verify(&derived).await.unwrap();
    assert_eq!(report.steps_verified, 1);
    let mismatch = report.first_mismatch.expect("the second step lied");
    let chain = harness
        .store
        .dataset(&derived)
        .load_chain(None)
        .await
        .unwrap();
    let executes: Vec<(Multihash, u64)> = chain
        .blocks
        .iter()
        .rev()
        .filter(|(_, block)| matches!(block.event, MetadataEvent::ExecuteTransform(_)))
        .map(|(hash, block)| (*hash, block.sequence_number))
        .collect();
    assert_eq!((mismatch.block_hash, mismatch.sequence_number), executes[1]);
    assert_ne!(mismatch.recorded, mismatch.computed);
}

#[tokio::test]
async fn a_reset_derivative_computes_the_same_records_again() {
    let harness = Harness::start();
    let derived = three_steps(&harness, &harness.transformer).await;
    let before = harness.current_rows(&derived).await;
    let outcome = harness.transformer.reset(&derived, None).await.unwrap();
    // Back to Seed + SetTransform.
    assert_eq!(outcome.new_head_sequence, 1);
    assert!(harness.current_rows(&derived).await.is_empty());
    let step = harness.transformer.run_step(&derived).await.unwrap();
    assert!(step.new_head.is_some());
    assert_eq!(harness.current_rows(&derived).await, before);
    let report = harness.transformer.verify(&derived).await.unwrap();
    assert_eq!((report.steps_verified, report.first_mismatch), (1, None));
}

#[tokio::test]
async fn a_reset_input_stops_its_derivative_naming_it() {
    let harness = Harness::start();
    let derived = three_steps(&harness, &harness.transformer).await;
    let root = harness
        .store
        .resolve_alias(&"alice".parse().unwrap(), &"readings".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let root_chain = harness.store.dataset(&root).load_chain(None).await.unwrap();
    // Back to before the last push, which the derivative has read.
    let earlier = root_chain.blocks[1].0;
    harness
        .transformer
        .reset(&root, Some(earlier))
        .await
        .unwrap();
    let error = harness.transformer.run_step(&derived).await.unwrap_err();
    assert!(!error.is_retryable());
    assert!(
        error.to_string().contains("`readings`") && error.to_string().contains("reset"),
        "{error}"
    );
    // A root needs a block to go back to; one outside its chain is refused.
    assert!(harness.transformer.reset(&root, None).await.is_err());
    let foreign = harness
        .store
        .dataset(&derived)
        .head()
        .await
        .unwrap()
        .unwrap()
        .hash;
    let error = harness
        .transformer
        .reset(&root, Some(foreign))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("not in the dataset's chain"),
        "{error}"
    );
}
