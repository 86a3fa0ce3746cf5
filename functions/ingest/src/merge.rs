//! Merge strategies: how new records combine with the dataset's history.
//!
//! Input records are conformed to the dataset's columns and carry `event_time`; the output adds
//! an `op` column (see `OperationType`) in the order the rows must be appended:
//! - Append: every row as append.
//! - Ledger: rows whose primary key was never seen before.
//! - Snapshot: change data capture against the current state (last non-retracted row per key):
//!   new keys append, vanished keys retract (with their old values), changed rows emit
//!   correct-from (old) immediately followed by correct-to (new).
//! - ChangelogStream: rows carry their own `op` (0-3 or `+A`, `-R`, `-C`, `+C`).
//! - UpsertStream: rows are upserts (or retractions when `op` says so); the last row per key wins.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int32Array, RecordBatch, StringArray, UInt64Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use weir_dataset::slices::{EVENT_TIME_COLUMN, OPERATION_TYPE_COLUMN};
use weir_odf::MergeStrategy;

use crate::error::IngestError;

const ROW: &str = "__weir_row";

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn merge_error(error: impl std::fmt::Display) -> IngestError {
    IngestError::Merge(error.to_string())
}

/// Normalizes an `op` column of ints or short codes into Int32 codes: 0-3 for changelogs, and
/// for upserts 0 (upsert, also when null) or 1 (retract).
fn normalize_op(column: &ArrayRef, allow_changes: bool) -> Result<ArrayRef, IngestError> {
    let codes: Vec<Option<i32>> = match column.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let strings = cast(column, &DataType::Utf8).map_err(merge_error)?;
            let strings = strings
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("cast to utf8");
            strings
                .iter()
                .map(|value| {
                    value
                        .map(|v| match v.trim().to_ascii_lowercase().as_str() {
                            "+a" | "append" | "0" => Ok(0),
                            "-r" | "retract" | "1" => Ok(1),
                            "-c" | "correct-from" | "2" => Ok(2),
                            "+c" | "correct-to" | "3" => Ok(3),
                            other => Err(IngestError::BadValue(format!(
                                "column `op`: unknown operation `{other}`"
                            ))),
                        })
                        .transpose()
                })
                .collect::<Result<_, _>>()?
        }
        _ => {
            let ints = cast(column, &DataType::Int32)
                .map_err(|error| IngestError::BadValue(format!("column `op`: {error}")))?;
            ints.as_any()
                .downcast_ref::<Int32Array>()
                .expect("cast to int32")
                .iter()
                .collect()
        }
    };
    let max = if allow_changes { 3 } else { 1 };
    let mut values = Vec::with_capacity(codes.len());
    for (index, code) in codes.into_iter().enumerate() {
        match code {
            Some(code) if (0..=max).contains(&code) => values.push(code),
            Some(code) => {
                return Err(IngestError::BadValue(format!(
                    "column `op`, row {}: operation {code} is not allowed here",
                    index + 1
                )));
            }
            None if !allow_changes => values.push(0),
            None => {
                return Err(IngestError::BadValue(format!(
                    "column `op`, row {}: must not be null",
                    index + 1
                )));
            }
        }
    }
    Ok(Arc::new(Int32Array::from(values)))
}

fn with_op(batch: &RecordBatch, op: ArrayRef) -> Result<RecordBatch, IngestError> {
    let mut fields: Vec<Arc<Field>> = vec![Arc::new(Field::new(
        OPERATION_TYPE_COLUMN,
        DataType::Int32,
        false,
    ))];
    let mut columns = vec![op];
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if field.name() == OPERATION_TYPE_COLUMN {
            continue;
        }
        fields.push(field.clone());
        columns.push(column.clone());
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(merge_error)
}

fn constant_op(batch: &RecordBatch, op: i32) -> Result<RecordBatch, IngestError> {
    with_op(
        batch,
        Arc::new(Int32Array::from_value(op, batch.num_rows())),
    )
}

/// Adds a row-number column so SQL can restore input order.
fn numbered(
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<(SchemaRef, Vec<RecordBatch>), IngestError> {
    let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new(ROW, DataType::UInt64, false)));
    let numbered_schema = Arc::new(Schema::new(fields));
    let mut next = 0u64;
    let mut out = Vec::with_capacity(batches.len());
    for batch in batches {
        let rows = batch.num_rows() as u64;
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(UInt64Array::from_iter_values(next..next + rows)));
        next += rows;
        out.push(RecordBatch::try_new(numbered_schema.clone(), columns).map_err(merge_error)?);
    }
    Ok((numbered_schema, out))
}

/// Whether `strategy` takes each record on its own (Append, ChangelogStream), so records can
/// be merged batch by batch as they arrive, without the dataset's history.
pub fn merges_per_batch(strategy: &MergeStrategy) -> bool {
    matches!(
        strategy,
        MergeStrategy::Append(_) | MergeStrategy::ChangelogStream(_)
    )
}

