//! Test harness: a store on local files, roots pushed through the ingest function, derivatives
//! computed by the transform function, and the batch answer computed by plain DataFusion.

#![allow(dead_code)]

use std::sync::Arc;

use arrow::array::RecordBatch;
use bytes::Bytes;
use chrono::Utc;
use datafusion::prelude::SessionContext;
use weir_dataset::DatasetStore;
use weir_ingest::read::MediaFormat;
use weir_ingest::{IngestConfig, IngestContext, IngestRequest};
use weir_odf::DatasetId;
use weir_transform::{DataFusionEngine, Transformer};

pub struct Harness {
    pub store: DatasetStore,
    pub ingest: IngestContext,
    pub transformer: Transformer,
    _dir: tempfile::TempDir,
}

pub fn readings_manifest(name: &str, merge: &str) -> String {
    format!(
        "kind: DatasetSnapshot
version: 1
content:
  name: {name}
  kind: Root
  metadata:
    - kind: AddPushSource
      sourceName: default
      read:
        kind: NdJson
        schema:
          fields:
            - {{name: event_time, type: Timestamp}}
            - {{name: sensor, type: String}}
            - {{name: temp, type: Float64}}
      merge:
        {merge}
"
    )
}

pub fn derivative_manifest(name: &str, inputs: &[(&DatasetId, &str)], query: &str) -> String {
    let inputs: String = inputs
        .iter()
        .map(|(id, alias)| format!("        - datasetRef: {id}\n          alias: {alias}\n"))
        .collect();
    format!(
        "kind: DatasetSnapshot
version: 1
content:
  name: {name}
  kind: Derivative
  metadata:
    - kind: SetTransform
      inputs:
{inputs}      transform:
        kind: Sql
        engine: datafusion
        query: {query:?}
"
    )
}

impl Harness {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = DatasetStore::local_fs(dir.path()).unwrap();
        Self::with_store(store, dir)
    }

    /// A harness over `store` (`dir` is kept for as long as the harness lives).
    pub fn with_store(store: DatasetStore, dir: tempfile::TempDir) -> Self {
        let ingest = IngestContext::standalone(store.clone(), IngestConfig::default());
        let transformer = Transformer::new(store.clone(), Arc::new(DataFusionEngine));
        Self {
            store,
            ingest,
            transformer,
            _dir: dir,
        }
    }

    pub async fn create(&self, manifest: &str) -> DatasetId {
        let definition = weir_odf::manifest::parse_dataset_manifest(manifest).unwrap();
        let (dataset, _) = self
            .store
            .create_dataset(&"alice".parse().unwrap(), definition, Utc::now())
            .await
            .unwrap();
        *dataset.id()
    }

    pub async fn push(&self, dataset: &str, ndjson: String) {
        let request = IngestRequest {
            caller: weir_function_runtime::Caller::anonymous(),
            account: "alice".to_string(),
            dataset: dataset.to_string(),
            source_name: None,
            format: MediaFormat::NdJson,
            event_time: None,
            idempotency_key: None,
        };
        let body = futures::stream::once(async move { Ok(Bytes::from(ndjson)) });
        self.ingest.ingest(request, body).await.unwrap();
    }

    /// The records of a dataset now, retractions and corrections applied, without system
    /// columns, as sorted lines.
    pub async fn current_rows(&self, id: &DatasetId) -> Vec<String> {
        let session = SessionContext::new();
        let dataset = self.store.dataset(id);
        let table =
            match weir_dataset::table::dataset_table(&session, &self.store, &dataset, None).await {
                Err(weir_dataset::table::TableError::NoSchema) => return Vec::new(),
                other => other.unwrap(),
            };
        session.register_table("t", table).unwrap();
        let frame = session
            .sql("SELECT * FROM t ORDER BY \"offset\"")
            .await
            .unwrap();
        let schema = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await.unwrap();
        let current =
            weir_transform::engine::changelog::current_records(&schema, &batches).unwrap();
        let keep = weir_transform::engine::changelog::value_columns(&schema);
        lines(&[current.project(&keep).unwrap()])
    }

    /// What a batch query over the roots' current records gives.
    pub async fn batch_rows(&self, inputs: &[(&DatasetId, &str)], query: &str) -> Vec<String> {
        let session = SessionContext::new();
        for (id, alias) in inputs {
            let Some(rows) = self.current_batch(id).await else {
                return Vec::new();
            };
            let table =
                datafusion::datasource::MemTable::try_new(rows.schema(), vec![vec![rows]]).unwrap();
            session.register_table(*alias, Arc::new(table)).unwrap();
        }
        let batches = session.sql(query).await.unwrap().collect().await.unwrap();
        lines(&batches)
    }

    async fn current_batch(&self, id: &DatasetId) -> Option<RecordBatch> {
        let session = SessionContext::new();
        let dataset = self.store.dataset(id);
        let table =
            match weir_dataset::table::dataset_table(&session, &self.store, &dataset, None).await {
                Err(weir_dataset::table::TableError::NoSchema) => return None,
                other => other.unwrap(),
            };
        session.register_table("t", table).unwrap();
        let frame = session
            .sql("SELECT * FROM t ORDER BY \"offset\"")
            .await
            .unwrap();
        let schema = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await.unwrap();
        Some(weir_transform::engine::changelog::current_records(&schema, &batches).unwrap())
    }
}

/// Rows as sorted lines of `column=value` pairs.
pub fn lines(batches: &[RecordBatch]) -> Vec<String> {
    let mut out = Vec::new();
    for batch in batches {
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| {
                arrow::util::display::ArrayFormatter::try_new(
                    c.as_ref(),
                    &arrow::util::display::FormatOptions::default(),
                )
                .unwrap()
            })
            .collect();
        for row in 0..batch.num_rows() {
            let line: Vec<String> = batch
                .schema()
                .fields()
                .iter()
                .zip(&formatters)
                .map(|(f, fmt)| format!("{}={}", f.name(), fmt.value(row)))
                .collect();
            out.push(line.join(" "));
        }
    }
    out.sort();
    out
}
