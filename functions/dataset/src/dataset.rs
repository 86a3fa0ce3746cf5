//! One dataset in a store: reading the chain, writing objects, committing blocks.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::ObjectStoreExt;
use weir_odf::validation::ChainValidator;
use weir_odf::{DatasetId, MetadataBlock, MetadataEvent, Multihash};

use crate::error::{CommitError, StorageError};
use crate::layout::DatasetLayout;
use crate::slices::{PreparedSlice, SliceData, SliceUploadTarget};
use crate::store::{HeadRef, StoreInner};

/// The chain of a dataset loaded up to a head: blocks newest first, and the validated summary.
#[derive(Debug, Clone)]
pub struct ChainSnapshot {
    pub head: Option<HeadRef>,
    /// `(hash, block)` pairs from the head back to the seed.
    pub blocks: Vec<(Multihash, MetadataBlock)>,
    pub state: ChainValidator,
}

impl ChainSnapshot {
    /// The offset of the next record after the head.
    pub fn next_offset(&self) -> u64 {
        self.state.last_offset().map_or(0, |offset| offset + 1)
    }

    /// The system time for a block after the head: now, or the head's time if another writer's
    /// clock ran ahead (system time never goes backwards along a chain).
    pub fn next_system_time(&self) -> DateTime<Utc> {
        let now = Utc::now();
        self.state
            .head_system_time()
            .map_or(now, |head| head.max(now))
    }

    /// The schema of data slices added after the head (the newest `SetDataSchema`).
    pub fn data_schema(&self) -> Option<&weir_odf::DataSchema> {
        self.blocks
            .iter()
            .find_map(|(_, block)| match &block.event {
                MetadataEvent::SetDataSchema(event) => event.schema.as_ref(),
                _ => None,
            })
    }

    /// The watermark after a block that saw event times up to `new`: watermarks never go back.
    pub fn advanced_watermark(&self, new: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        match (self.state.watermark(), new) {
            (Some(previous), Some(new)) => Some(previous.max(new)),
            (previous, new) => previous.or(new),
        }
    }
}

/// What a successful commit produced.
#[derive(Debug, Clone)]
pub struct CommitResult {
    pub old_head: Option<Multihash>,
    pub new_head: Multihash,
    /// The committed blocks, oldest first.
    pub blocks: Vec<(Multihash, MetadataBlock)>,
    /// The new head, usable as `expected` for a following commit.
    pub head: HeadRef,
    /// Chain state after the commit, usable with `head` for a following commit.
    pub state: ChainValidator,
}

#[derive(Clone)]
pub struct Dataset {
    store: Arc<StoreInner>,
    id: DatasetId,
    layout: DatasetLayout,
}

impl Dataset {
    pub(crate) fn new(store: Arc<StoreInner>, id: DatasetId) -> Self {
        let layout = DatasetLayout::new(&store.root, &id);
        Self { store, id, layout }
    }

    pub fn id(&self) -> &DatasetId {
        &self.id
    }

    pub fn layout(&self) -> &DatasetLayout {
        &self.layout
    }

    pub(crate) fn object_store(&self) -> &std::sync::Arc<dyn object_store::ObjectStore> {
        &self.store.object_store
    }

    pub async fn head(&self) -> Result<Option<HeadRef>, StorageError> {
        self.store.read_head(&self.layout.head()).await
    }

    /// Raw canonical bytes of a block (simple transfer protocol `blocks/{hash}`).
    pub async fn get_block_bytes(&self, hash: &Multihash) -> Result<Bytes, StorageError> {
        self.store.get_bytes(&self.layout.block(hash)).await
    }

    /// Reads a block and checks that its bytes hash to `hash`.
    pub async fn get_block(&self, hash: &Multihash) -> Result<MetadataBlock, StorageError> {
        let bytes = self.get_block_bytes(hash).await?;
        if Multihash::sha3_256(&bytes) != *hash {
            return Err(StorageError::HashMismatch { expected: *hash });
        }
        weir_odf::decode_block(&bytes).map_err(|source| StorageError::CorruptedBlock {
            hash: *hash,
            source,
        })
    }

    /// Blocks from `from` back to the seed, newest first.
    pub async fn blocks_from(
        &self,
        from: &Multihash,
    ) -> Result<Vec<(Multihash, MetadataBlock)>, StorageError> {
        let mut blocks = Vec::new();
        let mut next = Some(*from);
        while let Some(hash) = next {
            let block = self.get_block(&hash).await?;
            next = block.prev_block_hash;
            blocks.push((hash, block));
        }
        Ok(blocks)
    }

    /// Waits for this dataset's commit lane: while it is held, no other writer using this store
    /// places records after the head or commits. Writers in other processes still race through
    /// the head's compare-and-swap.
    pub async fn commit_lane(&self) -> crate::lanes::CommitLane {
        self.store.lanes.enter(&self.id).await
    }

