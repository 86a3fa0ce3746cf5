//! Data slices: Arrow record batches with the ODF system columns, written as Parquet, with the
//! logical hash (`arrow0-sha3-256`, RFC-002) and the physical hash (SHA3-256 of the file).
//!
//! System columns come first: `offset` (UInt64), `op` (Int32, see `OperationType`),
//! `system_time` and `event_time` (Timestamp(ms, UTC)), then the data columns.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Int32Array, RecordBatch, TimestampMillisecondArray, UInt64Array,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow_digest::{RecordDigest, RecordDigestV0};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use weir_odf::{HashAlgorithm, Multihash, OffsetInterval, OperationType};

use crate::error::SliceError;

pub const OFFSET_COLUMN: &str = "offset";
pub const OPERATION_TYPE_COLUMN: &str = "op";
pub const SYSTEM_TIME_COLUMN: &str = "system_time";
pub const EVENT_TIME_COLUMN: &str = "event_time";

/// A slice ready to be stored: Parquet bytes and everything an `AddData` block records of it.
#[derive(Debug, Clone)]
pub struct PreparedSlice {
    pub bytes: Bytes,
    pub physical_hash: Multihash,
    pub logical_hash: Multihash,
    pub offset_interval: OffsetInterval,
    pub max_event_time: Option<DateTime<Utc>>,
    pub schema: SchemaRef,
}

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// Arrow schema of a slice with the given data columns.
pub fn slice_schema(data_fields: &[Arc<Field>]) -> SchemaRef {
    let mut fields = vec![
        Arc::new(Field::new(OFFSET_COLUMN, DataType::UInt64, false)),
        Arc::new(Field::new(OPERATION_TYPE_COLUMN, DataType::Int32, false)),
        Arc::new(Field::new(SYSTEM_TIME_COLUMN, timestamp_type(), false)),
        Arc::new(Field::new(EVENT_TIME_COLUMN, timestamp_type(), false)),
    ];
    fields.extend(data_fields.iter().cloned());
    Arc::new(Schema::new(fields))
}

/// Logical hash of records, independent of how they are encoded in files.
pub fn logical_hash(schema: &Schema, batches: &[RecordBatch]) -> Multihash {
    let mut hasher = RecordDigestV0::<sha3_arrow_digest::Sha3_256>::new(schema);
    for batch in batches {
        hasher.update(batch);
    }
    let digest: [u8; 32] = hasher.finalize().into();
    Multihash::new(HashAlgorithm::Arrow0Sha3_256, digest)
}

