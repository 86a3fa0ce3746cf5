//! Writing a data slice batch by batch: system columns are added as batches arrive, the logical
//! hash runs on its own thread, Parquet row groups are encoded as they fill, and the physical
//! hash is computed over the bytes as they are written. Memory holds at most one row group in
//! encoding, never the whole slice as Arrow arrays; the encoded file is kept in memory, or,
//! with an upload target, sent to storage part by part while the rest is encoded
//! (`slice_output`).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use arrow::array::{
    Array, ArrayRef, Int32Array, RecordBatch, TimestampMillisecondArray, UInt64Array,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, SchemaRef};
use arrow::row::{RowConverter, SortField};
use arrow_digest::{RecordDigest, RecordDigestV0};
use chrono::{DateTime, Utc};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use weir_odf::{HashAlgorithm, Multihash, OffsetInterval, OperationType};

use crate::error::SliceError;
use crate::sha3_asm::Sha3_256;
use crate::slice_output::{HashingOutput, SliceUploadTarget};
use crate::slices::{
    EVENT_TIME_COLUMN, OFFSET_COLUMN, OPERATION_TYPE_COLUMN, PreparedSlice, SYSTEM_TIME_COLUMN,
    slice_schema, timestamp_type,
};

/// Rows per Parquet row group of a slice (DuckDB's default is close: 122,880). Smaller groups
/// bound the writer's memory and let queries split a single slice across cores.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Batches queued for the logical-hash thread before the writer waits for it.
const HASH_QUEUE_BATCHES: usize = 8;

/// Adds system columns to user batches and encodes them as one Parquet file, incrementally.
///
/// Rows get offsets from `start_offset`, operation type from an `op` column when the batch has
/// one (otherwise append), the given `system_time`, and the batch's `event_time` column (cast
/// to milliseconds) or `default_event_time` when the batch has none. All batches must have the
/// columns of the first.
pub struct SliceWriter {
    start_offset: u64,
    next_offset: u64,
    system_time: DateTime<Utc>,
    default_event_time: Option<DateTime<Utc>>,
    max_event_time: Option<i64>,
    upload_target: Option<SliceUploadTarget>,
    /// Rows keep the `system_time` (and must carry the `offset`) they come with: slices merged
    /// by compaction.
    keep_system_columns: bool,
    open: Option<OpenSlice>,
}

struct OpenSlice {
    input_fields: arrow::datatypes::Fields,
    data_fields: Vec<Arc<Field>>,
    schema: SchemaRef,
    writer: ArrowWriter<HashingOutput>,
    hasher: LogicalHasher,
}

impl SliceWriter {
    pub fn new(
        start_offset: u64,
        system_time: DateTime<Utc>,
        default_event_time: Option<DateTime<Utc>>,
    ) -> Self {
        Self {
            start_offset,
            next_offset: start_offset,
            system_time,
            default_event_time,
            max_event_time: None,
            upload_target: None,
            keep_system_columns: false,
            open: None,
        }
    }

    /// Rewrites records of existing slices: each row keeps its `system_time`, and its `offset`
    /// must be the next one (the slices are consecutive), or the write fails.
    pub fn keeping_system_columns(mut self) -> Self {
        self.keep_system_columns = true;
        self
    }

    /// Sends a file larger than one upload part to `target` while it is encoded, instead of
    /// keeping it in memory. Writes then block while the upload falls behind, so they must not
    /// run on the target's runtime.
    pub fn with_upload(mut self, target: SliceUploadTarget) -> Self {
        self.upload_target = Some(target);
        self
    }

