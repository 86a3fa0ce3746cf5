//! Keeps the metastore's index in step with dataset storage, the source of truth.
//!
//! `index_dataset` walks a dataset's chain from its storage head back to the last indexed block
//! and records the new blocks, statistics and lineage in one transaction. It runs on
//! `block-committed` events, after the control plane's own commits, in the leader's repair loop
//! (which also registers datasets the registry does not know) and for a full `reindex`.

use std::sync::Arc;

use serde::Serialize;
use weir_dataset::DatasetStore;
use weir_metastore::{
    Account, AccountKind, BlockEntry, DatasetDocs, DatasetEntry, DatasetStatistics, IndexUpdate,
    Metastore, NewAccount, Visibility,
};
use weir_odf::{DatasetId, DatasetRef, MetadataBlock, MetadataEvent, Multihash};

use crate::error::{ServiceError, ServiceResult};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IndexReport {
    pub datasets: usize,
    pub blocks: usize,
}

pub struct Indexer {
    store: DatasetStore,
    metastore: Arc<dyn Metastore>,
}

pub fn event_type(event: &MetadataEvent) -> &'static str {
    match event {
        MetadataEvent::AddData(_) => "AddData",
        MetadataEvent::ExecuteTransform(_) => "ExecuteTransform",
        MetadataEvent::Seed(_) => "Seed",
        MetadataEvent::SetPollingSource(_) => "SetPollingSource",
        MetadataEvent::SetTransform(_) => "SetTransform",
        MetadataEvent::SetVocab(_) => "SetVocab",
        MetadataEvent::SetAttachments(_) => "SetAttachments",
        MetadataEvent::SetInfo(_) => "SetInfo",
        MetadataEvent::SetLicense(_) => "SetLicense",
        MetadataEvent::SetDataSchema(_) => "SetDataSchema",
        MetadataEvent::AddPushSource(_) => "AddPushSource",
        MetadataEvent::DisablePushSource(_) => "DisablePushSource",
        MetadataEvent::DisablePollingSource(_) => "DisablePollingSource",
    }
}

/// The event as JSON without its bulky parts (attachment contents, raw Arrow schemas).
pub fn key_fields(event: &MetadataEvent) -> serde_json::Value {
    let mut value = serde_json::to_value(event).unwrap_or(serde_json::Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.remove("rawArrowSchema");
        if let Some(attachments) = object
            .get_mut("attachments")
            .and_then(|a| a.as_object_mut())
            && let Some(items) = attachments.get_mut("items").and_then(|i| i.as_array_mut())
        {
            for item in items {
                if let Some(item) = item.as_object_mut() {
                    item.remove("content");
                }
            }
        }
    }
    value
}

/// `root` or `derivative`, as the registry stores it.
pub fn kind_name(kind: weir_odf::DatasetKind) -> String {
    format!("{kind:?}").to_lowercase()
}

fn block_entry(hash: &Multihash, block: &MetadataBlock) -> BlockEntry {
    BlockEntry {
        sequence_number: block.sequence_number as i64,
        block_hash: hash.to_string(),
        prev_block_hash: block.prev_block_hash.map(|hash| hash.to_string()),
        system_time: block.system_time.timestamp_millis(),
        event_type: event_type(&block.event).to_string(),
        key_fields: key_fields(&block.event),
    }
}

impl Indexer {
    pub fn new(store: DatasetStore, metastore: Arc<dyn Metastore>) -> Self {
        Self { store, metastore }
    }

