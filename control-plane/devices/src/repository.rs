//! The store of the registry. One implementation (`sql`) serves SQLite and PostgreSQL; the
//! contract suite (`tests/repository_contract.rs`) runs against both.

use async_trait::async_trait;
use weir_metastore::OutboxMessage;

use crate::error::DeviceResult;
use crate::model::*;

#[async_trait]
pub trait DeviceRegistry: Send + Sync {
    /// `Conflict` when the name is taken.
    async fn create_application(&self, application: &Application) -> DeviceResult<()>;
    async fn application(&self, id: &ApplicationId) -> DeviceResult<Option<Application>>;
    async fn application_by_name(&self, name: &str) -> DeviceResult<Option<Application>>;
    async fn list_applications(&self) -> DeviceResult<Vec<Application>>;
    /// Removes the application with its versions, endpoints and tokens, and enqueues `outbox`
    /// in the same transaction.
    async fn delete_application(
        &self,
        id: &ApplicationId,
        outbox: &[OutboxMessage],
    ) -> DeviceResult<()>;

    /// `Conflict` when the name is taken (version names are unique on the node).
    async fn create_version(&self, version: &AppVersion) -> DeviceResult<()>;
    async fn version_by_name(&self, name: &str) -> DeviceResult<Option<AppVersion>>;
    async fn versions(&self, application: &ApplicationId) -> DeviceResult<Vec<AppVersion>>;
    async fn delete_version(&self, id: &VersionId, outbox: &[OutboxMessage]) -> DeviceResult<()>;

    async fn create_endpoint(&self, endpoint: &Endpoint) -> DeviceResult<()>;
    async fn endpoint(&self, id: &EndpointId) -> DeviceResult<Option<Endpoint>>;
    /// An application's endpoints having every attribute of `filter`, ordered by id, after
    /// `after` (keyset paging), at most `limit`.
    async fn list_endpoints(
        &self,
        application: &ApplicationId,
        filter: &Attributes,
        after: Option<&EndpointId>,
        limit: i64,
    ) -> DeviceResult<Vec<Endpoint>>;
    async fn set_attributes(&self, id: &EndpointId, attributes: &Attributes) -> DeviceResult<()>;
    /// Removes the endpoint and its tokens, and enqueues `outbox` in the same transaction.
    async fn delete_endpoint(&self, id: &EndpointId, outbox: &[OutboxMessage]) -> DeviceResult<()>;
    /// Records when endpoints were last seen (a later time wins).
    async fn mark_seen(&self, seen: &[(EndpointId, i64)]) -> DeviceResult<()>;

    /// `Conflict` when a token with the same digest exists (on any endpoint).
    async fn add_token(&self, token: &DeviceToken, token_hash: &str) -> DeviceResult<()>;
    async fn tokens(&self, endpoint: &EndpointId) -> DeviceResult<Vec<DeviceToken>>;
    /// Marks the token revoked (once: a second revocation keeps the first time) and enqueues
    /// `outbox` in the same transaction. `NotFound` for an unknown token.
    async fn revoke_token(
        &self,
        id: &DeviceTokenId,
        at: i64,
        outbox: &[OutboxMessage],
    ) -> DeviceResult<DeviceToken>;
    /// The token with this digest and the application of its endpoint.
    async fn token_by_hash(
        &self,
        token_hash: &str,
    ) -> DeviceResult<Option<(DeviceToken, ApplicationId)>>;

    /// Adds the deltas to their hours' sums.
    async fn record_usage(&self, deltas: &[UsageDelta]) -> DeviceResult<()>;
    /// Sums per period of the usage matching `filter`, oldest first.
    async fn usage(&self, filter: &UsageFilter) -> DeviceResult<Vec<UsageRow>>;
    /// Sets or (with `None`) removes an account's quota.
    async fn set_quota(&self, account_id: &str, quota: Option<&Quota>) -> DeviceResult<()>;
    async fn quota(&self, account_id: &str) -> DeviceResult<Option<Quota>>;
}
