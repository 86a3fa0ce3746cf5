//! Webhook subscriptions under REST: to one dataset (its maintainers) or to every dataset of an
//! account (that account, or an administrator). The signing secret is shown once, at creation.
//! Targets are checked (http(s), no private addresses unless the operator allows them) when
//! created and again before every delivery.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use weir_function_runtime::Caller;
use weir_metastore::{Metastore, Role};
use weir_webhooks::{
    Delivery, EventType, Subscription, SubscriptionStatus, WebhookError, WebhookId,
    WebhookRepository,
};

use super::{DatasetService, now_millis};
use crate::config::WebhooksConfig;
use crate::error::{ServiceError, ServiceResult};

pub struct WebhooksApi {
    pub store: Arc<dyn WebhookRepository>,
    pub datasets: Arc<DatasetService>,
    pub metastore: Arc<dyn Metastore>,
    pub config: WebhooksConfig,
}

/// Subscriptions one dataset or account may have.
const MAX_PER_SCOPE: usize = 20;

impl From<WebhookError> for ServiceError {
    fn from(error: WebhookError) -> Self {
        match error {
            WebhookError::NotFound(what) => Self::NotFound(format!("{what} not found")),
            other => Self::Internal(other.to_string()),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewSubscription {
    pub url: String,
    /// Event types: `dataset.ref.updated`, `dataset.schema.changed`, `issue.opened`,
    /// `discussion.opened`, `thread.changed`, `comment.added`.
    pub events: Vec<String>,
}

/// A new subscription with its secret, shown this once.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedSubscription {
    #[serde(flatten)]
    pub subscription: Subscription,
    pub secret: String,
}

pub enum Scope<'a> {
    Dataset { owner: &'a str, name: &'a str },
    Account { name: &'a str },
}

impl WebhooksApi {
    /// `(dataset_id, account_id)` of a scope the caller may manage.
    async fn scope(
        &self,
        caller: &Caller,
        scope: &Scope<'_>,
    ) -> ServiceResult<(Option<String>, Option<String>)> {
        match scope {
            Scope::Dataset { owner, name } => {
                let entry = self
                    .datasets
                    .authorize(caller, owner, name, Role::Maintainer)
                    .await?;
                Ok((Some(entry.id), None))
            }
            Scope::Account { name } => {
                let not_found = || ServiceError::NotFound(format!("account `{name}` not found"));
                let account = self
                    .metastore
                    .account_by_name(name)
                    .await?
                    .ok_or_else(not_found)?;
                if !caller.is_admin && caller.account_id.as_deref() != Some(account.id.as_str()) {
                    return Err(not_found());
                }
                Ok((None, Some(account.id)))
            }
        }
    }

    pub async fn create(
        &self,
        caller: &Caller,
        scope: Scope<'_>,
        request: NewSubscription,
    ) -> ServiceResult<CreatedSubscription> {
        let (dataset_id, account_id) = self.scope(caller, &scope).await?;
        let owner_id = caller
            .account_id
            .clone()
            .ok_or_else(|| ServiceError::Unauthenticated("sign in to subscribe".into()))?;
        if request.events.is_empty() {
            return Err(ServiceError::InvalidInput(
                "events: name at least one event type".into(),
            ));
        }
        let mut events = Vec::new();
        for (index, name) in request.events.iter().enumerate() {
            let event = EventType::parse(name).ok_or_else(|| {
                ServiceError::InvalidInput(format!(
                    "events[{index}]: `{name}` is not one of {}",
                    EventType::ALL.map(EventType::as_str).join(", ")
                ))
            })?;
            if !events.contains(&event) {
                events.push(event);
            }
        }
        weir_webhooks::target::check(&request.url, self.config.allow_private_targets)
            .await
            .map_err(|refused| ServiceError::InvalidInput(refused.to_string()))?;
        let existing = self
            .store
            .list(dataset_id.as_deref(), account_id.as_deref())
            .await?;
        if existing.len() >= MAX_PER_SCOPE {
            return Err(ServiceError::Conflict(format!(
                "at most {MAX_PER_SCOPE} webhooks per dataset or account"
            )));
        }
        let subscription = Subscription {
            id: WebhookId::generate(&uuid::Uuid::new_v4().simple().to_string()),
            owner_id,
            dataset_id,
            account_id,
            url: request.url,
            events,
            status: SubscriptionStatus::Active,
            disabled_reason: None,
            consecutive_failures: 0,
            created_at: now_millis(),
        };
        let secret = weir_webhooks::sign::new_secret();
        self.store.create(&subscription, &secret).await?;
        Ok(CreatedSubscription {
            subscription,
            secret,
        })
    }

    pub async fn list(
        &self,
        caller: &Caller,
        scope: Scope<'_>,
    ) -> ServiceResult<Vec<Subscription>> {
        let (dataset_id, account_id) = self.scope(caller, &scope).await?;
        Ok(self
            .store
            .list(dataset_id.as_deref(), account_id.as_deref())
            .await?)
    }

    /// The subscription, if the caller may manage its scope; otherwise not found.
    pub async fn get(&self, caller: &Caller, id: &str) -> ServiceResult<Subscription> {
        let not_found = || ServiceError::NotFound(format!("webhook `{id}` not found"));
        let id = WebhookId::parse(id).ok_or_else(not_found)?;
        let subscription = self.store.get(&id).await?.ok_or_else(not_found)?;
        if caller.is_admin {
            return Ok(subscription);
        }
        let allowed = match (&subscription.dataset_id, &subscription.account_id) {
            (Some(dataset_id), _) => match self.metastore.dataset_by_id(dataset_id).await? {
                Some(entry) => self
                    .datasets
                    .authorize(caller, &entry.owner_name, &entry.name, Role::Maintainer)
                    .await
                    .is_ok(),
                None => false,
            },
            (None, Some(account_id)) => caller.account_id.as_deref() == Some(account_id.as_str()),
            (None, None) => false,
        };
        if !allowed {
            return Err(not_found());
        }
        Ok(subscription)
    }

    pub async fn delete(&self, caller: &Caller, id: &str) -> ServiceResult<()> {
        let subscription = self.get(caller, id).await?;
        Ok(self.store.delete(&subscription.id).await?)
    }

    pub async fn enable(&self, caller: &Caller, id: &str) -> ServiceResult<Subscription> {
        let subscription = self.get(caller, id).await?;
        Ok(self.store.enable(&subscription.id).await?)
    }

    pub async fn deliveries(
        &self,
        caller: &Caller,
        id: &str,
        limit: i64,
    ) -> ServiceResult<Vec<Delivery>> {
        let subscription = self.get(caller, id).await?;
        Ok(self.store.deliveries(&subscription.id, limit).await?)
    }
}
