//! Metadata chain validation, block by block from the seed to the head.
//!
//! `ChainValidator` keeps the summary of the chain seen so far, so a writer can validate a new
//! block against the state at the head without re-reading the chain.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::hash::Multihash;
use crate::identity::DatasetRef;
use crate::model::{DataSlice, DatasetKind, MetadataBlock, MetadataEvent};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainValidationError {
    #[error(
        "block {sequence_number}: the first block must be a Seed with sequence number 0 and no previous hash"
    )]
    SeedNotFirst { sequence_number: u64 },
    #[error("block {sequence_number}: Seed may only appear as the first block")]
    SeedNotAtStart { sequence_number: u64 },
    #[error("block {sequence_number}: expected sequence number {expected}")]
    SequenceGap { sequence_number: u64, expected: u64 },
    #[error("block {sequence_number}: previous block hash {actual:?} does not match {expected}")]
    PrevHashMismatch {
        sequence_number: u64,
        expected: Multihash,
        actual: Option<Multihash>,
    },
    #[error("block {sequence_number}: system time {system_time} is before the previous block's")]
    SystemTimeDecreased {
        sequence_number: u64,
        system_time: DateTime<Utc>,
    },
    #[error(
        "block {sequence_number}: prevOffset {actual:?} does not match the last offset {expected:?}"
    )]
    PrevOffsetMismatch {
        sequence_number: u64,
        expected: Option<u64>,
        actual: Option<u64>,
    },
    #[error(
        "block {sequence_number}: new data must start at offset {expected}, starts at {actual}"
    )]
    OffsetsNotContiguous {
        sequence_number: u64,
        expected: u64,
        actual: u64,
    },
    #[error("block {sequence_number}: offset interval end {end} is before start {start}")]
    InvalidOffsetInterval {
        sequence_number: u64,
        start: u64,
        end: u64,
    },
    #[error(
        "block {sequence_number}: watermark {watermark} is before the previous watermark {previous}"
    )]
    WatermarkDecreased {
        sequence_number: u64,
        watermark: DateTime<Utc>,
        previous: DateTime<Utc>,
    },
    #[error("block {sequence_number}: data added before any SetDataSchema")]
    DataBeforeSchema { sequence_number: u64 },
    #[error(
        "block {sequence_number}: prevCheckpoint {actual:?} does not match the last checkpoint {expected:?}"
    )]
    PrevCheckpointMismatch {
        sequence_number: u64,
        expected: Option<Multihash>,
        actual: Option<Multihash>,
    },
    #[error("block {sequence_number}: {event} is not allowed in a {kind:?} dataset")]
    WrongDatasetKind {
        sequence_number: u64,
        event: &'static str,
        kind: DatasetKind,
    },
    #[error("block {sequence_number}: push source `{source_name}` already exists")]
    DuplicatePushSource {
        sequence_number: u64,
        source_name: String,
    },
    #[error("block {sequence_number}: push source `{source_name}` does not exist")]
    UnknownPushSource {
        sequence_number: u64,
        source_name: String,
    },
    #[error("block {sequence_number}: DisablePollingSource without an active polling source")]
    NoPollingSource { sequence_number: u64 },
    #[error(
        "block {sequence_number}: transform input `{input}` must reference a dataset by its DID"
    )]
    TransformInputNotId { sequence_number: u64, input: String },
    #[error("block {sequence_number}: transform must have at least one input")]
    TransformWithoutInputs { sequence_number: u64 },
}

/// Summary of a valid chain prefix: everything needed to validate the next block.
#[derive(Debug, Clone, Default)]
pub struct ChainValidator {
    head: Option<(Multihash, u64, DateTime<Utc>)>,
    kind: Option<DatasetKind>,
    has_schema: bool,
    last_offset: Option<u64>,
    watermark: Option<DateTime<Utc>>,
    checkpoint: Option<Multihash>,
    push_sources: BTreeSet<String>,
    has_polling_source: bool,
}

