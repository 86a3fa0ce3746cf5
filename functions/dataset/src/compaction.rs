//! Compaction of a root dataset: runs of consecutive `AddData` blocks whose slices are small
//! are merged into one block per target-sized slice, and the chain is written again from the
//! first merged block on (what the spec's `CompactionParams` ask for).
//!
//! Records keep their offsets, operation types, system and event times, so a query over the
//! compacted dataset answers exactly as before; the new head does not descend from the old one,
//! so a derivative that read the dataset finds its input rewritten and resets (with Recover, by
//! itself). Blocks that are not data (schema, source, watermark-only) stay where they are and
//! end a run; so do blocks carrying extension attributes (e.g. a push's idempotency key), whose
//! attributes would not survive a merge. The old slices become garbage for the sweep.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use weir_odf::{AddData, MetadataBlock, MetadataEvent, Multihash};

use crate::dataset::{ChainSnapshot, Dataset};
use crate::error::{CommitError, SliceError, StorageError};
use crate::slices::{SliceWriter, read_slice};

/// Target size of the merged slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompactionParams {
    /// A merged slice stays under this many bytes (sum of the merged files' sizes).
    pub max_slice_size: u64,
    /// A merged slice holds at most this many records.
    pub max_slice_records: u64,
}

impl Default for CompactionParams {
    fn default() -> Self {
        Self {
            max_slice_size: 256 * 1024 * 1024,
            max_slice_records: 10_000_000,
        }
    }
}

/// What a compaction did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompactionOutcome {
    pub old_head: Multihash,
    pub new_head: Multihash,
    /// Data slices before and after.
    pub slices_before: usize,
    pub slices_after: usize,
    /// Records in the merged slices (unchanged in number).
    pub records_merged: u64,
    pub new_head_sequence_number: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CompactionError {
    #[error("the dataset has no blocks")]
    Empty,
    #[error(transparent)]
    Commit(#[from] CommitError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Slice(#[from] SliceError),
}

impl CompactionError {
    /// Whether running again may succeed: a concurrent commit moved the head, or storage failed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Empty | Self::Slice(_) => false,
            Self::Commit(error) => matches!(
                error,
                CommitError::Conflict { .. } | CommitError::Storage(_)
            ),
            Self::Storage(_) => true,
        }
    }
}

/// Blocks (oldest first, by index) merged into one slice, or a block kept as it is.
enum Step {
    Keep(usize),
    Merge(Vec<usize>),
}

/// A block that can join a run: data, no checkpoint, no extension attributes.
fn mergeable(block: &MetadataBlock) -> Option<&AddData> {
    match &block.event {
        MetadataEvent::AddData(add)
            if add.new_data.is_some()
                && add.new_checkpoint.is_none()
                && add.prev_checkpoint.is_none()
                && add.extra.as_ref().is_none_or(|extra| extra.0.is_empty()) =>
        {
            Some(add)
        }
        _ => None,
    }
}

fn plan(blocks: &[&MetadataBlock], params: &CompactionParams) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut run: Vec<usize> = Vec::new();
    let (mut size, mut records) = (0u64, 0u64);
    let close = |run: &mut Vec<usize>, steps: &mut Vec<Step>| match run.len() {
        0 => {}
        1 => steps.push(Step::Keep(run.pop().expect("one"))),
        _ => steps.push(Step::Merge(std::mem::take(run))),
    };
    for (index, block) in blocks.iter().enumerate() {
        let Some(slice) = mergeable(block).and_then(|add| add.new_data.as_ref()) else {
            close(&mut run, &mut steps);
            steps.push(Step::Keep(index));
            continue;
        };
        let slice_records = slice.offset_interval.len();
        if !run.is_empty()
            && (size + slice.size > params.max_slice_size
                || records + slice_records > params.max_slice_records)
        {
            close(&mut run, &mut steps);
        }
        if run.is_empty() {
            (size, records) = (0, 0);
        }
        run.push(index);
        size += slice.size;
        records += slice_records;
    }
    close(&mut run, &mut steps);
    steps
}

/// Merges the dataset's small slices; `None` when there is nothing to merge.
pub async fn compact(
    dataset: &Dataset,
    params: &CompactionParams,
) -> Result<Option<CompactionOutcome>, CompactionError> {
    let _lane = dataset.commit_lane().await;
    let chain = dataset.load_chain(None).await?;
    let Some(head) = chain.head.clone() else {
        return Err(CompactionError::Empty);
    };
    let oldest_first: Vec<&(Multihash, MetadataBlock)> = chain.blocks.iter().rev().collect();
    let blocks: Vec<&MetadataBlock> = oldest_first.iter().map(|(_, block)| block).collect();
    let steps = plan(&blocks, params);
    let Some(first_merge) = steps.iter().position(|step| matches!(step, Step::Merge(_))) else {
        return Ok(None);
    };
    let first_index = match &steps[first_merge] {
        Step::Merge(indices) => indices[0],
        Step::Keep(index) => *index,
    };
    // The seed is never data, so the first merged block has a predecessor to build on.
    let base = oldest_first[first_index - 1].0;
    let base_chain = dataset.load_chain(Some(&base)).await?;
    let slices_before = count_slices(&chain);
    let mut records_merged = 0;
    let mut slices_after = slices_before;
    let mut events = Vec::new();
    for step in &steps[first_merge..] {
        match step {
            Step::Keep(index) => {
                events.push((blocks[*index].event.clone(), blocks[*index].system_time))
            }
            Step::Merge(indices) => {
                let (event, system_time, records) = merge(dataset, &blocks, indices).await?;
                records_merged += records;
                slices_after -= indices.len() - 1;
                events.push((event, system_time));
            }
        }
    }
    let result = dataset
        .commit_blocks(Some(&head), &base_chain.state, events)
        .await?;
    tracing::info!(dataset_id = %dataset.id(), old_head = %head.hash, new_head = %result.new_head, "compacted");
    Ok(Some(CompactionOutcome {
        old_head: head.hash,
        new_head: result.new_head,
        slices_before,
        slices_after,
        records_merged,
        new_head_sequence_number: result
            .blocks
            .last()
            .map(|(_, block)| block.sequence_number)
            .unwrap_or_default(),
    }))
}

