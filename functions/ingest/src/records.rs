//! Shaping read records for a dataset: the `event_time` column, the dataset's columns and types.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, TimestampMillisecondArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, Utc};
use weir_dataset::slices::{
    EVENT_TIME_COLUMN, OFFSET_COLUMN, OPERATION_TYPE_COLUMN, SYSTEM_TIME_COLUMN,
};

use crate::error::IngestError;
use crate::read::conform;

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// Puts an `event_time` column (ms, UTC) first: cast when present, `default` when absent.
pub fn with_event_time(
    batch: &RecordBatch,
    default: DateTime<Utc>,
) -> Result<RecordBatch, IngestError> {
    let schema = batch.schema();
    for reserved in [OFFSET_COLUMN, SYSTEM_TIME_COLUMN] {
        if schema.field_with_name(reserved).is_ok() {
            return Err(IngestError::BadValue(format!(
                "column `{reserved}` is reserved for the system"
            )));
        }
    }
    let event_time: ArrayRef = match batch.column_by_name(EVENT_TIME_COLUMN) {
        Some(column) => {
            let cast = cast(column, &timestamp_type()).map_err(|error| {
                IngestError::BadValue(format!("column `{EVENT_TIME_COLUMN}`: {error}"))
            })?;
            if let Some(row) = crate::read::first_lost_in_cast(column, &cast) {
                return Err(IngestError::BadRecord {
                    record: row as u64 + 1,
                    column: EVENT_TIME_COLUMN.to_string(),
                    message: "the value is not a timestamp in years 1–9999".to_string(),
                });
            }
            if cast.null_count() > 0 {
                return Err(IngestError::BadValue(format!(
                    "column `{EVENT_TIME_COLUMN}` must not contain nulls"
                )));
            }
            cast
        }
        None => Arc::new(
            TimestampMillisecondArray::from_value(default.timestamp_millis(), batch.num_rows())
                .with_timezone("UTC"),
        ),
    };
    let mut columns = vec![event_time];
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if field.name() != EVENT_TIME_COLUMN {
            columns.push(column.clone());
        }
    }
    let batch = RecordBatch::try_new(schema_with_event_time(&schema), columns)
        .map_err(|error| IngestError::BadValue(error.to_string()))?;
    crate::read::check_temporal_ranges(&batch)?;
    Ok(batch)
}

/// The schema `with_event_time` gives records of `schema`.
pub fn schema_with_event_time(schema: &SchemaRef) -> SchemaRef {
    let mut fields = vec![Arc::new(Field::new(
        EVENT_TIME_COLUMN,
        timestamp_type(),
        false,
    ))];
    fields.extend(
        schema
            .fields()
            .iter()
            .filter(|f| f.name() != EVENT_TIME_COLUMN)
            .cloned(),
    );
    Arc::new(Schema::new(fields))
}

/// The dataset's columns (minus system columns) that new records are cast to.
pub struct DatasetColumns {
    target: SchemaRef,
}

impl DatasetColumns {
    /// Checks that records of `input` fit the dataset, naming the first column that does not.
    pub fn new(
        existing: &weir_odf::DataSchema,
        input: &SchemaRef,
        keep_op: bool,
    ) -> Result<Self, IngestError> {
        let arrow = weir_dataset::schema::schema_to_arrow(existing)
            .map_err(|error| IngestError::Internal(error.to_string()))?;
        let mut fields: Vec<Arc<Field>> = Vec::new();
        if keep_op && let Ok(op) = input.field_with_name(OPERATION_TYPE_COLUMN) {
            fields.push(Arc::new(op.clone()));
        }
        for field in arrow.fields() {
            if matches!(
                field.name().as_str(),
                OFFSET_COLUMN | OPERATION_TYPE_COLUMN | SYSTEM_TIME_COLUMN
            ) {
                continue;
            }
            fields.push(field.clone());
        }
        for field in input.fields() {
            let known = field.name() == OPERATION_TYPE_COLUMN
                || fields.iter().any(|f| f.name() == field.name());
            if !known {
                return Err(IngestError::BadValue(format!(
                    "column `{}` is not in the dataset schema",
                    field.name()
                )));
            }
        }
        Ok(Self {
            target: Arc::new(Schema::new(fields)),
        })
    }

    pub fn conform(&self, batch: &RecordBatch) -> Result<RecordBatch, IngestError> {
        conform(batch, &self.target)
    }

    /// The schema conformed records have when there are none to take it from.
    pub fn schema(&self) -> &SchemaRef {
        &self.target
    }
}

/// The new slice must have exactly the dataset's columns and types.
pub fn check_same_schema(
    existing: &weir_odf::DataSchema,
    slice: &Schema,
) -> Result<(), IngestError> {
    let arrow = weir_dataset::schema::schema_to_arrow(existing)
        .map_err(|error| IngestError::Internal(error.to_string()))?;
    let describe = |schema: &Schema| {
        schema
            .fields()
            .iter()
            .map(|f| format!("{}: {}", f.name(), f.data_type()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let same = arrow.fields().len() == slice.fields().len()
        && arrow
            .fields()
            .iter()
            .zip(slice.fields())
            .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
    if !same {
        return Err(IngestError::BadValue(format!(
            "records do not match the dataset schema: expected [{}], got [{}]",
            describe(&arrow),
            describe(slice)
        )));
    }
    Ok(())
}
