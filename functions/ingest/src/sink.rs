//! Where decoded records go: straight into a slice file as they arrive (merge strategies that
//! take each record on its own, no preprocess step), or collected for strategies that need
//! every record and the dataset's history at once.

use arrow::array::RecordBatch;
use chrono::{DateTime, Utc};
use weir_dataset::slices::{PreparedSlice, SliceUploadTarget, SliceWriter};
use weir_odf::{DataSchema, MergeStrategy};

use crate::error::IngestError;
use crate::merge::merge_batch;
use crate::read::BatchSink;
use crate::records::{DatasetColumns, with_event_time};

/// Keeps every batch.
#[derive(Default)]
pub struct CollectSink {
    batches: Vec<RecordBatch>,
}

impl BatchSink for CollectSink {
    type Output = Vec<RecordBatch>;

    fn write(&mut self, batch: RecordBatch) -> Result<(), IngestError> {
        self.batches.push(batch);
        Ok(())
    }

    fn finish(self) -> Result<Self::Output, IngestError> {
        Ok(self.batches)
    }
}

/// Where a streamed slice goes in the chain: its first offset and the block's system time.
#[derive(Debug, Clone, Copy)]
pub struct SlicePlacement {
    pub start_offset: u64,
    pub system_time: DateTime<Utc>,
}

/// Shapes each batch for the dataset (event time, columns, merge) and writes it to a slice.
pub struct SliceSink {
    strategy: MergeStrategy,
    dataset_schema: Option<DataSchema>,
    default_event_time: DateTime<Utc>,
    columns: Option<DatasetColumns>,
    writer: SliceWriter,
}

impl SliceSink {
    pub fn new(
        strategy: MergeStrategy,
        dataset_schema: Option<DataSchema>,
        default_event_time: DateTime<Utc>,
        placement: SlicePlacement,
        upload: SliceUploadTarget,
    ) -> Self {
        Self {
            strategy,
            dataset_schema,
            default_event_time,
            columns: None,
            writer: SliceWriter::new(
                placement.start_offset,
                placement.system_time,
                Some(default_event_time),
            )
            .with_upload(upload),
        }
    }
}

impl BatchSink for SliceSink {
    type Output = Option<PreparedSlice>;

    fn write(&mut self, batch: RecordBatch) -> Result<(), IngestError> {
        let mut batch = with_event_time(&batch, self.default_event_time)?;
        if let Some(existing) = &self.dataset_schema {
            if self.columns.is_none() {
                let keep_op = matches!(self.strategy, MergeStrategy::ChangelogStream(_));
                self.columns = Some(DatasetColumns::new(existing, &batch.schema(), keep_op)?);
            }
            let columns = self.columns.as_ref().expect("set above");
            batch = columns.conform(&batch)?;
        }
        let merged = merge_batch(&self.strategy, &batch)?;
        self.writer.write(&merged)?;
        Ok(())
    }

    fn finish(self) -> Result<Self::Output, IngestError> {
        Ok(self.writer.finish()?)
    }
}
