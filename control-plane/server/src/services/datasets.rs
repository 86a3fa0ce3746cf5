//! Datasets: create from a manifest, list and search, rename, delete, visibility, roles,
//! lineage and the indexed metadata chain. Storage is written first (it is the truth); the
//! registry and the event follow in one transaction.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use weir_dataset::DatasetStore;
use weir_dataset::registry::CreateDatasetError;
use weir_events::WeirEvent;
use weir_function_runtime::Caller;
use weir_metastore::{
    BlockEntry, DatasetEntry, DatasetFilter, DatasetStatistics, ListingScope, Metastore, Role,
    Visibility,
};
use weir_odf::{AccountName, DatasetId, DatasetName};

use crate::error::{ServiceError, ServiceResult};
use crate::indexer::{Indexer, kind_name};
use crate::outbox::outbox_message;
use crate::services::accounts::require_account;
use crate::services::{AccessService, AccountService};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatasetView {
    pub id: String,
    pub alias: String,
    pub owner: String,
    pub name: String,
    pub kind: String,
    #[schema(value_type = String, example = "private")]
    pub visibility: Visibility,
    pub head: Option<String>,
    pub head_sequence: Option<i64>,
    pub created_at: i64,
    #[schema(value_type = Option<String>, example = "owner")]
    pub your_role: Option<Role>,
    #[schema(value_type = Option<Object>)]
    pub statistics: Option<DatasetStatistics>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Lineage {
    pub upstream: Vec<DatasetView>,
    pub downstream: Vec<DatasetView>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleView {
    pub account: String,
    #[schema(value_type = String, example = "reader")]
    pub role: Role,
}

pub struct DatasetService {
    pub store: DatasetStore,
    pub metastore: Arc<dyn Metastore>,
    pub access: Arc<AccessService>,
    pub accounts: Arc<AccountService>,
    pub indexer: Arc<Indexer>,
    pub default_visibility: Visibility,
    /// Where polling sources may fetch from.
    pub polling: weir_dataset::polling::PollingPolicy,
    /// Wakes the outbox relay after a change.
    pub outbox_wake: Arc<tokio::sync::Notify>,
}

fn parse_names(owner: &str, name: &str) -> ServiceResult<(AccountName, DatasetName)> {
    let not_found = || ServiceError::dataset_not_found(&format!("{owner}/{name}"));
    Ok((
        owner.parse().map_err(|_| not_found())?,
        name.parse().map_err(|_| not_found())?,
    ))
}

impl DatasetService {
    pub async fn view(&self, caller: &Caller, entry: DatasetEntry) -> ServiceResult<DatasetView> {
        let role = self.access.role(caller, &entry).await?;
        let statistics = self.metastore.statistics(&entry.id).await?;
        Ok(DatasetView {
            alias: entry.alias(),
            id: entry.id,
            owner: entry.owner_name,
            name: entry.name,
            kind: entry.kind,
            visibility: entry.visibility,
            head: entry.head_hash,
            head_sequence: entry.head_sequence,
            created_at: entry.created_at,
            your_role: role,
            statistics,
        })
    }

    /// The dataset `owner/name` if the caller holds at least `needed` on it. Datasets the
    /// caller may not read are reported as not found.
    pub async fn authorize(
        &self,
        caller: &Caller,
        owner: &str,
        name: &str,
        needed: Role,
    ) -> ServiceResult<DatasetEntry> {
        let alias = format!("{owner}/{name}");
        let entry = self
            .metastore
            .dataset_by_alias(owner, name)
            .await?
            .ok_or_else(|| ServiceError::dataset_not_found(&alias))?;
        match self.access.role(caller, &entry).await? {
            None => Err(ServiceError::dataset_not_found(&alias)),
            Some(role) if role >= needed => Ok(entry),
            Some(role) => Err(ServiceError::Forbidden(format!(
                "{} on `{alias}` needs the {} role; you have {}",
                if caller.account_id.is_some() {
                    "this"
                } else {
                    "anonymous access"
                },
                needed.as_str(),
                role.as_str()
            ))),
        }
    }

    pub async fn create(
        &self,
        caller: &Caller,
        manifest: &str,
        owner: Option<&str>,
        visibility: Option<Visibility>,
    ) -> ServiceResult<DatasetView> {
        let caller_id = require_account(caller)?;
        let owner = match owner {
            Some(owner) => self.accounts.account_by_name(owner).await?,
            None => self.accounts.me(caller).await?,
        };
        let may_create = caller.is_admin
            || owner.id == caller_id
            || self
                .metastore
                .organizations_of(caller_id)
                .await?
                .contains(&owner.id);
        if !may_create {
            return Err(ServiceError::Forbidden(format!(
                "you cannot create datasets in account `{}`",
                owner.name
            )));
        }
        // Parsing is CPU work that grows with the text: keep it off the async workers.
        let text = manifest.to_string();
        let mut definition =
            tokio::task::spawn_blocking(move || weir_odf::manifest::parse_dataset_manifest(&text))
                .await
                .map_err(ServiceError::internal)?
                .map_err(|error| ServiceError::InvalidInput(format!("manifest: {error}")))?;
        for event in &definition.metadata {
            if let weir_odf::MetadataEvent::SetPollingSource(source) = event {
                self.polling
                    .check_fetch(&source.fetch)
                    .map_err(|violation| {
                        ServiceError::InvalidInput(format!(
                            "manifest: SetPollingSource: {}: {}",
                            violation.field, violation.message
                        ))
                    })?;
            }
        }
        let account: AccountName = owner.name.parse().map_err(ServiceError::internal)?;
        self.resolve_transform_inputs(caller, &account, &mut definition)
            .await?;
        let name = definition
            .alias
            .as_ref()
            .map(|alias| alias.dataset_name.to_string())
            .unwrap_or_default();
        let (dataset, result) = self
            .store
            .create_dataset(&account, definition, chrono::Utc::now())
            .await
            .map_err(|error| match error {
                CreateDatasetError::NameTaken { alias } => {
                    ServiceError::Conflict(format!("dataset `{alias}` already exists"))
                }
                CreateDatasetError::MissingName => {
                    ServiceError::InvalidInput("manifest has no dataset name".to_string())
                }
                CreateDatasetError::InvalidMetadata(error) => {
                    ServiceError::InvalidInput(format!("invalid dataset metadata: {error}"))
                }
                CreateDatasetError::InvalidDefinition(error) => {
                    ServiceError::InvalidInput(format!("manifest {error}"))
                }
                other => ServiceError::internal(other),
            })?;
        let visibility = visibility.unwrap_or(self.default_visibility);
        dataset
            .put_info("visibility", Bytes::from(visibility.as_str()))
            .await?;
        let did = dataset.id().to_did_string();
        let seed_kind = match result.blocks.first().map(|(_, block)| &block.event) {
            Some(weir_odf::MetadataEvent::Seed(seed)) => kind_name(seed.dataset_kind),
            _ => kind_name(weir_odf::DatasetKind::Root),
        };
        let head_sequence = result
            .blocks
            .last()
            .map(|(_, block)| block.sequence_number)
            .unwrap_or_default();
        let entry = DatasetEntry {
            id: did.clone(),
            owner_id: owner.id.clone(),
            owner_name: owner.name.clone(),
            name,
            kind: seed_kind.clone(),
            storage_location: format!("{}/{did}", self.store.url().as_str().trim_end_matches('/')),
            visibility,
            created_at: chrono::Utc::now().timestamp_millis(),
            head_hash: None,
            head_sequence: None,
        };
        let created = outbox_message(WeirEvent::DatasetCreated {
            dataset_id: did.clone(),
            alias: entry.alias(),
            kind: seed_kind,
        });
        let committed = outbox_message(WeirEvent::BlockCommitted {
            dataset_id: did.clone(),
            block_hash: result.new_head.to_string(),
            sequence_number: head_sequence,
        });
        // Storage already holds the dataset: if this fails, the repair loop registers it.
        self.metastore
            .create_dataset(&entry, &[created, committed])
            .await?;
        self.outbox_wake.notify_one();
        self.indexer.index_dataset(dataset.id()).await?;
        let entry = self
            .metastore
            .dataset_by_id(&did)
            .await?
            .ok_or_else(|| ServiceError::Internal("created dataset vanished".to_string()))?;
        tracing::info!(dataset_id = %did, alias = %entry.alias(), "dataset created");
        self.view(caller, entry).await
    }

    /// Manifests may name transform inputs by alias; the chain records DIDs (the ODF rule), so
    /// each alias is resolved here, and kept as the input's query alias. Inputs the caller may
    /// not read are reported as not found.
    async fn resolve_transform_inputs(
        &self,
        caller: &Caller,
        owner: &AccountName,
        definition: &mut weir_odf::manifest::DatasetDefinition,
    ) -> ServiceResult<()> {
        use weir_odf::{DatasetRef, MetadataEvent};
        for event in &mut definition.metadata {
            let MetadataEvent::SetTransform(transform) = event else {
                continue;
            };
            for input in &mut transform.inputs {
                let DatasetRef::Alias(alias) = &input.dataset_ref else {
                    continue;
                };
                let account = alias.account_name.clone().unwrap_or_else(|| owner.clone());
                let text = format!("{account}/{}", alias.dataset_name);
                let entry = self
                    .authorize(
                        caller,
                        account.as_str(),
                        alias.dataset_name.as_str(),
                        Role::Reader,
                    )
                    .await
                    .map_err(|_| {
                        ServiceError::InvalidInput(format!("transform input `{text}` not found"))
                    })?;
                let id: DatasetId = entry.id.parse().map_err(ServiceError::internal)?;
                if input.alias.is_none() {
                    input.alias = Some(alias.dataset_name.to_string());
                }
                input.dataset_ref = DatasetRef::Id(id);
            }
        }
        Ok(())
    }

    /// A page of the datasets `caller` may read. The permission filter runs in the database
    /// before paging, so pages are full while more readable datasets exist.
    pub async fn list(
        &self,
        caller: &Caller,
        filter: &DatasetFilter,
    ) -> ServiceResult<Vec<DatasetView>> {
        let scope = match &caller.account_id {
            _ if caller.is_admin => ListingScope::All,
            None => ListingScope::PublicOnly,
            Some(account_id) => ListingScope::ReadableBy(account_id.clone()),
        };
        let filter = DatasetFilter {
            scope,
            ..filter.clone()
        };
        let mut views = Vec::new();
        for entry in self.metastore.list_datasets(&filter).await? {
            views.push(self.view(caller, entry).await?);
        }
        Ok(views)
    }

    pub async fn get(
        &self,
        caller: &Caller,
        owner: &str,
        name: &str,
    ) -> ServiceResult<DatasetView> {
        let entry = self.authorize(caller, owner, name, Role::Reader).await?;
        let entry = self.catch_up(entry).await?;
        self.view(caller, entry).await
    }

    /// Indexes commits the index has not seen yet (one head read when up to date), so reads
    /// agree with storage even before the `block-committed` event arrives.
    async fn catch_up(&self, entry: DatasetEntry) -> ServiceResult<DatasetEntry> {
        let id: DatasetId = entry.id.parse().map_err(ServiceError::internal)?;
        if self.indexer.index_dataset(&id).await? == 0 {
            return Ok(entry);
        }
        Ok(self
            .metastore
            .dataset_by_id(&entry.id)
            .await?
            .unwrap_or(entry))
    }

    pub async fn rename(
        &self,
        caller: &Caller,
        owner: &str,
        name: &str,
        new_name: &str,
    ) -> ServiceResult<DatasetView> {
        let entry = self
            .authorize(caller, owner, name, Role::Maintainer)
            .await?;
        let new_dataset_name: DatasetName = new_name.parse().map_err(|_| {
            ServiceError::InvalidInput(format!("invalid dataset name `{new_name}`"))
        })?;
        let (account, old_name) = parse_names(&entry.owner_name, &entry.name)?;
        let id: DatasetId = entry.id.parse().map_err(ServiceError::internal)?;
        self.store
            .rename_alias(&id, &account, &old_name, &new_dataset_name)
            .await
            .map_err(|error| match error {
                CreateDatasetError::NameTaken { alias } => {
                    ServiceError::Conflict(format!("dataset `{alias}` already exists"))
                }
                other => ServiceError::internal(other),
            })?;
        let event = outbox_message(WeirEvent::DatasetRenamed {
            dataset_id: entry.id.clone(),
            old_alias: entry.alias(),
            new_alias: format!("{}/{new_name}", entry.owner_name),
        });
        self.metastore
            .rename_dataset(&entry.id, new_name, &[event])
            .await?;
        self.outbox_wake.notify_one();
        let entry = self
            .metastore
            .dataset_by_id(&entry.id)
            .await?
            .ok_or_else(|| ServiceError::dataset_not_found(new_name))?;
        self.view(caller, entry).await
    }

    pub async fn delete(&self, caller: &Caller, owner: &str, name: &str) -> ServiceResult<()> {
        let entry = self.authorize(caller, owner, name, Role::Owner).await?;
        let downstream = self.metastore.downstream(&entry.id).await?;
        if !downstream.is_empty() {
            return Err(ServiceError::Conflict(format!(
                "dataset `{}` has {} downstream dataset(s); delete them first",
                entry.alias(),
                downstream.len()
            )));
        }
        let (account, dataset_name) = parse_names(&entry.owner_name, &entry.name)?;
        let id: DatasetId = entry.id.parse().map_err(ServiceError::internal)?;
        self.store
            .delete_dataset(&id, &account, &dataset_name)
            .await?;
        let event = outbox_message(WeirEvent::DatasetDeleted {
            dataset_id: entry.id.clone(),
            alias: entry.alias(),
        });
        self.metastore.delete_dataset(&entry.id, &[event]).await?;
        self.access.invalidate_dataset(&entry.id);
        self.outbox_wake.notify_one();
        Ok(())
    }

    pub async fn set_visibility(
        &self,
        caller: &Caller,
        owner: &str,
        name: &str,
        visibility: Visibility,
    ) -> ServiceResult<DatasetView> {
        let entry = self
            .authorize(caller, owner, name, Role::Maintainer)
            .await?;
        let id: DatasetId = entry.id.parse().map_err(ServiceError::internal)?;
        self.store
            .dataset(&id)
            .put_info("visibility", Bytes::from(visibility.as_str()))
            .await?;
        let event = outbox_message(WeirEvent::VisibilityChanged {
            dataset_id: entry.id.clone(),
            visibility: visibility.as_str().to_string(),
        });
        self.metastore
            .set_visibility(&entry.id, visibility, &[event])
            .await?;
        self.access.invalidate_dataset(&entry.id);
        self.outbox_wake.notify_one();
        self.get(caller, owner, name).await
    }

    pub async fn roles(
        &self,
        caller: &Caller,
        owner: &str,
        name: &str,
    ) -> ServiceResult<Vec<RoleView>> {
        let entry = self
            .authorize(caller, owner, name, Role::Maintainer)
            .await?;
        let mut views = Vec::new();
        for (account_id, role) in self.metastore.list_roles(&entry.id).await? {
            let account = self
                .accounts
                .account_by_id(&account_id)
                .await?
                .map(|account| account.name)
                .unwrap_or(account_id);
            views.push(RoleView { account, role });
        }
        Ok(views)
    }

    /// Grants `role` to `account` (or removes their role with `None`). Maintainers manage
    /// readers, editors and maintainers; only owners grant or take away ownership.
    pub async fn set_role(
        &self,
        caller: &Caller,
        owner: &str,
        name: &str,
        account: &str,
        role: Option<Role>,
    ) -> ServiceResult<Vec<RoleView>> {
        let entry = self
            .authorize(caller, owner, name, Role::Maintainer)
            .await?;
        let grantee = self.accounts.account_by_name(account).await?;
        let current = self.metastore.role_of(&entry.id, &grantee.id).await?;
        let touches_owner = role == Some(Role::Owner) || current == Some(Role::Owner);
        if touches_owner {
            self.authorize(caller, owner, name, Role::Owner).await?;
        }
        if current == Some(Role::Owner) && grantee.id == entry.owner_id {
            return Err(ServiceError::InvalidInput(format!(
                "`{}` owns `{}`; its owner role cannot change",
                grantee.name,
                entry.alias()
            )));
        }
        let event = outbox_message(WeirEvent::RoleChanged {
            dataset_id: entry.id.clone(),
            account_id: grantee.id.clone(),
            role: role.map(|role| role.as_str().to_string()),
        });
        self.metastore
            .set_role(&entry.id, &grantee.id, role, &[event])
            .await?;
        self.access.invalidate_dataset(&entry.id);
        self.outbox_wake.notify_one();
        self.roles(caller, owner, name).await
    }

    pub async fn lineage(
        &self,
        caller: &Caller,
        owner: &str,
        name: &str,
    ) -> ServiceResult<Lineage> {
        let entry = self.authorize(caller, owner, name, Role::Reader).await?;
        let mut lineage = Lineage {
            upstream: Vec::new(),
            downstream: Vec::new(),
        };
        for (ids, views) in [
            (
                self.metastore.upstream(&entry.id).await?,
                &mut lineage.upstream,
            ),
            (
                self.metastore.downstream(&entry.id).await?,
                &mut lineage.downstream,
            ),
        ] {
            for id in ids {
                let Some(related) = self.metastore.dataset_by_id(&id).await? else {
                    continue;
                };
                if self.access.role(caller, &related).await?.is_some() {
                    views.push(self.view(caller, related).await?);
                }
            }
        }
        Ok(lineage)
    }

    /// The indexed metadata chain, newest first, `limit` blocks below `before`.
    pub async fn blocks(
        &self,
        caller: &Caller,
        owner: &str,
        name: &str,
        before: Option<i64>,
        limit: i64,
    ) -> ServiceResult<Vec<BlockEntry>> {
        let entry = self.authorize(caller, owner, name, Role::Reader).await?;
        let entry = self.catch_up(entry).await?;
        Ok(self
            .metastore
            .blocks(&entry.id, before, limit.clamp(1, 1000))
            .await?)
    }
}

/// The expression of a `search` parameter; a bad one is refused naming where it went wrong.
pub fn search_expression(
    search: Option<&str>,
) -> ServiceResult<Option<weir_metastore::search::Expr>> {
    match search {
        None => Ok(None),
        Some(text) if text.trim().is_empty() => Ok(None),
        Some(text) => weir_metastore::search::parse(text)
            .map(Some)
            .map_err(|error| ServiceError::InvalidInput(format!("search: {error}"))),
    }
}
