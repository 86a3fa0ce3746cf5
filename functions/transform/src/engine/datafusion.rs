//! Our engine: DataFusion in-process, with one partition so that every run computes the same
//! records in the same order (float sums included) and a replay can be verified.
//!
//! Row-by-row queries read only the input records that are new; stateful queries are computed
//! again over the inputs' current records and emitted as the difference to what the previous
//! step emitted (kept in the checkpoint).

use std::sync::Arc;

use arrow::array::{Int32Array, RecordBatch};
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use datafusion::common::TableReference;
use datafusion::datasource::MemTable;
use datafusion::execution::config::SessionConfig;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{DataFrame, SessionContext};
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use weir_dataset::DatasetStore;
use weir_dataset::slices::{
    EVENT_TIME_COLUMN, OFFSET_COLUMN, OPERATION_TYPE_COLUMN, SYSTEM_TIME_COLUMN, read_slice,
};
use weir_dataset::table::{TableSource, offset_ordered_table_from_source, register_store};
use weir_odf::{OperationType, TransformSql};

use super::changelog::{current_records, difference, with_op_column};
use super::incremental;
use super::shape::{QueryShape, classify};
use super::{
    Engine, EngineError, EngineIdentity, Maintenance, OutputRecords, TransformOutput,
    TransformRequest,
};
use futures::{StreamExt, TryStreamExt};

pub const ENGINE_NAME: &str = "weir-datafusion";
/// Checkpoint metadata keys naming the engine that wrote it.
pub const ENGINE_NAME_KEY: &str = "weir.dev/engine";
pub const ENGINE_VERSION_KEY: &str = "weir.dev/engineVersion";

#[derive(Debug, Default, Clone)]
pub struct DataFusionEngine;

pub fn engine_version() -> String {
    format!(
        "{} (datafusion {})",
        env!("CARGO_PKG_VERSION"),
        datafusion::DATAFUSION_VERSION
    )
}

/// One partition, and data files read in offset order (by their statistics; see
/// `offset_ordered_table_from_source`), not in the order of their hash-named paths.
fn deterministic_session() -> SessionContext {
    let mut config = SessionConfig::new()
        .with_target_partitions(1)
        .with_batch_size(64 * 1024);
    config
        .options_mut()
        .execution
        .split_file_groups_by_statistics = true;
    SessionContext::new_with_config(config)
}

fn invalid(error: impl std::fmt::Display) -> EngineError {
    EngineError::InvalidQuery(error.to_string())
}

fn internal(error: impl std::error::Error + Send + Sync + 'static) -> EngineError {
    EngineError::internal(error)
}

