//! Data slices: Arrow record batches with the ODF system columns, written as Parquet (by
//! [`SliceWriter`]), with the logical hash (`arrow0-sha3-256`, RFC-002) and the physical hash
//! (SHA3-256 of the file).
//!
//! System columns come first: `offset` (UInt64), `op` (Int32, see `OperationType`),
//! `system_time` and `event_time` (Timestamp(ms, UTC)), then the data columns.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow_digest::{RecordDigest, RecordDigestV0};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use weir_odf::{HashAlgorithm, Multihash, OffsetInterval};

use crate::error::SliceError;
use crate::sha3_asm::Sha3_256;
pub use crate::slice_output::{SliceData, SliceUploadTarget, UPLOAD_PART_BYTES};
pub use crate::slice_writer::{ROW_GROUP_ROWS, SliceWriter};

pub const OFFSET_COLUMN: &str = "offset";
pub const OPERATION_TYPE_COLUMN: &str = "op";
pub const SYSTEM_TIME_COLUMN: &str = "system_time";
pub const EVENT_TIME_COLUMN: &str = "event_time";

/// A slice ready to be stored: its Parquet file and everything an `AddData` block records of it.
#[derive(Debug, Clone)]
pub struct PreparedSlice {
    pub data: SliceData,
    /// Bytes in the Parquet file.
    pub size: u64,
    pub physical_hash: Multihash,
    pub logical_hash: Multihash,
    pub offset_interval: OffsetInterval,
    pub max_event_time: Option<DateTime<Utc>>,
    pub schema: SchemaRef,
}

impl PreparedSlice {
    /// What an `AddData` or `ExecuteTransform` block records of the slice.
    pub fn data_slice(&self) -> weir_odf::DataSlice {
        weir_odf::DataSlice {
            logical_hash: self.logical_hash,
            physical_hash: self.physical_hash,
            offset_interval: self.offset_interval.clone(),
            size: self.size,
        }
    }
}

pub(crate) fn timestamp_type() -> DataType {
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
    let mut hasher = RecordDigestV0::<Sha3_256>::new(schema);
    for batch in batches {
        hasher.update(batch);
    }
    let digest: [u8; 32] = hasher.finalize().into();
    Multihash::new(HashAlgorithm::Arrow0Sha3_256, digest)
}

/// Adds system columns to user `batches` and encodes them as one Parquet file; see
/// [`SliceWriter`] for the columns and for writing batches as they arrive.
pub fn prepare_slice(
    batches: &[RecordBatch],
    start_offset: u64,
    system_time: DateTime<Utc>,
    default_event_time: Option<DateTime<Utc>>,
) -> Result<Option<PreparedSlice>, SliceError> {
    let mut writer = SliceWriter::new(start_offset, system_time, default_event_time);
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()
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
