//! The webhook store; its contract suite is `tests/repository_contract.rs`.

use async_trait::async_trait;

use crate::model::*;

#[async_trait]
pub trait WebhookRepository: Send + Sync {
    async fn create(&self, subscription: &Subscription, secret: &str) -> WebhookResult<()>;
    async fn get(&self, id: &WebhookId) -> WebhookResult<Option<Subscription>>;
    /// The signing secret (never shown again after creation).
    async fn secret(&self, id: &WebhookId) -> WebhookResult<Option<String>>;
    /// Subscriptions to `dataset_id`, or to every dataset of `account_id`.
    async fn list(
        &self,
        dataset_id: Option<&str>,
        account_id: Option<&str>,
    ) -> WebhookResult<Vec<Subscription>>;
    async fn delete(&self, id: &WebhookId) -> WebhookResult<()>;
    /// Active again, its failure count reset.
    async fn enable(&self, id: &WebhookId) -> WebhookResult<Subscription>;
    /// Active subscriptions wanting `event` of a dataset owned by `owner_account_id`.
    async fn matching(
        &self,
        dataset_id: &str,
        owner_account_id: &str,
        event: EventType,
    ) -> WebhookResult<Vec<Subscription>>;
    /// Adds deliveries; one already there (same subscription and event) is not added again.
    /// Returns how many were new.
    async fn enqueue(&self, deliveries: &[Delivery]) -> WebhookResult<usize>;
    /// Pending deliveries of a dataset, oldest first.
    async fn pending(&self, dataset_id: &str, limit: i64) -> WebhookResult<Vec<Delivery>>;
    async fn record_success(&self, id: &DeliveryId, status: i64, at: i64) -> WebhookResult<()>;
    /// Counts a failed attempt. After `disable_after` consecutive failures of its subscription,
    /// disables it with `reason` and skips its pending deliveries; returns whether it did.
    async fn record_failure(
        &self,
        id: &DeliveryId,
        status: Option<i64>,
        error: &str,
        disable_after: i64,
    ) -> WebhookResult<bool>;
    /// A subscription's deliveries, newest first.
    async fn deliveries(&self, id: &WebhookId, limit: i64) -> WebhookResult<Vec<Delivery>>;
}