    /// Loads and validates the chain at the current head (or at `as_of`). At the head, a chain
    /// loaded before is extended with the blocks added since instead of read again.
    pub async fn load_chain(
        &self,
        as_of: Option<&Multihash>,
    ) -> Result<ChainSnapshot, CommitError> {
        let head = self.head().await?;
        if as_of.is_none()
            && let Some(head) = &head
            && let Some(chain) = self.extend_cached_chain(head).await?
        {
            self.store.lanes.cache_chain(&self.id, &chain);
            return Ok(chain);
        }
        let start = match (as_of, &head) {
            (Some(hash), _) => Some(*hash),
            (None, Some(head)) => Some(head.hash),
            (None, None) => None,
        };
        let blocks = match start {
            Some(hash) => self.blocks_from(&hash).await?,
            None => Vec::new(),
        };
        let state = weir_odf::validation::validate_chain(blocks.iter().rev().map(|(h, b)| (h, b)))?;
        let chain = ChainSnapshot {
            head,
            blocks,
            state,
        };
        if as_of.is_none() && chain.head.is_some() {
            self.store.lanes.cache_chain(&self.id, &chain);
        }
        Ok(chain)
    }

    /// The cached chain extended to `head` by the blocks added since, each validated on top of
    /// the cached state; `None` when nothing is cached or `head` does not descend from it (the
    /// chain was reset or rewritten).
    async fn extend_cached_chain(
        &self,
        head: &HeadRef,
    ) -> Result<Option<ChainSnapshot>, CommitError> {
        let Some(mut cached) = self.store.lanes.cached_chain(&self.id) else {
            return Ok(None);
        };
        let Some(cached_head) = cached.head.as_ref().map(|head| head.hash) else {
            return Ok(None);
        };
        let mut added = Vec::new();
        let mut next = Some(head.hash);
        while let Some(hash) = next {
            if hash == cached_head {
                break;
            }
            let block = self.get_block(&hash).await?;
            // Older than the cached head: the chain was not extended but replaced.
            if block.sequence_number <= cached.state.next_sequence_number().saturating_sub(1) {
                return Ok(None);
            }
            next = block.prev_block_hash;
            added.push((hash, block));
        }
        if next.is_none() {
            return Ok(None);
        }
        for (hash, block) in added.iter().rev() {
            cached.state.append(hash, block)?;
        }
        added.append(&mut cached.blocks);
        cached.blocks = added;
        cached.head = Some(head.clone());
        Ok(Some(cached))
    }

    pub async fn get_data(&self, physical_hash: &Multihash) -> Result<Bytes, StorageError> {
        self.store.get_bytes(&self.layout.data(physical_hash)).await
    }

    pub async fn get_checkpoint(&self, physical_hash: &Multihash) -> Result<Bytes, StorageError> {
        self.store
            .get_bytes(&self.layout.checkpoint(physical_hash))
            .await
    }

    /// Stores a data file under its physical hash and returns the hash.
    pub async fn put_data(&self, bytes: Bytes) -> Result<Multihash, StorageError> {
        let hash = Multihash::sha3_256(&bytes);
        self.store
            .put_content_addressed(&self.layout.data(&hash), bytes)
            .await?;
        Ok(hash)
    }

    /// Stores a slice under the physical hash its writer computed over the same bytes: writes
    /// it from memory, or moves its staging object. Storing it again does nothing.
    pub async fn put_slice(&self, slice: &mut PreparedSlice) -> Result<(), StorageError> {
        let key = self.layout.data(&slice.physical_hash);
        match &slice.data {
            SliceData::Memory(bytes) => {
                self.store
                    .put_content_addressed(&key, bytes.clone())
                    .await?;
            }
            SliceData::Staged(staging) => self.store.object_store.rename(staging, &key).await?,
            SliceData::Stored => return Ok(()),
        }
        slice.data = SliceData::Stored;
        Ok(())
    }

    /// The Parquet file of a slice, wherever it is.
    pub async fn slice_bytes(&self, slice: &PreparedSlice) -> Result<Bytes, StorageError> {
        match &slice.data {
            SliceData::Memory(bytes) => Ok(bytes.clone()),
            SliceData::Staged(staging) => self.store.get_bytes(staging).await,
            SliceData::Stored => self.get_data(&slice.physical_hash).await,
        }
    }