    /// Rows written so far.
    pub fn num_rows(&self) -> u64 {
        self.next_offset - self.start_offset
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), SliceError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let event_times = self.event_times(batch)?;
        if self.open.is_none() {
            self.open = Some(OpenSlice::new(batch, self.upload_target.take())?);
        }
        let open = self.open.as_mut().expect("opened above");
        if batch.schema().fields() != &open.input_fields {
            return Err(SliceError::Schema(
                "all batches of a slice must have the same schema".to_string(),
            ));
        }
        let rows = batch.num_rows();
        let offsets: ArrayRef = Arc::new(UInt64Array::from_iter_values(
            self.next_offset..self.next_offset + rows as u64,
        ));
        let ops: ArrayRef = match batch.column_by_name(OPERATION_TYPE_COLUMN) {
            Some(column) => cast(column, &DataType::Int32)?,
            None => Arc::new(Int32Array::from_value(
                i32::from(OperationType::Append.as_repr()),
                rows,
            )),
        };
        let system_times: ArrayRef = match batch.column_by_name(SYSTEM_TIME_COLUMN) {
            Some(column) if self.keep_system_columns => {
                check_offsets(self.next_offset, batch)?;
                cast(column, &timestamp_type())?
            }
            _ if self.keep_system_columns => {
                return Err(SliceError::Schema(format!(
                    "records being rewritten have no `{SYSTEM_TIME_COLUMN}` column"
                )));
            }
            _ => Arc::new(
                TimestampMillisecondArray::from_value(self.system_time.timestamp_millis(), rows)
                    .with_timezone("UTC"),
            ),
        };
        if let Some(max) = event_times
            .as_any()
            .downcast_ref::<TimestampMillisecondArray>()
            .and_then(arrow::compute::max)
        {
            self.max_event_time = Some(self.max_event_time.map_or(max, |m| m.max(max)));
        }
        let mut columns = vec![offsets, ops, system_times, event_times];
        for field in &open.data_fields {
            columns.push(
                batch.column_by_name(field.name()).cloned().ok_or_else(|| {
                    SliceError::Schema(format!("missing column `{}`", field.name()))
                })?,
            );
        }
        let output = RecordBatch::try_new(open.schema.clone(), columns)?;
        open.hasher.update(output.clone())?;
        if let Err(error) = open.writer.write(&output) {
            return Err(open.upload_error().unwrap_or(error.into()));
        }
        self.next_offset += rows as u64;
        Ok(())
    }

    fn event_times(&self, batch: &RecordBatch) -> Result<ArrayRef, SliceError> {
        match (
            batch.column_by_name(EVENT_TIME_COLUMN),
            self.default_event_time,
        ) {
            (Some(column), _) => cast(column, &timestamp_type()).map_err(|error| {
                SliceError::Schema(format!(
                    "column `{EVENT_TIME_COLUMN}` is not a timestamp: {error}"
                ))
            }),
            (None, Some(default)) => Ok(Arc::new(
                TimestampMillisecondArray::from_value(default.timestamp_millis(), batch.num_rows())
                    .with_timezone("UTC"),
            )),
            (None, None) => Err(SliceError::Schema(format!(
                "records have no `{EVENT_TIME_COLUMN}` column and no default event time was given"
            ))),
        }
    }

    /// Closes the file; `None` when no rows were written.
    pub fn finish(self) -> Result<Option<PreparedSlice>, SliceError> {
        let Some(mut open) = self.open else {
            return Ok(None);
        };
        if let Err(error) = open.writer.finish() {
            return Err(open.upload_error().unwrap_or(error.into()));
        }
        let logical_hash = open.hasher.finish()?;
        // The footer is written and flushed: the output holds the whole file.
        let output = std::mem::replace(open.writer.inner_mut(), HashingOutput::new(None));
        let (physical_hash, size, data) = output.finish()?;
        Ok(Some(PreparedSlice {
            data,
            size,
            physical_hash: Multihash::new(HashAlgorithm::Sha3_256, physical_hash),
            logical_hash,
            offset_interval: OffsetInterval {
                start: self.start_offset,
                end: self.next_offset - 1,
            },
            max_event_time: self
                .max_event_time
                .and_then(DateTime::<Utc>::from_timestamp_millis),
            schema: open.schema,
        }))
    }
}