    /// Indexes blocks of `id` committed since the last indexed one; registers the dataset first
    /// when the registry lacks it. Returns how many blocks were added.
    pub async fn index_dataset(&self, id: &DatasetId) -> ServiceResult<usize> {
        let did = id.to_did_string();
        let entry = match self.metastore.dataset_by_id(&did).await? {
            Some(entry) => entry,
            None => match self.register_from_storage(id).await? {
                Some(entry) => entry,
                None => return Ok(0),
            },
        };
        let dataset = self.store.dataset(id);
        let Some(head) = dataset.head().await? else {
            return Ok(0);
        };
        let head_hash = head.hash.to_string();
        if entry.head_hash.as_deref() == Some(head_hash.as_str()) {
            return Ok(0);
        }
        let mut new_blocks = Vec::new();
        let mut cursor = Some(head.hash);
        while let Some(hash) = cursor {
            if entry.head_hash.as_deref() == Some(hash.to_string().as_str()) {
                break;
            }
            let block = dataset.get_block(&hash).await?;
            cursor = block.prev_block_hash;
            new_blocks.push((hash, block));
        }
        new_blocks.reverse();
        // Back at the seed without meeting the indexed head: the chain was reset, and the
        // index is rebuilt from the whole chain.
        let rewritten = cursor.is_none() && entry.head_hash.is_some();
        let mut statistics = if rewritten {
            DatasetStatistics::default()
        } else {
            self.metastore.statistics(&did).await?.unwrap_or_default()
        };
        let mut upstream = None;
        for (_, block) in &new_blocks {
            self.account_block(&mut statistics, &mut upstream, &entry, block)
                .await?;
        }
        let documented = new_blocks.iter().any(|(_, block)| {
            matches!(
                block.event,
                MetadataEvent::SetInfo(_)
                    | MetadataEvent::SetLicense(_)
                    | MetadataEvent::SetAttachments(_)
            )
        });
        let docs = if documented || rewritten {
            Some(self.documentation(id).await?)
        } else {
            None
        };
        let update = IndexUpdate {
            docs,
            dataset_id: did.clone(),
            blocks: new_blocks
                .iter()
                .map(|(hash, block)| block_entry(hash, block))
                .collect(),
            statistics,
            upstream,
            rewritten,
        };
        self.metastore.apply_index_update(&update).await?;
        tracing::debug!(dataset_id = %did, blocks = update.blocks.len(), "indexed blocks");
        Ok(update.blocks.len())
    }

    /// What search sees of the documentation in force at the head: the newest `SetInfo`,
    /// `SetLicense` and `SetAttachments` of the chain.
    pub async fn documentation(&self, id: &DatasetId) -> ServiceResult<DatasetDocs> {
        let chain = self
            .store
            .dataset(id)
            .load_chain(None)
            .await
            .map_err(ServiceError::internal)?;
        let (mut info, mut license, mut attachments) = (false, false, false);
        let mut docs = DatasetDocs::default();
        for (_, block) in &chain.blocks {
            match &block.event {
                MetadataEvent::SetInfo(set) if !info => {
                    info = true;
                    docs.description = set.description.clone();
                    docs.keywords = set.keywords.clone().unwrap_or_default();
                }
                MetadataEvent::SetLicense(set) if !license => {
                    license = true;
                    docs.license = Some(set.spdx_id.clone().unwrap_or(set.short_name.clone()));
                }
                MetadataEvent::SetAttachments(set) if !attachments => {
                    attachments = true;
                    let weir_odf::Attachments::Embedded(embedded) = &set.attachments;
                    docs.readme = embedded
                        .items
                        .iter()
                        .find(|item| {
                            let name = item.path.to_ascii_lowercase();
                            name == "readme.md" || name == "readme.txt" || name == "readme"
                        })
                        .map(|item| item.content.clone());
                }
                _ => {}
            }
        }
        Ok(docs)
    }

    async fn account_block(
        &self,
        statistics: &mut DatasetStatistics,
        upstream: &mut Option<Vec<String>>,
        entry: &DatasetEntry,
        block: &MetadataBlock,
    ) -> ServiceResult<()> {
        let (new_data, watermark) = match &block.event {
            MetadataEvent::AddData(add) => (add.new_data.as_ref(), add.new_watermark),
            MetadataEvent::ExecuteTransform(execute) => {
                (execute.new_data.as_ref(), execute.new_watermark)
            }
            MetadataEvent::SetTransform(transform) => {
                let mut ids = Vec::new();
                for input in &transform.inputs {
                    match &input.dataset_ref {
                        DatasetRef::Id(id) => ids.push(id.to_did_string()),
                        DatasetRef::Alias(alias) => {
                            let account = match &alias.account_name {
                                Some(account) => account.clone(),
                                None => entry.owner_name.parse().map_err(ServiceError::internal)?,
                            };
                            if let Some(id) = self
                                .store
                                .resolve_alias(&account, &alias.dataset_name)
                                .await?
                            {
                                ids.push(id.to_did_string());
                            }
                        }
                    }
                }
                *upstream = Some(ids);
                return Ok(());
            }
            _ => return Ok(()),
        };
        if let Some(slice) = new_data {
            let interval = &slice.offset_interval;
            statistics.num_records += (interval.end - interval.start + 1) as i64;
            statistics.data_size_bytes += slice.size as i64;
            statistics.last_updated = Some(block.system_time.timestamp_millis());
        }
        if let Some(watermark) = watermark {
            statistics.last_watermark = Some(watermark.timestamp_millis());
        }
        Ok(())
    }

