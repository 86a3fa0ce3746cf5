//! The changelog model of ODF (spec "Retractions and Corrections"): an input's records with
//! retractions applied, and the difference between two results as retractions (-R), corrections
//! (-C/+C) and appends (+A).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, RecordBatch};
use arrow::compute::{concat_batches, interleave_record_batch, take_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::row::{RowConverter, SortField};
use weir_dataset::slices::{OFFSET_COLUMN, OPERATION_TYPE_COLUMN, SYSTEM_TIME_COLUMN};
use weir_odf::OperationType;

fn op_value(op: OperationType) -> i32 {
    i32::from(op.as_repr())
}

/// Whether an `op` value adds a record (+A, +C) or removes one (-R, -C).
fn adds(op: i32) -> bool {
    op == op_value(OperationType::Append) || op == op_value(OperationType::CorrectTo)
}

/// The records of a changelog that are current after applying its retractions and corrections
/// in offset order: a -R or -C removes the latest live record equal to it in every column but
/// `offset`, `op` and `system_time`. Surviving records keep their system columns.
pub fn current_records(
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<RecordBatch, ArrowError> {
    let all = concat_batches(schema, batches)?;
    let Some(ops) = all.column_by_name(OPERATION_TYPE_COLUMN) else {
        return Ok(all);
    };
    let ops = arrow::compute::cast(ops, &DataType::Int32)?;
    let ops = ops
        .as_any()
        .downcast_ref::<Int32Array>()
        .ok_or_else(|| ArrowError::SchemaError("`op` is not an integer".to_string()))?;
    if ops.values().iter().all(|op| adds(*op)) {
        return Ok(all);
    }
    let value_columns = value_columns(schema);
    let values = all.project(&value_columns)?;
    let converter = row_converter(values.schema().fields())?;
    let rows = converter.convert_columns(values.columns())?;
    let mut live: HashMap<&[u8], Vec<u32>> = HashMap::new();
    let mut keep = vec![false; all.num_rows()];
    for (index, row) in rows.iter().enumerate() {
        let entry = live.entry(row.data()).or_default();
        if adds(ops.value(index)) {
            entry.push(index as u32);
            keep[index] = true;
        } else if let Some(retracted) = entry.pop() {
            keep[retracted as usize] = false;
        }
    }
    let indices = arrow::array::UInt32Array::from_iter_values(
        keep.iter()
            .enumerate()
            .filter(|(_, kept)| **kept)
            .map(|(index, _)| index as u32),
    );
    take_record_batch(&all, &indices)
}

/// Indices of the columns that hold a record's values: all but `offset`, `op` and
/// `system_time`.
pub fn value_columns(schema: &Schema) -> Vec<usize> {
    schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            !matches!(
                f.name().as_str(),
                OFFSET_COLUMN | OPERATION_TYPE_COLUMN | SYSTEM_TIME_COLUMN
            )
        })
        .map(|(index, _)| index)
        .collect()
}

/// The changes that turn `previous` into `next` (both without system columns, same schema), as
/// one batch with an `op` column first. Rows are ordered by key, then by value, so the result is
/// the same on every run. A key with rows both removed and added gets -C/+C pairs.
pub fn difference(
    schema: &SchemaRef,
    previous: &[RecordBatch],
    next: &[RecordBatch],
    key_columns: &[String],
) -> Result<RecordBatch, ArrowError> {
    let previous = concat_batches(schema, previous)?;
    let next = concat_batches(schema, next)?;
    let converter = row_converter(schema.fields())?;
    let previous_rows = converter.convert_columns(previous.columns())?;
    let next_rows = converter.convert_columns(next.columns())?;

    // Full row -> (rows of previous, rows of next) with that value.
    let mut counts: HashMap<&[u8], (Vec<usize>, Vec<usize>)> = HashMap::new();
    for (index, row) in previous_rows.iter().enumerate() {
        counts.entry(row.data()).or_default().0.push(index);
    }
    for (index, row) in next_rows.iter().enumerate() {
        counts.entry(row.data()).or_default().1.push(index);
    }
    let key_indices: Vec<usize> = key_columns
        .iter()
        .filter_map(|name| schema.index_of(name).ok())
        .collect();
    let (previous_keys, next_keys) = if key_indices.is_empty() {
        (None, None)
    } else {
        let fields: arrow::datatypes::Fields = key_indices
            .iter()
            .map(|index| Arc::new(schema.field(*index).clone()))
            .collect();
        let key_converter = row_converter(&fields)?;
        let key_rows = |batch: &RecordBatch| {
            let columns: Vec<ArrayRef> = key_indices
                .iter()
                .map(|index| batch.column(*index).clone())
                .collect();
            key_converter.convert_columns(&columns)
        };
        (Some(key_rows(&previous)?), Some(key_rows(&next)?))
    };

    // Key (the whole row without keys) -> (removed, added), each sorted by row value.
    type Changes = (Vec<(Vec<u8>, usize)>, Vec<(Vec<u8>, usize)>);
    let mut by_key: BTreeMap<Vec<u8>, Changes> = BTreeMap::new();
    for (row, (before, after)) in counts {
        let common = before.len().min(after.len());
        for index in &before[common..] {
            let key = previous_keys
                .as_ref()
                .map_or_else(|| row.to_vec(), |keys| keys.row(*index).as_ref().to_vec());
            by_key
                .entry(key)
                .or_default()
                .0
                .push((row.to_vec(), *index));
        }
        for index in &after[common..] {
            let key = next_keys
                .as_ref()
                .map_or_else(|| row.to_vec(), |keys| keys.row(*index).as_ref().to_vec());
            by_key
                .entry(key)
                .or_default()
                .1
                .push((row.to_vec(), *index));
        }
    }
    // (source batch: 0 = previous, 1 = next, row), op
    let mut picks: Vec<(usize, usize)> = Vec::new();
    let mut ops: Vec<i32> = Vec::new();
    for (_, (mut removed, mut added)) in by_key {
        removed.sort();
        added.sort();
        let pairs = if key_indices.is_empty() {
            0
        } else {
            removed.len().min(added.len())
        };
        for ((_, old), (_, new)) in removed.iter().zip(&added).take(pairs) {
            picks.push((0, *old));
            ops.push(op_value(OperationType::CorrectFrom));
            picks.push((1, *new));
            ops.push(op_value(OperationType::CorrectTo));
        }
        for (_, old) in &removed[pairs..] {
            picks.push((0, *old));
            ops.push(op_value(OperationType::Retract));
        }
        for (_, new) in &added[pairs..] {
            picks.push((1, *new));
            ops.push(op_value(OperationType::Append));
        }
    }
    let changed = interleave_record_batch(&[&previous, &next], &picks)?;
    with_op_column(&changed, Int32Array::from(ops))
}

/// `batch` with an `op` column first.
pub fn with_op_column(batch: &RecordBatch, ops: Int32Array) -> Result<RecordBatch, ArrowError> {
    let mut fields = vec![Arc::new(Field::new(
        OPERATION_TYPE_COLUMN,
        DataType::Int32,
        false,
    ))];
    fields.extend(batch.schema().fields().iter().cloned());
    let mut columns: Vec<ArrayRef> = vec![Arc::new(ops)];
    columns.extend(batch.columns().iter().cloned());
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

fn row_converter(fields: &arrow::datatypes::Fields) -> Result<RowConverter, ArrowError> {
    RowConverter::new(
        fields
            .iter()
            .map(|f| SortField::new(f.data_type().clone()))
            .collect(),
    )
}