/// Merges one batch under a strategy for which [`merges_per_batch`] holds.
pub fn merge_batch(
    strategy: &MergeStrategy,
    batch: &RecordBatch,
) -> Result<RecordBatch, IngestError> {
    match strategy {
        MergeStrategy::Append(_) => constant_op(batch, 0),
        MergeStrategy::ChangelogStream(strategy) => {
            for key in &strategy.primary_key {
                if batch.column_by_name(key).is_none() {
                    return Err(IngestError::BadValue(format!(
                        "primary key column `{key}` is missing from the input"
                    )));
                }
            }
            let column = batch.column_by_name(OPERATION_TYPE_COLUMN).ok_or_else(|| {
                IngestError::BadValue("changelog stream records need an `op` column".to_string())
            })?;
            with_op(batch, normalize_op(column, true)?)
        }
        other => Err(IngestError::Internal(format!(
            "merge strategy {other:?} needs all records at once"
        ))),
    }
}

pub struct MergeInput<'a> {
    pub strategy: &'a MergeStrategy,
    /// New records: `event_time` and the data columns (and `op` for changelog/upsert streams).
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// The dataset's history, if it has any data.
    pub previous: Option<Arc<dyn TableProvider>>,
}

/// Applies the merge strategy; returns batches with an `op` column first.
pub async fn merge(input: MergeInput<'_>) -> Result<Vec<RecordBatch>, IngestError> {
    let data_columns: Vec<String> = input
        .schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|name| name != OPERATION_TYPE_COLUMN && name != EVENT_TIME_COLUMN)
        .collect();
    let check_keys = |keys: &[String]| -> Result<(), IngestError> {
        if keys.is_empty() {
            return Err(IngestError::Unsupported(
                "merge strategy needs a primary key".to_string(),
            ));
        }
        for key in keys {
            // `event_time` is always there: time-series ledgers are keyed by entity and time.
            if !data_columns.contains(key) && key != EVENT_TIME_COLUMN {
                return Err(IngestError::BadValue(format!(
                    "primary key column `{key}` is missing from the input"
                )));
            }
        }
        Ok(())
    };
    match input.strategy {
        MergeStrategy::Append(_) | MergeStrategy::ChangelogStream(_) => {
            if let MergeStrategy::ChangelogStream(strategy) = input.strategy {
                check_keys(&strategy.primary_key)?;
            }
            input
                .batches
                .iter()
                .map(|batch| merge_batch(input.strategy, batch))
                .collect()
        }
        MergeStrategy::Ledger(strategy) => {
            check_keys(&strategy.primary_key)?;
            let mut columns = vec![format!("i.{}", quote(EVENT_TIME_COLUMN))];
            columns.extend(data_columns.iter().map(|c| format!("i.{}", quote(c))));
            let columns = columns.join(", ");
            let sql = |keys: &str| {
                format!(
                    "SELECT 0 AS op, {columns} FROM input i LEFT ANTI JOIN prev p ON {keys} ORDER BY i.{row}",
                    row = quote(ROW)
                )
            };
            run_keyed(input, &strategy.primary_key.clone(), sql).await
        }
        MergeStrategy::Snapshot(strategy) => {
            check_keys(&strategy.primary_key)?;
            let compare = strategy.compare_columns.clone().unwrap_or_else(|| {
                data_columns
                    .iter()
                    .filter(|c| !strategy.primary_key.contains(c))
                    .cloned()
                    .collect()
            });
            cdc(
                input,
                &strategy.primary_key.clone(),
                &compare,
                &data_columns,
                true,
            )
            .await
        }
        MergeStrategy::UpsertStream(strategy) => {
            check_keys(&strategy.primary_key)?;
            let compare: Vec<String> = data_columns
                .iter()
                .filter(|c| !strategy.primary_key.contains(c))
                .cloned()
                .collect();
            cdc(
                input,
                &strategy.primary_key.clone(),
                &compare,
                &data_columns,
                false,
            )
            .await
        }
    }
}