impl ChainValidator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Hash and sequence number of the last accepted block.
    pub fn head(&self) -> Option<(&Multihash, u64)> {
        self.head.as_ref().map(|(hash, seq, _)| (hash, *seq))
    }

    /// System time of the last accepted block; a next block must not be older.
    pub fn head_system_time(&self) -> Option<DateTime<Utc>> {
        self.head.as_ref().map(|(_, _, time)| *time)
    }

    pub fn next_sequence_number(&self) -> u64 {
        self.head.as_ref().map_or(0, |(_, seq, _)| seq + 1)
    }

    pub fn dataset_kind(&self) -> Option<DatasetKind> {
        self.kind
    }

    pub fn last_offset(&self) -> Option<u64> {
        self.last_offset
    }

    pub fn watermark(&self) -> Option<DateTime<Utc>> {
        self.watermark
    }

    pub fn has_schema(&self) -> bool {
        self.has_schema
    }

    pub fn push_sources(&self) -> &BTreeSet<String> {
        &self.push_sources
    }

    pub fn last_checkpoint(&self) -> Option<&Multihash> {
        self.checkpoint.as_ref()
    }

    /// Validates `block` (whose hash is `hash`) as the next block and, if valid, accepts it.
    pub fn append(
        &mut self,
        hash: &Multihash,
        block: &MetadataBlock,
    ) -> Result<(), ChainValidationError> {
        let mut next = self.clone();
        next.check_linkage(block)?;
        next.apply_event(block)?;
        next.head = Some((*hash, block.sequence_number, block.system_time));
        *self = next;
        Ok(())
    }

    fn check_linkage(&self, block: &MetadataBlock) -> Result<(), ChainValidationError> {
        let sequence_number = block.sequence_number;
        let Some((prev_hash, prev_seq, prev_time)) = &self.head else {
            let is_seed = matches!(block.event, MetadataEvent::Seed(_));
            if !is_seed || sequence_number != 0 || block.prev_block_hash.is_some() {
                return Err(ChainValidationError::SeedNotFirst { sequence_number });
            }
            return Ok(());
        };
        if sequence_number != prev_seq + 1 {
            return Err(ChainValidationError::SequenceGap {
                sequence_number,
                expected: prev_seq + 1,
            });
        }
        if block.prev_block_hash.as_ref() != Some(prev_hash) {
            return Err(ChainValidationError::PrevHashMismatch {
                sequence_number,
                expected: *prev_hash,
                actual: block.prev_block_hash,
            });
        }
        if block.system_time < *prev_time {
            return Err(ChainValidationError::SystemTimeDecreased {
                sequence_number,
                system_time: block.system_time,
            });
        }
        Ok(())
    }

    fn require_kind(
        &self,
        sequence_number: u64,
        event: &'static str,
        wanted: DatasetKind,
    ) -> Result<(), ChainValidationError> {
        let kind = self.kind.unwrap_or(wanted);
        if kind != wanted {
            return Err(ChainValidationError::WrongDatasetKind {
                sequence_number,
                event,
                kind,
            });
        }
        Ok(())
    }

    fn apply_data(
        &mut self,
        sequence_number: u64,
        prev_offset: Option<u64>,
        prev_checkpoint: Option<Multihash>,
        new_data: Option<&DataSlice>,
        new_checkpoint: Option<Multihash>,
        new_watermark: Option<DateTime<Utc>>,
    ) -> Result<(), ChainValidationError> {
        if prev_offset != self.last_offset {
            return Err(ChainValidationError::PrevOffsetMismatch {
                sequence_number,
                expected: self.last_offset,
                actual: prev_offset,
            });
        }
        if prev_checkpoint != self.checkpoint {
            return Err(ChainValidationError::PrevCheckpointMismatch {
                sequence_number,
                expected: self.checkpoint,
                actual: prev_checkpoint,
            });
        }
        if let Some(slice) = new_data {
            if !self.has_schema {
                return Err(ChainValidationError::DataBeforeSchema { sequence_number });
            }
            let interval = &slice.offset_interval;
            let expected = self.last_offset.map_or(0, |offset| offset + 1);
            if interval.start != expected {
                return Err(ChainValidationError::OffsetsNotContiguous {
                    sequence_number,
                    expected,
                    actual: interval.start,
                });
            }
            if interval.end < interval.start {
                return Err(ChainValidationError::InvalidOffsetInterval {
                    sequence_number,
                    start: interval.start,
                    end: interval.end,
                });
            }
            self.last_offset = Some(interval.end);
        }
        if let Some(watermark) = new_watermark {
            if let Some(previous) = self.watermark
                && watermark < previous
            {
                return Err(ChainValidationError::WatermarkDecreased {
                    sequence_number,
                    watermark,
                    previous,
                });
            }
            self.watermark = Some(watermark);
        }
        self.checkpoint = new_checkpoint;
        Ok(())
    }

    fn apply_event(&mut self, block: &MetadataBlock) -> Result<(), ChainValidationError> {
        let sequence_number = block.sequence_number;
        match &block.event {
            MetadataEvent::Seed(seed) => {
                if self.head.is_some() {
                    return Err(ChainValidationError::SeedNotAtStart { sequence_number });
                }
                self.kind = Some(seed.dataset_kind);
            }
            MetadataEvent::AddData(event) => {
                self.require_kind(sequence_number, "AddData", DatasetKind::Root)?;
                self.apply_data(
                    sequence_number,
                    event.prev_offset,
                    event.prev_checkpoint,
                    event.new_data.as_ref(),
                    event.new_checkpoint.as_ref().map(|c| c.physical_hash),
                    event.new_watermark,
                )?;
            }
            MetadataEvent::ExecuteTransform(event) => {
                self.require_kind(sequence_number, "ExecuteTransform", DatasetKind::Derivative)?;
                self.apply_data(
                    sequence_number,
                    event.prev_offset,
                    event.prev_checkpoint,
                    event.new_data.as_ref(),
                    event.new_checkpoint.as_ref().map(|c| c.physical_hash),
                    event.new_watermark,
                )?;
            }
            MetadataEvent::SetDataSchema(_) => self.has_schema = true,
            MetadataEvent::AddPushSource(event) => {
                self.require_kind(sequence_number, "AddPushSource", DatasetKind::Root)?;
                if !self.push_sources.insert(event.source_name.clone()) {
                    return Err(ChainValidationError::DuplicatePushSource {
                        sequence_number,
                        source_name: event.source_name.clone(),
                    });
                }
            }
            MetadataEvent::DisablePushSource(event) => {
                if !self.push_sources.remove(&event.source_name) {
                    return Err(ChainValidationError::UnknownPushSource {
                        sequence_number,
                        source_name: event.source_name.clone(),
                    });
                }
            }
            MetadataEvent::SetPollingSource(_) => {
                self.require_kind(sequence_number, "SetPollingSource", DatasetKind::Root)?;
                self.has_polling_source = true;
            }
            MetadataEvent::DisablePollingSource(_) => {
                if !self.has_polling_source {
                    return Err(ChainValidationError::NoPollingSource { sequence_number });
                }
                self.has_polling_source = false;
            }
            MetadataEvent::SetTransform(event) => {
                self.require_kind(sequence_number, "SetTransform", DatasetKind::Derivative)?;
                if event.inputs.is_empty() {
                    return Err(ChainValidationError::TransformWithoutInputs { sequence_number });
                }
                if let Some(input) = event
                    .inputs
                    .iter()
                    .find(|input| !matches!(input.dataset_ref, DatasetRef::Id(_)))
                {
                    return Err(ChainValidationError::TransformInputNotId {
                        sequence_number,
                        input: input.dataset_ref.to_string(),
                    });
                }
            }
            MetadataEvent::SetVocab(_)
            | MetadataEvent::SetAttachments(_)
            | MetadataEvent::SetInfo(_)
            | MetadataEvent::SetLicense(_) => {}
        }
        Ok(())
    }
}

/// Validates a whole chain given oldest first as `(hash, block)` pairs.
pub fn validate_chain<'a>(
    blocks: impl IntoIterator<Item = (&'a Multihash, &'a MetadataBlock)>,
) -> Result<ChainValidator, ChainValidationError> {
    let mut validator = ChainValidator::new();
    for (hash, block) in blocks {
        validator.append(hash, block)?;
    }
    Ok(validator)
}
