//! What the chain says about pushing into a dataset: its push sources, schema and past
//! idempotency keys.

use std::collections::BTreeMap;

use weir_dataset::ChainSnapshot;
use weir_odf::{
    AddPushSource, DataSchema, DatasetKind, MetadataEvent, Multihash, OffsetInterval, SourceState,
};

use crate::error::IngestError;

/// Extension attribute recording the `Idempotency-Key` of the request that added the data.
pub const IDEMPOTENCY_KEY_ATTRIBUTE: &str = "weir.dev/idempotencyKey";
/// Extension attribute recording whose key it was: the caller's account id, or `anonymous`.
/// Keys are scoped per account and dataset.
pub const IDEMPOTENCY_SCOPE_ATTRIBUTE: &str = "weir.dev/idempotencyScope";
/// Extension attribute recording the SHA3-256 of the request (`RequestDigest`), so that a key
/// reused for a different request is told apart from a retry.
pub const REQUEST_HASH_ATTRIBUTE: &str = "weir.dev/requestHash";

pub struct PushTarget {
    pub kind: DatasetKind,
    pub sources: BTreeMap<String, AddPushSource>,
    pub schema: Option<DataSchema>,
}

/// A previous ingest found by its idempotency key.
pub struct PreviousIngest {
    pub old_head: Option<Multihash>,
    pub new_head: Multihash,
    pub offset_interval: Option<OffsetInterval>,
    /// The request's hash, when the block recorded one.
    pub request_hash: Option<String>,
}

pub fn push_target(chain: &ChainSnapshot) -> Result<PushTarget, IngestError> {
    let mut sources = BTreeMap::new();
    let mut schema = None;
    for (_, block) in chain.blocks.iter().rev() {
        match &block.event {
            MetadataEvent::AddPushSource(source) => {
                sources.insert(source.source_name.clone(), source.clone());
            }
            MetadataEvent::DisablePushSource(event) => {
                sources.remove(&event.source_name);
            }
            MetadataEvent::SetDataSchema(event) => schema = event.schema.clone(),
            MetadataEvent::SetVocab(vocab) => {
                let renamed = [
                    (&vocab.offset_column, "offset"),
                    (&vocab.operation_type_column, "op"),
                    (&vocab.system_time_column, "system_time"),
                    (&vocab.event_time_column, "event_time"),
                ]
                .into_iter()
                .any(|(column, default)| column.as_deref().is_some_and(|c| c != default));
                if renamed {
                    return Err(IngestError::Unsupported(
                        "SetVocab with renamed system columns".to_string(),
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(PushTarget {
        kind: chain.state.dataset_kind().unwrap_or(DatasetKind::Root),
        sources,
        schema,
    })
}

impl PushTarget {
    pub fn select(&self, dataset: &str, name: Option<&str>) -> Result<&AddPushSource, IngestError> {
        if self.kind == DatasetKind::Derivative {
            return Err(IngestError::DerivativeDataset(dataset.to_string()));
        }
        match name {
            Some(name) => self
                .sources
                .get(name)
                .ok_or_else(|| IngestError::UnknownSource {
                    name: name.to_string(),
                    available: self.sources.keys().cloned().collect(),
                }),
            None => match self.sources.len() {
                0 => Err(IngestError::NoPushSource(dataset.to_string())),
                1 => Ok(self.sources.values().next().expect("one source")),
                _ => Err(IngestError::AmbiguousSource(
                    self.sources.keys().cloned().collect(),
                )),
            },
        }
    }
}

/// Finds the AddData block a request with `key` from `scope` committed (blocks without a
/// recorded scope match any). A request that also set the schema
/// committed a SetDataSchema block just before it, at the same system time; the head before the
/// request is then that block's predecessor.
pub fn find_previous_ingest(
    chain: &ChainSnapshot,
    key: &str,
    scope: &str,
) -> Option<PreviousIngest> {
    let blocks = &chain.blocks;
    blocks
        .iter()
        .enumerate()
        .find_map(|(index, (hash, block))| {
            let MetadataEvent::AddData(add_data) = &block.event else {
                return None;
            };
            let extra = &add_data.extra.as_ref()?.0;
            let text = |name: &str| extra.get(name).and_then(|value| value.as_str());
            if text(IDEMPOTENCY_KEY_ATTRIBUTE)? != key
                || text(IDEMPOTENCY_SCOPE_ATTRIBUTE).is_some_and(|recorded| recorded != scope)
            {
                return None;
            }
            let old_head = match blocks.get(index + 1) {
                Some((_, previous))
                    if matches!(previous.event, MetadataEvent::SetDataSchema(_))
                        && previous.system_time == block.system_time =>
                {
                    previous.prev_block_hash
                }
                _ => block.prev_block_hash,
            };
            Some(PreviousIngest {
                old_head,
                new_head: *hash,
                offset_interval: add_data
                    .new_data
                    .as_ref()
                    .map(|slice| slice.offset_interval.clone()),
                request_hash: text(REQUEST_HASH_ATTRIBUTE).map(str::to_string),
            })
        })
}

/// The last state a source recorded (`AddData.newSourceState`): only the latest per source counts.
pub fn latest_source_state<'a>(
    chain: &'a ChainSnapshot,
    source_name: &str,
) -> Option<&'a SourceState> {
    chain
        .blocks
        .iter()
        .find_map(|(_, block)| match &block.event {
            MetadataEvent::AddData(add_data) => add_data
                .new_source_state
                .as_ref()
                .filter(|state| state.source_name == source_name),
            _ => None,
        })
}