impl DataFusionEngine {
    /// Runs `sql` over the Parquet files at `urls` (in `store`), read as the table `input`: the
    /// engine protocol's raw query, as ingest preprocessing uses it.
    pub async fn execute_raw_query(
        store: &DatasetStore,
        urls: &[String],
        sql: &TransformSql,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), EngineError> {
        use datafusion::datasource::file_format::parquet::ParquetFormat;
        use datafusion::datasource::listing::{
            ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
        };
        if urls.is_empty() {
            return Err(EngineError::InvalidQuery(
                "a raw query needs at least one input file".to_string(),
            ));
        }
        let session = deterministic_session();
        register_store(&session, store);
        let urls = urls
            .iter()
            .map(ListingTableUrl::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(internal)?;
        let options =
            ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension("");
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .infer_schema(&session.state())
            .await
            .map_err(internal)?;
        let table = ListingTable::try_new(config).map_err(internal)?;
        session
            .register_table("input", Arc::new(table))
            .map_err(internal)?;
        let frame = Self::plan_output(&session, sql).await?;
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await.map_err(internal)?;
        Ok((schema, batches))
    }

    /// Registers the aliased steps as views and returns the output step's frame, over the
    /// input views bound in `session`.
    async fn plan_output(
        session: &SessionContext,
        sql: &TransformSql,
    ) -> Result<DataFrame, EngineError> {
        let steps = sql.steps().map_err(invalid)?;
        let last = steps.len() - 1;
        for (index, step) in steps.into_iter().enumerate() {
            let frame = session.sql(step.query).await.map_err(invalid)?;
            let Some(alias) = step.alias.filter(|_| index < last) else {
                return Ok(frame);
            };
            let _ = session.deregister_table(TableReference::bare(alias));
            session
                .register_table(TableReference::bare(alias), frame.into_view())
                .map_err(invalid)?;
        }
        unreachable!("the loop returns at the output step")
    }

    async fn bind_view(
        session: &SessionContext,
        alias: &str,
        sql: String,
    ) -> Result<(), EngineError> {
        let _ = session.deregister_table(TableReference::bare(alias));
        let view = session.sql(&sql).await.map_err(internal)?.into_view();
        session
            .register_table(TableReference::bare(alias), view)
            .map_err(internal)?;
        Ok(())
    }

    async fn run_row_by_row(
        &self,
        session: &SessionContext,
        request: &TransformRequest,
    ) -> Result<(SchemaRef, OutputRecords), EngineError> {
        let input = &request.query_inputs[0];
        let Some(interval) = &input.offset_interval else {
            let frame = Self::plan_output(session, &request.transform).await?;
            return Ok((
                Arc::new(frame.schema().as_arrow().clone()),
                OutputRecords::Batches(Vec::new()),
            ));
        };
        // The data files hold everything up to `interval.end`; only earlier records need a
        // filter, and only a mix of appends and retractions needs two passes.
        let in_interval = if interval.start == 0 {
            None
        } else {
            Some(format!("\"{OFFSET_COLUMN}\" >= {}", interval.start))
        };
        let retractions = count_retractions(session, in_interval.as_deref()).await?;
        let passes: &[(&str, OperationType)] = if retractions == 0 {
            &[("", OperationType::Append)]
        } else {
            &[
                ("0, 3", OperationType::Append),
                ("1, 2", OperationType::Retract),
            ]
        };
        let mut schema = None;
        let mut streams = Vec::with_capacity(passes.len());
        // Appends and corrections to, then retractions and corrections from: a row-by-row query
        // maps each to the same kind of change of its output row. Each pass is planned (its
        // view bound) before the next, and runs while the coordinator writes its records.
        for (ops, op) in passes {
            let conditions: Vec<String> = in_interval
                .iter()
                .cloned()
                .chain((!ops.is_empty()).then(|| format!("\"{OPERATION_TYPE_COLUMN}\" IN ({ops})")))
                .collect();
            let filter = if conditions.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", conditions.join(" AND "))
            };
            Self::bind_view(
                session,
                &input.query_alias,
                format!("SELECT * FROM __raw_0{filter}"),
            )
            .await?;
            let frame = Self::plan_output(session, &request.transform).await?;
            let frame_schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
            let op = i32::from(op.as_repr());
            let stream = frame
                .execute_stream()
                .await
                .map_err(internal)?
                .try_filter(|batch| futures::future::ready(batch.num_rows() > 0))
                .map(move |batch| {
                    let batch = batch.map_err(internal)?;
                    let ops = Int32Array::from_value(op, batch.num_rows());
                    with_op_column(&batch, ops).map_err(internal)
                });
            streams.push(stream);
            schema = Some(frame_schema);
        }
        let records = futures::stream::iter(streams).flatten().boxed();
        Ok((
            schema.expect("ran at least once"),
            OutputRecords::Stream(records),
        ))
    }