    /// Adds a dataset found in storage to the registry: owner from its alias (an account
    /// without password is created when missing), visibility from `info/visibility`
    /// (private when absent).
    pub async fn register_from_storage(
        &self,
        id: &DatasetId,
    ) -> ServiceResult<Option<DatasetEntry>> {
        let dataset = self.store.dataset(id);
        let Some(head) = dataset.head().await? else {
            return Ok(None);
        };
        let alias_text = match dataset.get_info("alias").await {
            Ok(bytes) => String::from_utf8_lossy(&bytes).to_string(),
            Err(_) => return Ok(None),
        };
        let Ok(alias) = alias_text.trim().parse::<weir_odf::DatasetAlias>() else {
            return Ok(None);
        };
        let Some(account_name) = alias.account_name.clone() else {
            return Ok(None);
        };
        let owner = self.account_for(account_name.as_str()).await?;
        let visibility = match dataset.get_info("visibility").await {
            Ok(bytes) => Visibility::parse(String::from_utf8_lossy(&bytes).trim())
                .unwrap_or(Visibility::Private),
            Err(_) => Visibility::Private,
        };
        let blocks = dataset.blocks_from(&head.hash).await?;
        let (kind, created_at) = match blocks.last() {
            Some((_, seed_block)) => match &seed_block.event {
                MetadataEvent::Seed(seed) => (
                    kind_name(seed.dataset_kind),
                    seed_block.system_time.timestamp_millis(),
                ),
                _ => return Ok(None),
            },
            None => return Ok(None),
        };
        let entry = DatasetEntry {
            id: id.to_did_string(),
            owner_id: owner.id,
            owner_name: owner.name,
            name: alias.dataset_name.to_string(),
            kind,
            storage_location: format!(
                "{}/{}",
                self.store.url().as_str().trim_end_matches('/'),
                id.to_did_string()
            ),
            visibility,
            created_at,
            head_hash: None,
            head_sequence: None,
        };
        self.metastore.upsert_dataset(&entry).await?;
        tracing::info!(dataset_id = %entry.id, alias = %entry.alias(), "registered dataset from storage");
        Ok(self.metastore.dataset_by_id(&entry.id).await?)
    }

    async fn account_for(&self, name: &str) -> ServiceResult<Account> {
        if let Some(account) = self.metastore.account_by_name(name).await? {
            return Ok(account);
        }
        let account = Account {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
            kind: AccountKind::User,
            display_name: name.to_string(),
            email: None,
            is_admin: false,
            created_at: chrono::Utc::now().timestamp_millis(),
        };
        match self
            .metastore
            .create_account(NewAccount {
                account: account.clone(),
                password_hash: None,
            })
            .await
        {
            Ok(()) => Ok(account),
            Err(weir_metastore::MetastoreError::Conflict(_)) => self
                .metastore
                .account_by_name(name)
                .await?
                .ok_or_else(|| ServiceError::Internal(format!("account `{name}` vanished"))),
            Err(error) => Err(error.into()),
        }
    }

    /// Indexes every dataset in storage (registering unknown ones): the rebuild after a lost
    /// database, and the leader's periodic repair.
    pub async fn index_all(&self) -> ServiceResult<IndexReport> {
        let mut report = IndexReport::default();
        // Creations killed between reserving the name and the first commit free their names.
        let freed = self
            .store
            .roll_back_half_created(weir_dataset::registry::HALF_CREATED_GRACE)
            .await?;
        for alias in &freed {
            tracing::warn!(%alias, "freed the name of a dataset whose creation never finished");
        }
        for id in self.store.list_datasets().await? {
            match self.index_dataset(&id).await {
                Ok(blocks) => {
                    report.datasets += 1;
                    report.blocks += blocks;
                }
                Err(error) => tracing::warn!(dataset_id = %id, %error, "cannot index dataset"),
            }
        }
        Ok(report)
    }
}
