//! Creating datasets from manifests and resolving `account/name` aliases to dataset ids.
//!
//! Aliases are kept in storage next to the datasets, so they are rebuildable with the data:
//! `<root>/.aliases/<account>/<name>` (lowercase) holds the dataset's DID, created exclusively so
//! two datasets can never share a name, and `<dataset>/info/alias` holds the alias as written.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use weir_odf::manifest::DatasetDefinition;
use weir_odf::validation::ChainValidator;
use weir_odf::{AccountName, DatasetAlias, DatasetId, DatasetName, MetadataEvent, Seed};

use crate::dataset::{CommitResult, Dataset};
use crate::error::{CommitError, StorageError};
use crate::store::DatasetStore;

#[derive(Debug, thiserror::Error)]
pub enum CreateDatasetError {
    #[error("dataset `{alias}` already exists")]
    NameTaken { alias: DatasetAlias },
    #[error("manifest has no dataset name")]
    MissingName,
    #[error("invalid dataset metadata: {0}")]
    InvalidMetadata(weir_odf::validation::ChainValidationError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("internal error: {0}")]
    Internal(String),
}

fn alias_key(store: &DatasetStore, account: &AccountName, name: &DatasetName) -> Path {
    store
        .root()
        .clone()
        .join(".aliases")
        .join(account.as_str().to_ascii_lowercase())
        .join(name.as_str().to_ascii_lowercase())
}

impl DatasetStore {
    /// Dataset id registered under `account/name`, if any (names are case-insensitive).
    pub async fn resolve_alias(
        &self,
        account: &AccountName,
        name: &DatasetName,
    ) -> Result<Option<DatasetId>, StorageError> {
        let key = alias_key(self, account, name);
        let bytes = match self.object_store().get(&key).await {
            Ok(result) => result.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let text = String::from_utf8_lossy(&bytes).trim().to_string();
        text.parse()
            .map(Some)
            .map_err(|_| StorageError::InvalidHead { content: text })
    }

    /// Creates a dataset owned by `account` from a manifest: Seed plus the manifest's events,
    /// committed atomically, and the alias reserved exclusively.
    pub async fn create_dataset(
        &self,
        account: &AccountName,
        definition: DatasetDefinition,
        system_time: DateTime<Utc>,
    ) -> Result<(Dataset, CommitResult), CreateDatasetError> {
        let name = definition
            .alias
            .as_ref()
            .map(|alias| alias.dataset_name.clone())
            .ok_or(CreateDatasetError::MissingName)?;
        let alias = DatasetAlias::new(Some(account.clone()), name.clone());
        let dataset_id = definition
            .did
            .unwrap_or_else(|| DatasetId::new_generated().1);

        let mut events = vec![MetadataEvent::Seed(Seed {
            dataset_id,
            dataset_kind: definition.kind,
        })];
        events.extend(definition.metadata);
        // Validate before reserving the name so a bad manifest leaves nothing behind.
        let mut probe = ChainValidator::new();
        for (index, event) in events.iter().enumerate() {
            let block = weir_odf::MetadataBlock {
                system_time,
                prev_block_hash: probe.head().map(|(hash, _)| *hash),
                sequence_number: index as u64,
                event: event.clone(),
            };
            let (_, hash) = weir_odf::encode_and_hash_block(&block);
            probe
                .append(&hash, &block)
                .map_err(CreateDatasetError::InvalidMetadata)?;
        }

        let key = alias_key(self, account, &name);
        let options = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let payload = PutPayload::from(Bytes::from(dataset_id.to_did_string()));
        match self.object_store().put_opts(&key, payload, options).await {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => {
                return Err(CreateDatasetError::NameTaken { alias });
            }
            Err(error) => return Err(StorageError::from(error).into()),
        }

        let dataset = self.dataset(&dataset_id);
        dataset
            .put_info("alias", Bytes::from(alias.to_string()))
            .await?;
        let result = match dataset
            .commit_many(None, &ChainValidator::new(), events, system_time)
            .await
        {
            Ok(result) => result,
            Err(error) => {
                let _ = self.object_store().delete(&key).await;
                return Err(match error {
                    CommitError::InvalidBlock(error) => CreateDatasetError::InvalidMetadata(error),
                    CommitError::Storage(error) => CreateDatasetError::Storage(error),
                    other => CreateDatasetError::Internal(other.to_string()),
                });
            }
        };
        tracing::info!(dataset_id = %dataset_id, alias = %alias, "created dataset");
        Ok((dataset, result))
    }
}
