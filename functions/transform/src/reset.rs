//! Resetting a dataset to an earlier block of its chain, and a derivative to its metadata so
//! that it is computed again from its inputs (derivative data is transient: it can always be
//! recomputed, and verification proves the result is the same).

use serde::Serialize;
use weir_dataset::ChainSnapshot;
use weir_odf::{DatasetId, MetadataEvent, Multihash};

use crate::coordinator::Transformer;
use crate::error::TransformError;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ResetOutcome {
    pub old_head: Multihash,
    pub new_head: Multihash,
    pub new_head_sequence: u64,
}

impl Transformer {
    /// Moves the head of `dataset_id` back to `to`; without `to`, a derivative goes back to the
    /// block before its first data (`SetDataSchema` or `ExecuteTransform`).
    pub async fn reset(
        &self,
        dataset_id: &DatasetId,
        to: Option<Multihash>,
    ) -> Result<ResetOutcome, TransformError> {
        let dataset = self.store.dataset(dataset_id);
        let chain = dataset.load_chain(None).await?;
        let old_head = chain
            .head
            .as_ref()
            .map(|head| head.hash)
            .ok_or(TransformError::NotDerivative)?;
        let target = match to {
            Some(block) => block,
            None => before_first_data(&chain)?,
        };
        let head = dataset.reset_to(&target).await?;
        let new_head_sequence = chain
            .blocks
            .iter()
            .find(|(hash, _)| *hash == head.hash)
            .map(|(_, block)| block.sequence_number)
            .unwrap_or_default();
        for listener in &self.listeners {
            listener
                .head_reset(dataset_id, &head.hash, new_head_sequence)
                .await;
        }
        Ok(ResetOutcome {
            old_head,
            new_head: head.hash,
            new_head_sequence,
        })
    }
}

/// The newest block before a derivative's first data: what it is without its computed data.
fn before_first_data(chain: &ChainSnapshot) -> Result<Multihash, TransformError> {
    if chain.state.dataset_kind() != Some(weir_odf::DatasetKind::Derivative) {
        return Err(TransformError::ResetNeedsBlock);
    }
    let first_data = chain.blocks.iter().rev().find(|(_, block)| {
        matches!(
            block.event,
            MetadataEvent::SetDataSchema(_) | MetadataEvent::ExecuteTransform(_)
        )
    });
    match first_data {
        Some((_, block)) => Ok(block
            .prev_block_hash
            .expect("data follows the seed, so it has a previous block")),
        // Nothing computed yet: the head is already there.
        None => Ok(chain
            .head
            .as_ref()
            .map(|head| head.hash)
            .ok_or(TransformError::NotDerivative)?),
    }
}
