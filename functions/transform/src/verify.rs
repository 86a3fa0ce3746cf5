//! Verifying a derivative: every `ExecuteTransform` of its chain is computed again from the
//! inputs and the previous checkpoint, and the output's logical hash compared with the one the
//! block records (physical hashes may differ between Parquet writers). The first block that
//! differs is reported.

use std::collections::HashMap;

use serde::Serialize;
use weir_dataset::ChainSnapshot;
use weir_odf::{DatasetId, DatasetRef, MetadataEvent, Multihash, SetTransform, Transform};

use crate::coordinator::{Transformer, output_slice, request_input};
use crate::engine::TransformRequest;
use crate::error::TransformError;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    /// Transform steps computed again and found equal, oldest first, before the first mismatch.
    pub steps_verified: u64,
    pub first_mismatch: Option<Mismatch>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Mismatch {
    pub sequence_number: u64,
    pub block_hash: Multihash,
    /// The logical hash the block records (none: the block added no data).
    pub recorded: Option<Multihash>,
    /// The logical hash computed again.
    pub computed: Option<Multihash>,
}

impl Transformer {
    /// Replays every transform step of `dataset_id`.
    pub async fn verify(&self, dataset_id: &DatasetId) -> Result<VerifyReport, TransformError> {
        let chain = self.store.dataset(dataset_id).load_chain(None).await?;
        if chain.state.dataset_kind() != Some(weir_odf::DatasetKind::Derivative) {
            return Err(TransformError::NotDerivative);
        }
        let mut inputs: HashMap<DatasetId, ChainSnapshot> = HashMap::new();
        let mut transform: Option<&SetTransform> = None;
        let mut steps_verified = 0;
        for (hash, block) in chain.blocks.iter().rev() {
            let execute = match &block.event {
                MetadataEvent::SetTransform(set) => {
                    transform = Some(set);
                    continue;
                }
                MetadataEvent::ExecuteTransform(execute) => execute,
                _ => continue,
            };
            let set = transform.ok_or(TransformError::NoTransform)?;
            let Transform::Sql(sql) = &set.transform;
            let mut request_inputs = Vec::with_capacity(set.inputs.len());
            for (input, recorded) in set.inputs.iter().zip(&execute.query_inputs) {
                let alias = input
                    .alias
                    .clone()
                    .unwrap_or_else(|| input.dataset_ref.to_string());
                let DatasetRef::Id(input_id) = &input.dataset_ref else {
                    return Err(TransformError::UnresolvedInput { alias });
                };
                if !inputs.contains_key(input_id) {
                    let loaded = self.store.dataset(input_id).load_chain(None).await?;
                    inputs.insert(*input_id, loaded);
                }
                let input_chain = &inputs[input_id];
                if let Some(block) = recorded.new_block_hash.or(recorded.prev_block_hash)
                    && !input_chain.blocks.iter().any(|(hash, _)| *hash == block)
                {
                    return Err(TransformError::InputRewritten {
                        alias,
                        dataset_id: *input_id,
                        block,
                    });
                }
                let request_input = request_input(
                    *input_id,
                    alias.clone(),
                    input_chain,
                    recorded.prev_offset,
                    recorded.new_offset,
                )
                .ok_or(TransformError::InputNotFound { alias })?;
                request_inputs.push(request_input);
            }
            let next_offset = execute.prev_offset.map_or(0, |offset| offset + 1);
            let request = TransformRequest {
                dataset_id: *dataset_id,
                dataset_alias: dataset_id.to_string(),
                system_time: block.system_time,
                transform: sql.clone(),
                query_inputs: request_inputs,
                next_offset,
                prev_checkpoint: execute.prev_checkpoint,
            };
            let output = self.engine.execute_transform(&self.store, request).await?;
            let slice = output_slice(output.records, next_offset, block.system_time).await?;
            let computed = slice.map(|slice| slice.logical_hash);
            let recorded = execute.new_data.as_ref().map(|data| data.logical_hash);
            if computed != recorded {
                return Ok(VerifyReport {
                    steps_verified,
                    first_mismatch: Some(Mismatch {
                        sequence_number: block.sequence_number,
                        block_hash: *hash,
                        recorded,
                        computed,
                    }),
                });
            }
            steps_verified += 1;
        }
        Ok(VerifyReport {
            steps_verified,
            first_mismatch: None,
        })
    }
}