/// Rewritten records must carry the offsets they are given again.
fn check_offsets(next_offset: u64, batch: &RecordBatch) -> Result<(), SliceError> {
    let offsets = batch
        .column_by_name(OFFSET_COLUMN)
        .and_then(|column| column.as_any().downcast_ref::<UInt64Array>());
    let expected = next_offset..next_offset + batch.num_rows() as u64;
    match offsets {
        Some(offsets)
            if offsets.null_count() == 0 && offsets.values().iter().copied().eq(expected) =>
        {
            Ok(())
        }
        _ => Err(SliceError::Schema(format!(
            "records being rewritten do not carry the offsets from {next_offset} on"
        ))),
    }
}

impl OpenSlice {
    fn new(
        first: &RecordBatch,
        upload_target: Option<SliceUploadTarget>,
    ) -> Result<Self, SliceError> {
        let input_fields = first.schema().fields().clone();
        let data_fields: Vec<Arc<Field>> = input_fields
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
        let mut properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_column_encoding(
                ColumnPath::from(OFFSET_COLUMN),
                Encoding::DELTA_BINARY_PACKED,
            )
            .set_column_dictionary_enabled(ColumnPath::from(OFFSET_COLUMN), false);
        for (field, column) in input_fields.iter().zip(first.columns()) {
            if !matches!(field.data_type(), DataType::Struct(_) | DataType::List(_))
                && !dictionary_pays_off(column)
            {
                properties = properties
                    .set_column_dictionary_enabled(ColumnPath::from(field.name().as_str()), false);
            }
        }
        let properties = properties.build();
        let writer = ArrowWriter::try_new(
            HashingOutput::new(upload_target),
            schema.clone(),
            Some(properties),
        )?;
        let hasher = LogicalHasher::start(schema.clone());
        Ok(Self {
            input_fields,
            data_fields,
            schema,
            writer,
            hasher,
        })
    }

    /// The upload failure behind a failed write, if there was one.
    fn upload_error(&mut self) -> Option<SliceError> {
        self.writer
            .inner_mut()
            .take_upload_error()
            .map(SliceError::from)
    }
}

/// Whether dictionary encoding is worth trying on a column, judged from the values of the
/// first batch: a column of (nearly) distinct values, such as ids, amounts or timestamps, gains
/// nothing from a dictionary and costs the writer a hash-table insert per value before it falls
/// back to plain encoding. Small samples keep the default (dictionary on).
fn dictionary_pays_off(column: &ArrayRef) -> bool {
    const SAMPLE_ROWS: usize = 4096;
    const MIN_SAMPLE_ROWS: usize = 1024;
    let sample = column.slice(0, column.len().min(SAMPLE_ROWS));
    let values = sample.len() - sample.null_count();
    if values < MIN_SAMPLE_ROWS {
        return true;
    }
    let Ok(converter) = RowConverter::new(vec![SortField::new(sample.data_type().clone())]) else {
        return true;
    };
    let Ok(rows) = converter.convert_columns(&[sample]) else {
        return true;
    };
    let distinct: HashSet<_> = rows.iter().collect();
    distinct.len() * 10 < values * 9
}

/// The `arrow0-sha3-256` logical hash computed on a thread of its own, in batch order.
struct LogicalHasher {
    sender: Option<SyncSender<RecordBatch>>,
    thread: JoinHandle<Multihash>,
}

impl LogicalHasher {
    fn start(schema: SchemaRef) -> Self {
        let (sender, receiver): (SyncSender<RecordBatch>, Receiver<RecordBatch>) =
            sync_channel(HASH_QUEUE_BATCHES);
        let thread = std::thread::Builder::new()
            .name("weir-logical-hash".to_string())
            .spawn(move || {
                let mut digest = RecordDigestV0::<Sha3_256>::new(&schema);
                for batch in receiver {
                    digest.update(&batch);
                }
                let digest: [u8; 32] = digest.finalize().into();
                Multihash::new(HashAlgorithm::Arrow0Sha3_256, digest)
            })
            .expect("spawning the logical hash thread");
        Self {
            sender: Some(sender),
            thread,
        }
    }