/// Adds system columns to user `batches` and encodes them as one Parquet file.
///
/// Rows get offsets from `start_offset`, operation type `op` when the batch has such a column
/// (otherwise append), the given `system_time`, and the `event_time` column of the batch
/// (cast to milliseconds) or `default_event_time` when the batch has none.
pub fn prepare_slice(
    batches: &[RecordBatch],
    start_offset: u64,
    system_time: DateTime<Utc>,
    default_event_time: Option<DateTime<Utc>>,
) -> Result<Option<PreparedSlice>, SliceError> {
    let num_rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let Some(first) = batches.first() else {
        return Ok(None);
    };
    if num_rows == 0 {
        return Ok(None);
    }
    let input_schema = first.schema();
    let data_fields: Vec<Arc<Field>> = input_schema
        .fields()
        .iter()
        .filter(|f| {
            !matches!(
                f.name().as_str(),
                OFFSET_COLUMN | OPERATION_TYPE_COLUMN | SYSTEM_TIME_COLUMN | EVENT_TIME_COLUMN
            )
        })
        .cloned()
        .collect();
    let schema = slice_schema(&data_fields);

    let mut next_offset = start_offset;
    let mut output = Vec::with_capacity(batches.len());
    for batch in batches {
        if batch.schema().fields() != input_schema.fields() {
            return Err(SliceError::Schema(
                "all batches of a slice must have the same schema".to_string(),
            ));
        }
        let rows = batch.num_rows();
        let offsets: ArrayRef = Arc::new(UInt64Array::from_iter_values(
            next_offset..next_offset + rows as u64,
        ));
        next_offset += rows as u64;
        let ops: ArrayRef = match batch.column_by_name(OPERATION_TYPE_COLUMN) {
            Some(column) => cast(column, &DataType::Int32)?,
            None => Arc::new(Int32Array::from_value(
                i32::from(OperationType::Append.as_repr()),
                rows,
            )),
        };
        let system_times: ArrayRef = Arc::new(
            TimestampMillisecondArray::from_value(system_time.timestamp_millis(), rows)
                .with_timezone("UTC"),
        );
        let event_times: ArrayRef = match (
            batch.column_by_name(EVENT_TIME_COLUMN),
            default_event_time,
        ) {
            (Some(column), _) => cast(column, &timestamp_type()).map_err(|error| {
                SliceError::Schema(format!(
                    "column `{EVENT_TIME_COLUMN}` is not a timestamp: {error}"
                ))
            })?,
            (None, Some(default)) => Arc::new(
                TimestampMillisecondArray::from_value(default.timestamp_millis(), rows)
                    .with_timezone("UTC"),
            ),
            (None, None) => {
                return Err(SliceError::Schema(format!(
                    "records have no `{EVENT_TIME_COLUMN}` column and no default event time was given"
                )));
            }
        };
        let mut columns = vec![offsets, ops, system_times, event_times];
        for field in &data_fields {
            columns.push(
                batch.column_by_name(field.name()).cloned().ok_or_else(|| {
                    SliceError::Schema(format!("missing column `{}`", field.name()))
                })?,
            );
        }
        output.push(RecordBatch::try_new(schema.clone(), columns)?);
    }

    let max_event_time = output
        .iter()
        .filter_map(|batch| {
            let column = batch
                .column(3)
                .as_any()
                .downcast_ref::<TimestampMillisecondArray>()?;
            arrow::compute::max(column)
        })
        .max()
        .and_then(DateTime::<Utc>::from_timestamp_millis);

    // The logical hash and the Parquet encoding read the same batches: run them side by side.
    let (logical_hash, bytes) = std::thread::scope(|scope| {
        let hashing = scope.spawn(|| logical_hash(&schema, &output));
        let bytes = write_parquet(&schema, &output);
        (hashing.join(), bytes)
    });
    let logical_hash =
        logical_hash.map_err(|_| SliceError::Schema("logical hashing panicked".to_string()))?;
    let bytes = bytes?;
    let physical_hash = Multihash::sha3_256(&bytes);
    Ok(Some(PreparedSlice {
        bytes,
        physical_hash,
        logical_hash,
        offset_interval: OffsetInterval {
            start: start_offset,
            end: next_offset - 1,
        },
        max_event_time,
        schema,
    }))
}

fn write_parquet(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Bytes, SliceError> {
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_column_encoding(
            parquet::schema::types::ColumnPath::from(OFFSET_COLUMN),
            parquet::basic::Encoding::DELTA_BINARY_PACKED,
        )
        .set_column_dictionary_enabled(
            parquet::schema::types::ColumnPath::from(OFFSET_COLUMN),
            false,
        )
        .build();
    let mut buffer = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buffer, schema.clone(), Some(properties))?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.close()?;
    Ok(Bytes::from(buffer))
}

/// Decodes a Parquet data file into record batches.
pub fn read_slice(bytes: Bytes) -> Result<Vec<RecordBatch>, SliceError> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

/// Logical hash of a stored Parquet file (for validation of slices written by anyone).
pub fn logical_hash_of_parquet(bytes: Bytes) -> Result<Multihash, SliceError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?;
    let schema = builder.schema().clone();
    let batches = builder.build()?.collect::<Result<Vec<_>, _>>()?;
    Ok(logical_hash(&schema, &batches))
}
