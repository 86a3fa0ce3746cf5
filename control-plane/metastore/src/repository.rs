//! The repository traits the control plane's services use. Every implementation runs the one
//! contract suite in `tests/repository_contract.rs`.

use async_trait::async_trait;

use crate::error::MetastoreResult;
use crate::model::*;

#[async_trait]
pub trait AccountRepository: Send + Sync {
    /// Fails with `Conflict` when the name is taken (names compare case-insensitively).
    async fn create_account(&self, account: NewAccount) -> MetastoreResult<()>;
    async fn account_by_id(&self, id: &str) -> MetastoreResult<Option<Account>>;
    async fn account_by_name(&self, name: &str) -> MetastoreResult<Option<Account>>;
    async fn password_hash(&self, account_id: &str) -> MetastoreResult<Option<String>>;
    async fn list_accounts(&self) -> MetastoreResult<Vec<Account>>;
    async fn add_member(&self, organization_id: &str, member_id: &str) -> MetastoreResult<()>;
    /// Ids of the organizations `member_id` belongs to.
    async fn organizations_of(&self, member_id: &str) -> MetastoreResult<Vec<String>>;
}

#[async_trait]
pub trait TokenRepository: Send + Sync {
    async fn create_token(&self, token: AccessToken, secret_hash: &str) -> MetastoreResult<()>;
    async fn list_tokens(&self, account_id: &str) -> MetastoreResult<Vec<AccessToken>>;
    /// The token and its secret hash, revoked or not.
    async fn token_by_id(&self, id: &str) -> MetastoreResult<Option<(AccessToken, String)>>;
    /// Marks the token revoked; `NotFound` unless it belongs to `account_id` and is not revoked.
    async fn revoke_token(
        &self,
        account_id: &str,
        token_id: &str,
        revoked_at: i64,
        outbox: &[OutboxMessage],
    ) -> MetastoreResult<()>;
}

#[async_trait]
pub trait DatasetRepository: Send + Sync {
    /// Fails with `Conflict` when the id or `owner/name` is taken.
    async fn create_dataset(
        &self,
        entry: &DatasetEntry,
        outbox: &[OutboxMessage],
    ) -> MetastoreResult<()>;
    /// Inserts or replaces the registry entry (reindex); keeps visibility when the entry exists.
    async fn upsert_dataset(&self, entry: &DatasetEntry) -> MetastoreResult<()>;
    async fn dataset_by_id(&self, id: &str) -> MetastoreResult<Option<DatasetEntry>>;
    async fn dataset_by_alias(
        &self,
        owner_name: &str,
        name: &str,
    ) -> MetastoreResult<Option<DatasetEntry>>;
    async fn list_datasets(&self, filter: &DatasetFilter) -> MetastoreResult<Vec<DatasetEntry>>;
    async fn rename_dataset(
        &self,
        id: &str,
        new_name: &str,
        outbox: &[OutboxMessage],
    ) -> MetastoreResult<()>;
    async fn delete_dataset(&self, id: &str, outbox: &[OutboxMessage]) -> MetastoreResult<()>;
    async fn set_visibility(
        &self,
        id: &str,
        visibility: Visibility,
        outbox: &[OutboxMessage],
    ) -> MetastoreResult<()>;
    /// Grants `role` (or removes any role with `None`).
    async fn set_role(
        &self,
        dataset_id: &str,
        account_id: &str,
        role: Option<Role>,
        outbox: &[OutboxMessage],
    ) -> MetastoreResult<()>;
    async fn role_of(&self, dataset_id: &str, account_id: &str) -> MetastoreResult<Option<Role>>;
    async fn list_roles(&self, dataset_id: &str) -> MetastoreResult<Vec<(String, Role)>>;
}

#[async_trait]
pub trait MetadataIndexRepository: Send + Sync {
    /// Adds blocks (already indexed ones are skipped), moves the head forward (never back),
    /// replaces statistics and, when given, the upstream set, all in one transaction.
    async fn apply_index_update(&self, update: &IndexUpdate) -> MetastoreResult<()>;
    /// Blocks newest first, strictly below `before_sequence` when given.
    async fn blocks(
        &self,
        dataset_id: &str,
        before_sequence: Option<i64>,
        limit: i64,
    ) -> MetastoreResult<Vec<BlockEntry>>;
    async fn block_by_hash(
        &self,
        dataset_id: &str,
        block_hash: &str,
    ) -> MetastoreResult<Option<BlockEntry>>;
    /// The newest block of `event_type`, if any.
    async fn last_block_of_type(
        &self,
        dataset_id: &str,
        event_type: &str,
    ) -> MetastoreResult<Option<BlockEntry>>;
    async fn statistics(&self, dataset_id: &str) -> MetastoreResult<Option<DatasetStatistics>>;
    async fn upstream(&self, dataset_id: &str) -> MetastoreResult<Vec<String>>;
    async fn downstream(&self, dataset_id: &str) -> MetastoreResult<Vec<String>>;
}

#[async_trait]
pub trait OutboxRepository: Send + Sync {
    async fn enqueue(&self, messages: &[OutboxMessage]) -> MetastoreResult<()>;
    /// Unpublished messages, oldest first.
    async fn pending_messages(&self, limit: i64) -> MetastoreResult<Vec<PendingMessage>>;
    async fn mark_published(&self, seqs: &[i64], published_at: i64) -> MetastoreResult<()>;
}

#[async_trait]
pub trait LeaseRepository: Send + Sync {
    /// Takes or renews the lease `name` for `holder` until `now + ttl`; true when `holder`
    /// holds it afterwards. A lease held by someone else is taken only once it expired.
    async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl_millis: i64,
    ) -> MetastoreResult<bool>;
    async fn release_lease(&self, name: &str, holder: &str) -> MetastoreResult<()>;
}

/// Everything the control plane needs from its database.
pub trait Metastore:
    AccountRepository
    + TokenRepository
    + DatasetRepository
    + MetadataIndexRepository
    + OutboxRepository
    + LeaseRepository
{
}

impl<T> Metastore for T where
    T: AccountRepository
        + TokenRepository
        + DatasetRepository
        + MetadataIndexRepository
        + OutboxRepository
        + LeaseRepository
{
}