fn key_condition(keys: &[String], left: &str, right: &str) -> String {
    keys.iter()
        .map(|k| format!("{left}.{q} = {right}.{q}", q = quote(k)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

async fn session_with_input(
    input: &MergeInput<'_>,
    batches: &[RecordBatch],
) -> Result<SessionContext, IngestError> {
    let session = SessionContext::new();
    let (schema, numbered) = numbered(&input.schema, batches)?;
    let table = MemTable::try_new(schema, vec![numbered]).map_err(merge_error)?;
    session
        .register_table("input", Arc::new(table))
        .map_err(merge_error)?;
    Ok(session)
}

async fn collect(session: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, IngestError> {
    session
        .sql(sql)
        .await
        .map_err(merge_error)?
        .collect()
        .await
        .map_err(merge_error)
}

/// Strategies that only filter new rows against the history.
async fn run_keyed(
    input: MergeInput<'_>,
    keys: &[String],
    sql: impl Fn(&str) -> String,
) -> Result<Vec<RecordBatch>, IngestError> {
    let Some(previous) = input.previous.clone() else {
        return input.batches.iter().map(|b| constant_op(b, 0)).collect();
    };
    let session = session_with_input(&input, &input.batches).await?;
    session
        .register_table("prev", previous)
        .map_err(merge_error)?;
    collect(&session, &sql(&key_condition(keys, "i", "p"))).await
}

/// Change data capture against the current state of the history (Snapshot and UpsertStream).
async fn cdc(
    input: MergeInput<'_>,
    keys: &[String],
    compare: &[String],
    data_columns: &[String],
    snapshot: bool,
) -> Result<Vec<RecordBatch>, IngestError> {
    // Upserts: normalize `op` (0 upsert, 1 retract) and keep the last row per key.
    let mut batches = input.batches.clone();
    let mut schema = input.schema.clone();
    let has_op = schema.field_with_name(OPERATION_TYPE_COLUMN).is_ok();
    if !snapshot {
        if has_op {
            batches = batches
                .iter()
                .map(|batch| {
                    let column = batch
                        .column_by_name(OPERATION_TYPE_COLUMN)
                        .expect("schema has op");
                    with_op(batch, normalize_op(column, false)?)
                })
                .collect::<Result<_, _>>()?;
        } else {
            batches = batches
                .iter()
                .map(|b| constant_op(b, 0))
                .collect::<Result<_, _>>()?;
        }
        schema = batches.first().map(|b| b.schema()).unwrap_or(schema);
    }
    let input = MergeInput {
        strategy: input.strategy,
        schema,
        batches,
        previous: input.previous,
    };
    let session = session_with_input(&input, &input.batches).await?;
    let row = quote(ROW);
    let partition = keys.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ");
    let mut columns = vec![quote(EVENT_TIME_COLUMN)];
    columns.extend(data_columns.iter().map(|c| quote(c)));
    let select = |alias: &str| {
        columns
            .iter()
            .map(|c| format!("{alias}.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    };

    let new_rows = if snapshot {
        "SELECT * FROM input".to_string()
    } else {
        format!(
            "SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY {row} DESC) AS __weir_rank FROM input) WHERE __weir_rank = 1"
        )
    };
    let state = match &input.previous {
        Some(previous) => {
            session
                .register_table("prev", previous.clone())
                .map_err(merge_error)?;
            format!(
                "SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY \"offset\" DESC) AS __weir_rank FROM prev) WHERE __weir_rank = 1 AND op IN (0, 3)"
            )
        }
        None => {
            // No history: an empty state with the input's columns.
            format!(
                "SELECT {}, CAST(0 AS BIGINT) AS \"offset\" FROM input WHERE false",
                select("input")
            )
        }
    };
    let upsert_filter = if snapshot {
        String::new()
    } else {
        " AND i.op = 0".to_string()
    };
    let retract_filter = if snapshot {
        String::new()
    } else {
        " AND i.op = 1".to_string()
    };
    let changed = if compare.is_empty() {
        "false".to_string()
    } else {
        compare
            .iter()
            .map(|c| format!("i.{q} IS DISTINCT FROM s.{q}", q = quote(c)))
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    let on = key_condition(keys, "i", "s");
    let removed = if snapshot {
        format!(
            "SELECT 1 AS op, {s_cols}, 1 AS __g, CAST(s.\"offset\" AS BIGINT) AS __o1, 0 AS __o2 FROM state s LEFT ANTI JOIN new_rows i ON {on}",
            s_cols = select("s")
        )
    } else {
        format!(
            "SELECT 1 AS op, {s_cols}, 0 AS __g, CAST(i.{row} AS BIGINT) AS __o1, 0 AS __o2 FROM new_rows i JOIN state s ON {on} WHERE true{retract_filter}",
            s_cols = select("s")
        )
    };
    let sql = format!(
        "WITH new_rows AS ({new_rows}), state AS ({state})
         SELECT op, {cols} FROM (
           SELECT 0 AS op, {i_cols}, 0 AS __g, CAST(i.{row} AS BIGINT) AS __o1, 0 AS __o2
             FROM new_rows i LEFT ANTI JOIN state s ON {on} WHERE true{upsert_filter}
           UNION ALL
           SELECT 2 AS op, {s_cols}, 0 AS __g, CAST(i.{row} AS BIGINT) AS __o1, 0 AS __o2
             FROM new_rows i JOIN state s ON {on} WHERE ({changed}){upsert_filter}
           UNION ALL
           SELECT 3 AS op, {i_cols}, 0 AS __g, CAST(i.{row} AS BIGINT) AS __o1, 1 AS __o2
             FROM new_rows i JOIN state s ON {on} WHERE ({changed}){upsert_filter}
           UNION ALL
           {removed}
         ) ORDER BY __g, __o1, __o2",
        cols = columns.join(", "),
        i_cols = select("i"),
        s_cols = select("s"),
    );
    collect(&session, &sql).await
}