    async fn run_stateful(
        &self,
        session: &SessionContext,
        store: &DatasetStore,
        request: &TransformRequest,
        key_columns: &[String],
    ) -> Result<(SchemaRef, Vec<RecordBatch>, Vec<RecordBatch>, Maintenance), EngineError> {
        let started = std::time::Instant::now();
        let mut any_retractions = false;
        for (index, input) in request.query_inputs.iter().enumerate() {
            // No records yet: the view over the (empty) raw table stays bound. Otherwise every
            // data file is wholly part of the step.
            if input.data_files.is_empty() {
                continue;
            }
            let _ = session.deregister_table(TableReference::bare(input.query_alias.as_str()));
            let frame = session
                .sql(&format!("SELECT * FROM __raw_{index}"))
                .await
                .map_err(internal)?;
            let retractions = session
                .sql(&format!(
                    "SELECT count(*) FROM __raw_{index} WHERE \"{OPERATION_TYPE_COLUMN}\" <> 0"
                ))
                .await
                .map_err(internal)?
                .collect()
                .await
                .map_err(internal)?;
            let has_retractions = retractions
                .first()
                .and_then(|batch| {
                    batch
                        .column(0)
                        .as_any()
                        .downcast_ref::<arrow::array::Int64Array>()
                        .map(|counts| counts.value(0) > 0)
                })
                .unwrap_or(false);
            any_retractions |= has_retractions;
            if has_retractions {
                // Retractions apply in offset order.
                let frame = frame
                    .sort(vec![
                        datafusion::prelude::col(format!("\"{OFFSET_COLUMN}\"")).sort(true, false),
                    ])
                    .map_err(internal)?;
                let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
                let batches = frame.collect().await.map_err(internal)?;
                let current = current_records(&schema, &batches).map_err(internal)?;
                let table = MemTable::try_new(schema, vec![vec![current]]).map_err(internal)?;
                session
                    .register_table(
                        TableReference::bare(input.query_alias.as_str()),
                        Arc::new(table),
                    )
                    .map_err(internal)?;
            } else {
                session
                    .register_table(
                        TableReference::bare(input.query_alias.as_str()),
                        frame.into_view(),
                    )
                    .map_err(internal)?;
            }
        }
        let frame = Self::plan_output(session, &request.transform).await?;
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let previous = match &request.prev_checkpoint {
            Some(hash) => {
                let bytes = store
                    .dataset(&request.dataset_id)
                    .get_checkpoint(hash)
                    .await
                    .map_err(internal)?;
                let batches = read_slice(bytes).map_err(internal)?;
                // A checkpoint of a row-by-row run, or of another query, holds no usable state.
                if batches
                    .first()
                    .is_some_and(|b| b.schema().fields() != schema.fields())
                {
                    return Err(EngineError::InvalidQuery(
                        "the previous checkpoint holds another query's results; reset the dataset to recompute it".to_string(),
                    ));
                }
                Some(batches)
            }
            None => None,
        };
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            any_retractions,
            "stateful step: inputs bound, previous result read"
        );
        if let Some(previous) = &previous
            && request.query_inputs.len() == 1
            && !any_retractions
        {
            let plan =
                incremental::distinct_as_aggregate(frame.logical_plan()).map_err(internal)?;
            if let Some(grouped) = incremental::grouped(&plan) {
                return self
                    .run_group_by_group(session, request, plan, previous, &grouped, key_columns)
                    .await;
            }
        }
        let previous = previous.unwrap_or_default();
        let next = frame.collect().await.map_err(internal)?;
        let changes = difference(&schema, &previous, &next, key_columns).map_err(internal)?;
        Ok((schema, vec![changes], next, Maintenance::Full))
    }

    /// A step of a grouped aggregation over one append-only input (`incremental`): only the
    /// groups the new records touch are computed again and compared with their previous rows.
    async fn run_group_by_group(
        &self,
        session: &SessionContext,
        request: &TransformRequest,
        full: LogicalPlan,
        previous: &[RecordBatch],
        grouped: &incremental::Grouped,
        key_columns: &[String],
    ) -> Result<(SchemaRef, Vec<RecordBatch>, Vec<RecordBatch>, Maintenance), EngineError> {
        let schema: SchemaRef = Arc::new(full.schema().as_arrow().clone());
        let input = &request.query_inputs[0];
        let Some(interval) = &input.offset_interval else {
            return Ok((
                schema,
                Vec::new(),
                previous.to_vec(),
                Maintenance::GroupByGroup,
            ));
        };
        // The groups the new records fall in: the query's GROUP BY over them alone.
        Self::bind_view(
            session,
            &input.query_alias,
            format!(
                "SELECT * FROM __raw_0 WHERE \"{OFFSET_COLUMN}\" BETWEEN {} AND {}",
                interval.start, interval.end
            ),
        )
        .await?;
        let delta = Self::plan_output(session, &request.transform).await?;
        let delta = incremental::distinct_as_aggregate(delta.logical_plan()).map_err(internal)?;
        let started = std::time::Instant::now();
        let touched = incremental::group_values(session, &delta)
            .await
            .map_err(internal)?;
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            groups = touched.num_rows(),
            "group by group: touched groups found"
        );
        Self::bind_view(
            session,
            &input.query_alias,
            "SELECT * FROM __raw_0".to_string(),
        )
        .await?;
        if touched.num_rows() == 0 {
            return Ok((
                schema,
                Vec::new(),
                previous.to_vec(),
                Maintenance::GroupByGroup,
            ));
        }
        let plan = incremental::only_groups(&full, &touched).map_err(internal)?;
        let next = session
            .execute_logical_plan(plan)
            .await
            .map_err(internal)?
            .collect()
            .await
            .map_err(internal)?;
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "group by group: touched groups computed"
        );
        let (was, others) =
            incremental::split_by_groups(&schema, previous, &grouped.key_outputs, &touched)
                .map_err(internal)?;
        let changes = difference(&schema, &[was], &next, key_columns).map_err(internal)?;
        let mut state = vec![others];
        state.extend(next);
        Ok((schema, vec![changes], state, Maintenance::GroupByGroup))
    }
}

#[async_trait::async_trait]
impl Engine for DataFusionEngine {
    fn identity(&self) -> EngineIdentity {
        EngineIdentity {
            name: ENGINE_NAME.to_string(),
            version: engine_version(),
        }
    }