    fn update(&self, batch: RecordBatch) -> Result<(), SliceError> {
        let sender = self.sender.as_ref().expect("sender lives until finish");
        sender
            .send(batch)
            .map_err(|_| SliceError::Internal("logical hashing stopped".to_string()))
    }

    fn finish(mut self) -> Result<Multihash, SliceError> {
        drop(self.sender.take());
        self.thread
            .join()
            .map_err(|_| SliceError::Internal("logical hashing panicked".to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use chrono::{TimeZone, Utc};
    use parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;
    use crate::slices::{SliceData, prepare_slice};

    fn batch(start: i64, rows: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let ids = Int64Array::from_iter_values(start..start + rows);
        let names = StringArray::from_iter((start..start + rows).map(|i| {
            // Some nulls, so the hash takes its element-by-element path too.
            (i % 7 != 0).then(|| format!("name-{i}"))
        }));
        RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(names)]).unwrap()
    }

    #[test]
    fn slices_do_not_depend_on_how_records_are_batched() {
        let system_time = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let rows = ROW_GROUP_ROWS as i64 * 2 + 1_000;
        let whole = prepare_slice(&[batch(0, rows)], 10, system_time, Some(system_time))
            .unwrap()
            .unwrap();
        let mut writer = SliceWriter::new(10, system_time, Some(system_time));
        let mut start = 0;
        for size in [1, 4_095, 100_000, 0, 7].into_iter().cycle() {
            let size = size.min(rows - start);
            writer.write(&batch(start, size)).unwrap();
            start += size;
            if start == rows {
                break;
            }
        }
        assert_eq!(writer.num_rows(), rows as u64);
        let streamed = writer.finish().unwrap().unwrap();

        assert_eq!(streamed.logical_hash, whole.logical_hash);
        assert_eq!(streamed.offset_interval, whole.offset_interval);
        assert_eq!(
            streamed.offset_interval,
            OffsetInterval {
                start: 10,
                end: 10 + rows as u64 - 1
            }
        );
        let (SliceData::Memory(streamed_bytes), SliceData::Memory(whole_bytes)) =
            (&streamed.data, &whole.data)
        else {
            panic!("slices without an upload target stay in memory");
        };
        assert_eq!(streamed.size, streamed_bytes.len() as u64);
        assert_eq!(streamed.physical_hash, Multihash::sha3_256(streamed_bytes));
        assert_eq!(whole.physical_hash, Multihash::sha3_256(whole_bytes));
        assert_eq!(
            streamed.logical_hash,
            crate::slices::logical_hash_of_parquet(streamed_bytes.clone()).unwrap()
        );
        let reader = SerializedFileReader::new(streamed_bytes.clone()).unwrap();
        let groups: Vec<i64> = reader
            .metadata()
            .row_groups()
            .iter()
            .map(|group| group.num_rows())
            .collect();
        assert_eq!(
            groups,
            vec![ROW_GROUP_ROWS as i64, ROW_GROUP_ROWS as i64, 1_000]
        );
    }

    #[test]
    fn batches_with_other_columns_are_refused() {
        let system_time = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let mut writer = SliceWriter::new(0, system_time, Some(system_time));
        writer.write(&batch(0, 3)).unwrap();
        let other = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)])),
            vec![Arc::new(Int64Array::from(vec![1]))],
        )
        .unwrap();
        assert!(matches!(
            writer.write(&other),
            Err(SliceError::Schema(message)) if message.contains("same schema")
        ));
        assert!(
            SliceWriter::new(0, system_time, None)
                .finish()
                .unwrap()
                .is_none()
        );
    }
}
