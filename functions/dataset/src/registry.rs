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
    /// A field that would make every push or transform fail.
    #[error("invalid dataset definition {0}")]
    InvalidDefinition(#[from] crate::definition::DefinitionError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// How long a reserved name may go without a head before the creation counts as abandoned (a
/// creator killed between reserving the name and committing the first blocks). Creating takes
/// milliseconds; the margin keeps a slow creation in progress from being rolled back.
pub const HALF_CREATED_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

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

    /// Every registered alias with its dataset id, sorted by account then name.
    pub async fn list_aliases(&self) -> Result<Vec<(DatasetAlias, DatasetId)>, StorageError> {
        use futures::TryStreamExt;
        let prefix = self.root().clone().join(".aliases");
        let objects: Vec<object_store::ObjectMeta> = self
            .object_store()
            .list(Some(&prefix))
            .try_collect()
            .await?;
        let mut aliases = Vec::with_capacity(objects.len());
        for object in objects {
            let parts: Vec<_> = object.location.parts().collect();
            let [.., account, name] = parts.as_slice() else {
                continue;
            };
            let (Ok(account), Ok(name)) = (
                account.as_ref().parse::<AccountName>(),
                name.as_ref().parse::<DatasetName>(),
            ) else {
                continue;
            };
            // The file holds the id; the alias as written lives in the dataset's info/alias.
            let Some(id) = self.resolve_alias(&account, &name).await? else {
                continue;
            };
            let written = match self.dataset(&id).get_info("alias").await {
                Ok(bytes) => String::from_utf8_lossy(&bytes).parse::<DatasetAlias>().ok(),
                Err(_) => None,
            };
            let alias = written.unwrap_or_else(|| DatasetAlias::new(Some(account), name));
            aliases.push((alias, id));
        }
        aliases.sort_by_key(|(alias, _)| alias.to_string().to_ascii_lowercase());
        Ok(aliases)
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
        crate::definition::check_definition(&definition)?;
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
        let mut reclaimed = false;
        loop {
            match self
                .object_store()
                .put_opts(&key, payload.clone(), options.clone())
                .await
            {
                Ok(_) => break,
                Err(object_store::Error::AlreadyExists { .. })
                | Err(object_store::Error::Precondition { .. }) => {
                    // A name left by a creation that never finished is taken back, once.
                    if reclaimed
                        || !self
                            .roll_back_if_half_created(account, &name, HALF_CREATED_GRACE)
                            .await?
                    {
                        return Err(CreateDatasetError::NameTaken { alias });
                    }
                    reclaimed = true;
                }
                Err(error) => return Err(StorageError::from(error).into()),
            }
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

impl DatasetStore {
    /// Rolls back the creation of `account/name` if it never finished: the name is reserved but
    /// the dataset has no head, and the reservation is older than `grace`. Removes the
    /// reservation and whatever the creation wrote; returns whether it did.
    pub async fn roll_back_if_half_created(
        &self,
        account: &AccountName,
        name: &DatasetName,
        grace: std::time::Duration,
    ) -> Result<bool, StorageError> {
        let key = alias_key(self, account, name);
        let reserved = match self.object_store().head(&key).await {
            Ok(meta) => meta.last_modified,
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(error) => return Err(error.into()),
        };
        let age = Utc::now().signed_duration_since(reserved);
        if age.to_std().unwrap_or_default() < grace {
            return Ok(false);
        }
        let Some(id) = self.resolve_alias(account, name).await? else {
            return Ok(false);
        };
        if self.dataset(&id).head().await?.is_some() {
            return Ok(false);
        }
        tracing::warn!(dataset_id = %id, account = %account, name = %name,
            "rolling back a dataset creation that never finished");
        self.delete_dataset(&id, account, name).await?;
        Ok(true)
    }

    /// Rolls back every creation that never finished (see `roll_back_if_half_created`);
    /// returns the names freed. Run by the control plane's repair loop and reindex.
    pub async fn roll_back_half_created(
        &self,
        grace: std::time::Duration,
    ) -> Result<Vec<DatasetAlias>, StorageError> {
        let mut freed = Vec::new();
        for (alias, _) in self.list_aliases().await? {
            let Some(account) = alias.account_name.clone() else {
                continue;
            };
            if self
                .roll_back_if_half_created(&account, &alias.dataset_name, grace)
                .await?
            {
                freed.push(alias);
            }
        }
        Ok(freed)
    }

    /// Moves the alias of `id` from `account/old_name` to `account/new_name`: the new name is
    /// reserved exclusively first, so a taken name leaves everything as it was.
    pub async fn rename_alias(
        &self,
        id: &DatasetId,
        account: &AccountName,
        old_name: &DatasetName,
        new_name: &DatasetName,
    ) -> Result<(), CreateDatasetError> {
        let new_alias = DatasetAlias::new(Some(account.clone()), new_name.clone());
        let old_key = alias_key(self, account, old_name);
        let new_key = alias_key(self, account, new_name);
        if old_key != new_key {
            let options = PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            };
            let payload = PutPayload::from(Bytes::from(id.to_did_string()));
            match self
                .object_store()
                .put_opts(&new_key, payload, options)
                .await
            {
                Ok(_) => {}
                Err(object_store::Error::AlreadyExists { .. })
                | Err(object_store::Error::Precondition { .. }) => {
                    return Err(CreateDatasetError::NameTaken { alias: new_alias });
                }
                Err(error) => return Err(StorageError::from(error).into()),
            }
        }
        self.dataset(id)
            .put_info("alias", Bytes::from(new_alias.to_string()))
            .await?;
        if old_key != new_key {
            match self.object_store().delete(&old_key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(StorageError::from(error).into()),
            }
        }
        Ok(())
    }

    /// Deletes the alias `account/name` and every object of dataset `id`. The alias goes first,
    /// so a half-finished delete leaves an unreachable dataset, never a dangling name.
    pub async fn delete_dataset(
        &self,
        id: &DatasetId,
        account: &AccountName,
        name: &DatasetName,
    ) -> Result<(), StorageError> {
        use futures::TryStreamExt;
        let key = alias_key(self, account, name);
        match self.object_store().delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => return Err(error.into()),
        }
        let prefix = self.dataset(id).layout().prefix().clone();
        let objects: Vec<object_store::ObjectMeta> = self
            .object_store()
            .list(Some(&prefix))
            .try_collect()
            .await?;
        // The head goes first so readers stop seeing the dataset before its blocks vanish.
        let head = self.dataset(id).layout().head();
        match self.object_store().delete(&head).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => return Err(error.into()),
        }
        for object in objects {
            match self.object_store().delete(&object.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        tracing::info!(dataset_id = %id, "deleted dataset");
        Ok(())
    }
}