    /// Removes the staging object of slice data that will not be stored (gone already is fine).
    pub async fn discard_staged(&self, data: &SliceData) -> Result<(), StorageError> {
        let SliceData::Staged(staging) = data else {
            return Ok(());
        };
        match self.store.object_store.delete(staging).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// A fresh staging object for a slice writer (`SliceWriter::with_upload`) that runs off
    /// the current Tokio runtime; must be called on it.
    pub fn slice_upload_target(&self) -> SliceUploadTarget {
        SliceUploadTarget {
            runtime: tokio::runtime::Handle::current(),
            store: self.store.object_store.clone(),
            key: self.layout.staging(&uuid::Uuid::new_v4().to_string()),
        }
    }

    pub async fn put_checkpoint(&self, bytes: Bytes) -> Result<Multihash, StorageError> {
        let hash = Multihash::sha3_256(&bytes);
        self.store
            .put_content_addressed(&self.layout.checkpoint(&hash), bytes)
            .await?;
        Ok(hash)
    }

    pub async fn get_info(&self, name: &str) -> Result<Bytes, StorageError> {
        self.store.get_bytes(&self.layout.info(name)).await
    }

    pub async fn put_info(&self, name: &str, bytes: Bytes) -> Result<(), StorageError> {
        self.store
            .put_content_addressed(&self.layout.info(name), bytes)
            .await
    }

    /// Moves the head back to `target`, a block of the current chain. The blocks after it, and
    /// the data only they refer to, become garbage for the sweep. Readers and derivatives that
    /// had seen those blocks find them gone (a derivative then reports its input as reset).
    pub async fn reset_to(&self, target: &Multihash) -> Result<HeadRef, CommitError> {
        let _lane = self.commit_lane().await;
        let chain = self.load_chain(None).await?;
        let Some(expected) = chain.head.as_ref() else {
            return Err(CommitError::NotInChain { block: *target });
        };
        if expected.hash == *target {
            return Ok(expected.clone());
        }
        if !chain.blocks.iter().any(|(hash, _)| hash == target) {
            return Err(CommitError::NotInChain { block: *target });
        }
        match self
            .store
            .swap_head(&self.layout.head(), Some(expected), target)
            .await?
        {
            Some(head) => {
                tracing::info!(dataset_id = %self.id, from = %expected.hash, to = %target, "reset");
                Ok(head)
            }
            None => Err(CommitError::Conflict {
                expected: Some(expected.hash),
                actual: self.head().await?.map(|head| head.hash),
            }),
        }
    }

    /// Appends `event` after the head described by `state`/`expected`. Data and checkpoint
    /// objects the event references must already be stored. Fails with `Conflict` when the head
    /// moved since `expected` was read; the caller may reload the chain and retry.
    pub async fn commit(
        &self,
        expected: Option<&HeadRef>,
        state: &ChainValidator,
        event: MetadataEvent,
        system_time: DateTime<Utc>,
    ) -> Result<CommitResult, CommitError> {
        self.commit_many(expected, state, vec![event], system_time)
            .await
    }

    /// Appends several blocks atomically: all become visible with one swap of the head, or none.
    pub async fn commit_many(
        &self,
        expected: Option<&HeadRef>,
        state: &ChainValidator,
        events: Vec<MetadataEvent>,
        system_time: DateTime<Utc>,
    ) -> Result<CommitResult, CommitError> {
        let events = events
            .into_iter()
            .map(|event| (event, system_time))
            .collect();
        self.commit_blocks(expected, state, events).await
    }

    /// Appends blocks, each at its own system time, after the head `state` describes, and swaps
    /// the head from `expected` to the last of them. `state` need not be `expected`'s: a chain
    /// rewritten after one of its blocks (compaction) is committed the same way.
    pub async fn commit_blocks(
        &self,
        expected: Option<&HeadRef>,
        state: &ChainValidator,
        events: Vec<(MetadataEvent, DateTime<Utc>)>,
    ) -> Result<CommitResult, CommitError> {
        let mut next_state = state.clone();
        let mut blocks = Vec::with_capacity(events.len());
        let mut encoded = Vec::with_capacity(events.len());
        for (event, system_time) in events {
            let block = MetadataBlock {
                system_time,
                prev_block_hash: next_state.head().map(|(hash, _)| *hash),
                sequence_number: next_state.next_sequence_number(),
                event,
            };
            let (bytes, hash) = weir_odf::encode_and_hash_block(&block);
            next_state.append(&hash, &block)?;
            encoded.push((hash, bytes));
            blocks.push((hash, block));
        }
        let Some((new_hash, _)) = blocks
            .last()
            .map(|(hash, block)| (*hash, block.sequence_number))
        else {
            return Err(CommitError::NothingToCommit);
        };
        for (hash, bytes) in encoded {
            self.store
                .put_content_addressed(&self.layout.block(&hash), Bytes::from(bytes))
                .await?;
        }
        let swapped = self
            .store
            .swap_head(&self.layout.head(), expected, &new_hash)
            .await?;
        let Some(head) = swapped else {
            let actual = self.head().await?.map(|head| head.hash);
            return Err(CommitError::Conflict {
                expected: expected.map(|head| head.hash),
                actual,
            });
        };
        tracing::debug!(dataset_id = %self.id, new_head = %new_hash, blocks = blocks.len(), "committed blocks");
        Ok(CommitResult {
            old_head: expected.map(|head| head.hash),
            new_head: new_hash,
            blocks,
            head,
            state: next_state,
        })
    }
}