fn count_slices(chain: &ChainSnapshot) -> usize {
    chain
        .blocks
        .iter()
        .filter(|(_, block)| {
            matches!(&block.event, MetadataEvent::AddData(add) if add.new_data.is_some())
        })
        .count()
}

/// One AddData block for the slices of `indices`: their records in one file, the first block's
/// previous offset, the last block's watermark, the newest source state.
async fn merge(
    dataset: &Dataset,
    blocks: &[&MetadataBlock],
    indices: &[usize],
) -> Result<(MetadataEvent, DateTime<Utc>, u64), CompactionError> {
    let adds: Vec<&AddData> = indices
        .iter()
        .filter_map(|index| mergeable(blocks[*index]))
        .collect();
    let first = adds[0];
    let last = adds[adds.len() - 1];
    let start = first
        .new_data
        .as_ref()
        .map(|slice| slice.offset_interval.start)
        .unwrap_or_default();
    let last_block = blocks[indices[indices.len() - 1]];
    let mut files = Vec::with_capacity(adds.len());
    for add in &adds {
        let slice = add.new_data.as_ref().expect("mergeable blocks have data");
        files.push(dataset.get_data(&slice.physical_hash).await?);
    }
    let system_time = last_block.system_time;
    let mut slice = tokio::task::spawn_blocking(move || {
        let mut writer = SliceWriter::new(start, system_time, None).keeping_system_columns();
        for bytes in files {
            for batch in read_slice(bytes)? {
                writer.write(&batch)?;
            }
        }
        writer.finish()
    })
    .await
    .map_err(|error| StorageError::Io(std::io::Error::other(error)))??
    .ok_or_else(|| SliceError::Schema("the merged slices hold no records".to_string()))?;
    dataset.put_slice(&mut slice).await?;
    let records = slice.offset_interval.len();
    let state = adds
        .iter()
        .rev()
        .find_map(|add| add.new_source_state.clone());
    let event = MetadataEvent::AddData(AddData {
        prev_checkpoint: None,
        prev_offset: first.prev_offset,
        new_data: Some(slice.data_slice()),
        new_checkpoint: None,
        new_watermark: last.new_watermark,
        new_source_state: state,
        extra: None,
    });
    Ok((event, system_time, records))
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_odf::{DataSlice, OffsetInterval};

    fn data(start: u64, end: u64, size: u64) -> MetadataBlock {
        MetadataBlock {
            system_time: Utc::now(),
            prev_block_hash: None,
            sequence_number: 0,
            event: MetadataEvent::AddData(AddData {
                prev_checkpoint: None,
                prev_offset: start.checked_sub(1),
                new_data: Some(DataSlice {
                    logical_hash: Multihash::new(weir_odf::HashAlgorithm::Sha3_256, [0; 32]),
                    physical_hash: Multihash::new(weir_odf::HashAlgorithm::Sha3_256, [0; 32]),
                    offset_interval: OffsetInterval { start, end },
                    size,
                }),
                new_checkpoint: None,
                new_watermark: None,
                new_source_state: None,
                extra: None,
            }),
        }
    }

    fn shape(steps: &[Step]) -> Vec<Vec<usize>> {
        steps
            .iter()
            .map(|step| match step {
                Step::Keep(index) => vec![*index],
                Step::Merge(indices) => indices.clone(),
            })
            .collect()
    }

    #[test]
    fn runs_split_at_other_events_and_at_the_target_size() {
        // A block recording only a watermark is not data: it ends a run.
        let mut watermark = data(0, 0, 1);
        if let MetadataEvent::AddData(add) = &mut watermark.event {
            add.new_data = None;
            add.new_watermark = Some(Utc::now());
        }
        let blocks = [
            data(0, 9, 10),
            data(10, 19, 10),
            data(20, 29, 10),
            watermark,
            data(30, 39, 10),
            data(40, 49, 10),
        ];
        let refs: Vec<&MetadataBlock> = blocks.iter().collect();
        let params = CompactionParams {
            max_slice_size: 25,
            max_slice_records: 1000,
        };
        assert_eq!(
            shape(&plan(&refs, &params)),
            vec![vec![0, 1], vec![2], vec![3], vec![4, 5]]
        );
        let by_records = CompactionParams {
            max_slice_size: 1000,
            max_slice_records: 10,
        };
        assert_eq!(
            shape(&plan(&refs, &by_records)),
            vec![vec![0], vec![1], vec![2], vec![3], vec![4], vec![5]]
        );
    }
}