    async fn execute_transform(
        &self,
        store: &DatasetStore,
        request: TransformRequest,
    ) -> Result<TransformOutput, EngineError> {
        if !request.transform.engine.eq_ignore_ascii_case("datafusion") {
            return Err(EngineError::InvalidQuery(format!(
                "engine `{}` is not served here (only `datafusion`)",
                request.transform.engine
            )));
        }
        let session = deterministic_session();
        register_store(&session, store);
        for (index, input) in request.query_inputs.iter().enumerate() {
            let source = TableSource {
                block_hash: None,
                schema: input.schema.clone(),
                files: input.data_files.clone(),
                num_records: 0,
            };
            let table =
                offset_ordered_table_from_source(store, &store.dataset(&input.dataset_id), &source)
                    .map_err(internal)?;
            session
                .register_table(format!("__raw_{index}"), table)
                .map_err(internal)?;
            Self::bind_view(
                &session,
                &input.query_alias,
                format!("SELECT * FROM __raw_{index}"),
            )
            .await?;
        }
        let shape = {
            let frame = Self::plan_output(&session, &request.transform).await?;
            check_output_columns(frame.schema().as_arrow())?;
            classify(frame.logical_plan()).map_err(EngineError::InvalidQuery)?
        };
        let (schema, records, state, maintenance) = match &shape {
            QueryShape::RowByRow => {
                let (schema, records) = self.run_row_by_row(&session, &request).await?;
                (schema, records, Vec::new(), Maintenance::RowByRow)
            }
            QueryShape::Stateful { key_columns } => {
                let (schema, records, state, maintenance) = self
                    .run_stateful(&session, store, &request, key_columns)
                    .await?;
                let records = records.into_iter().filter(|b| b.num_rows() > 0).collect();
                (schema, OutputRecords::Batches(records), state, maintenance)
            }
        };
        let checkpoint = write_checkpoint(&schema, &state, &self.identity()).map_err(internal)?;
        Ok(TransformOutput {
            records,
            schema: Some(schema),
            checkpoint,
            maintenance,
        })
    }
}

/// The output needs `event_time` and must leave `offset`, `op` and `system_time` to Weir.
pub fn check_output_columns(schema: &arrow::datatypes::Schema) -> Result<(), EngineError> {
    for reserved in [OFFSET_COLUMN, OPERATION_TYPE_COLUMN, SYSTEM_TIME_COLUMN] {
        if schema.field_with_name(reserved).is_ok() {
            return Err(EngineError::InvalidQuery(format!(
                "the query outputs `{reserved}`, which the transform assigns; select the columns you need (or `* EXCLUDE (\"offset\", op, system_time)`)"
            )));
        }
    }
    match schema.field_with_name(EVENT_TIME_COLUMN) {
        Ok(field) if matches!(field.data_type(), arrow::datatypes::DataType::Timestamp(..)) => {
            Ok(())
        }
        Ok(field) => Err(EngineError::InvalidQuery(format!(
            "the output's `{EVENT_TIME_COLUMN}` must be a timestamp, not {}",
            field.data_type()
        ))),
        Err(_) => Err(EngineError::InvalidQuery(format!(
            "the query must output an `{EVENT_TIME_COLUMN}` column (a timestamp)"
        ))),
    }
}

/// Retractions and corrections-from (`op` 1 and 2) among the records of `__raw_0` that pass
/// `filter`; reads only the `op` and `offset` columns.
async fn count_retractions(
    session: &SessionContext,
    filter: Option<&str>,
) -> Result<i64, EngineError> {
    let filter = filter.map(|f| format!(" AND {f}")).unwrap_or_default();
    let batches = session
        .sql(&format!(
            "SELECT count(*) FROM __raw_0 WHERE \"{OPERATION_TYPE_COLUMN}\" IN (1, 2){filter}"
        ))
        .await
        .map_err(internal)?
        .collect()
        .await
        .map_err(internal)?;
    Ok(batches
        .first()
        .and_then(|batch| {
            batch
                .column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .map(|counts| counts.value(0))
        })
        .unwrap_or(0))
}

/// A checkpoint: the state as Parquet, naming the engine that wrote it.
fn write_checkpoint(
    schema: &SchemaRef,
    state: &[RecordBatch],
    engine: &EngineIdentity,
) -> Result<Bytes, parquet::errors::ParquetError> {
    let properties = WriterProperties::builder()
        .set_key_value_metadata(Some(vec![
            KeyValue::new(ENGINE_NAME_KEY.to_string(), engine.name.clone()),
            KeyValue::new(ENGINE_VERSION_KEY.to_string(), engine.version.clone()),
        ]))
        .build();
    let mut buffer = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buffer, schema.clone(), Some(properties))?;
    for batch in state {
        writer.write(batch)?;
    }
    writer.close()?;
    Ok(Bytes::from(buffer))
}
