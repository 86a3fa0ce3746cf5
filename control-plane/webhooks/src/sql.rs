//! The sqlx implementation of `WebhookRepository` on the metastore's database (PostgreSQL or
//! SQLite), with its own migrations (300+).

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use weir_metastore::SqlMetastore;
use weir_metastore::sql::migrate::{Migration, apply_migrations};

use crate::model::*;
use crate::repository::WebhookRepository;

const MIGRATIONS: &[Migration] = &[Migration {
    version: 301,
    sql: include_str!("../migrations/0301_webhooks.sql"),
}];

#[derive(Clone)]
pub struct SqlWebhooks {
    pool: AnyPool,
}

impl SqlWebhooks {
    pub async fn open(metastore: &SqlMetastore) -> WebhookResult<Self> {
        apply_migrations(metastore.pool(), metastore.backend(), MIGRATIONS).await?;
        Ok(Self {
            pool: metastore.pool().clone(),
        })
    }
}

const SUBSCRIPTION_COLUMNS: &str = "id, owner_id, dataset_id, account_id, url, events, status, \
     disabled_reason, consecutive_failures, created_at";

fn subscription(row: &AnyRow) -> WebhookResult<Subscription> {
    let id: String = row.try_get("id")?;
    let events: String = row.try_get("events")?;
    let status: String = row.try_get("status")?;
    Ok(Subscription {
        id: WebhookId::parse(&id).ok_or_else(|| WebhookError::Corrupt(id.clone()))?,
        owner_id: row.try_get("owner_id")?,
        dataset_id: row.try_get("dataset_id")?,
        account_id: row.try_get("account_id")?,
        url: row.try_get("url")?,
        events: events
            .split(',')
            .filter(|event| !event.is_empty())
            .map(|event| EventType::parse(event).ok_or_else(|| WebhookError::Corrupt(event.into())))
            .collect::<WebhookResult<_>>()?,
        status: match status.as_str() {
            "active" => SubscriptionStatus::Active,
            "disabled" => SubscriptionStatus::Disabled,
            other => return Err(WebhookError::Corrupt(other.into())),
        },
        disabled_reason: row.try_get("disabled_reason")?,
        consecutive_failures: row.try_get("consecutive_failures")?,
        created_at: row.try_get("created_at")?,
    })
}

const DELIVERY_COLUMNS: &str = "id, subscription_id, event_id, event_type, dataset_id, payload, \
     status, attempts, last_status, last_error, created_at, delivered_at";

fn delivery(row: &AnyRow) -> WebhookResult<Delivery> {
    let id: String = row.try_get("id")?;
    let subscription_id: String = row.try_get("subscription_id")?;
    let event_type: String = row.try_get("event_type")?;
    let status: String = row.try_get("status")?;
    Ok(Delivery {
        id: DeliveryId::parse(&id).ok_or_else(|| WebhookError::Corrupt(id.clone()))?,
        subscription_id: WebhookId::parse(&subscription_id)
            .ok_or_else(|| WebhookError::Corrupt(subscription_id.clone()))?,
        event_id: row.try_get("event_id")?,
        event_type: EventType::parse(&event_type)
            .ok_or_else(|| WebhookError::Corrupt(event_type.clone()))?,
        dataset_id: row.try_get("dataset_id")?,
        payload: row.try_get("payload")?,
        status: match status.as_str() {
            "pending" => DeliveryStatus::Pending,
            "succeeded" => DeliveryStatus::Succeeded,
            "skipped" => DeliveryStatus::Skipped,
            other => return Err(WebhookError::Corrupt(other.into())),
        },
        attempts: row.try_get("attempts")?,
        last_status: row.try_get("last_status")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        delivered_at: row.try_get("delivered_at")?,
    })
}

fn events_text(events: &[EventType]) -> String {
    events
        .iter()
        .map(|event| event.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

#[async_trait]
impl WebhookRepository for SqlWebhooks {
    async fn create(&self, subscription: &Subscription, secret: &str) -> WebhookResult<()> {
        sqlx::query(
            "INSERT INTO webhook_subscriptions (id, owner_id, dataset_id, account_id, url, events, \
             secret, status, disabled_reason, consecutive_failures, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', NULL, 0, $8)",
        )
        .bind(subscription.id.as_str())
        .bind(&subscription.owner_id)
        .bind(&subscription.dataset_id)
        .bind(&subscription.account_id)
        .bind(&subscription.url)
        .bind(events_text(&subscription.events))
        .bind(secret)
        .bind(subscription.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get(&self, id: &WebhookId) -> WebhookResult<Option<Subscription>> {
        let sql = format!("SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE id = $1");
        sqlx::query(&sql)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?
            .map(|row| subscription(&row))
            .transpose()
    }

    async fn secret(&self, id: &WebhookId) -> WebhookResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT secret FROM webhook_subscriptions WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn list(
        &self,
        dataset_id: Option<&str>,
        account_id: Option<&str>,
    ) -> WebhookResult<Vec<Subscription>> {
        let sql = format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions \
             WHERE dataset_id = $1 OR account_id = $2 ORDER BY created_at, id"
        );
        let rows = sqlx::query(&sql)
            .bind(dataset_id.unwrap_or(""))
            .bind(account_id.unwrap_or(""))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(subscription).collect()
    }

    async fn delete(&self, id: &WebhookId) -> WebhookResult<()> {
        let mut transaction = self.pool.begin().await?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE subscription_id = $1")
            .bind(id.as_str())
            .execute(&mut *transaction)
            .await?;
        let deleted = sqlx::query("DELETE FROM webhook_subscriptions WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *transaction)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(WebhookError::NotFound(format!("webhook `{id}`")));
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn enable(&self, id: &WebhookId) -> WebhookResult<Subscription> {
        sqlx::query(
            "UPDATE webhook_subscriptions SET status = 'active', disabled_reason = NULL, \
             consecutive_failures = 0 WHERE id = $1",
        )
        .bind(id.as_str())
        .execute(&self.pool)
        .await?;
        self.get(id)
            .await?
            .ok_or_else(|| WebhookError::NotFound(format!("webhook `{id}`")))
    }

    async fn matching(
        &self,
        dataset_id: &str,
        owner_account_id: &str,
        event: EventType,
    ) -> WebhookResult<Vec<Subscription>> {
        let subscriptions = self.list(Some(dataset_id), Some(owner_account_id)).await?;
        Ok(subscriptions
            .into_iter()
            .filter(|s| s.status == SubscriptionStatus::Active && s.events.contains(&event))
            .collect())
    }

    async fn enqueue(&self, deliveries: &[Delivery]) -> WebhookResult<usize> {
        let mut added = 0;
        let mut transaction = self.pool.begin().await?;
        for delivery in deliveries {
            let inserted = sqlx::query(
                "INSERT INTO webhook_deliveries (id, subscription_id, event_id, event_type, \
                 dataset_id, payload, status, attempts, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7) \
                 ON CONFLICT (subscription_id, event_id) DO NOTHING",
            )
            .bind(delivery.id.as_str())
            .bind(delivery.subscription_id.as_str())
            .bind(&delivery.event_id)
            .bind(delivery.event_type.as_str())
            .bind(&delivery.dataset_id)
            .bind(&delivery.payload)
            .bind(delivery.created_at)
            .execute(&mut *transaction)
            .await?;
            added += inserted.rows_affected() as usize;
        }
        transaction.commit().await?;
        Ok(added)
    }

    async fn pending(&self, dataset_id: &str, limit: i64) -> WebhookResult<Vec<Delivery>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
             WHERE dataset_id = $1 AND status = 'pending' ORDER BY seq LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(dataset_id)
            .bind(limit.max(1))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(delivery).collect()
    }

    async fn record_success(&self, id: &DeliveryId, status: i64, at: i64) -> WebhookResult<()> {
        let mut transaction = self.pool.begin().await?;
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'succeeded', attempts = attempts + 1, \
             last_status = $1, last_error = NULL, delivered_at = $2 WHERE id = $3",
        )
        .bind(status)
        .bind(at)
        .bind(id.as_str())
        .execute(&mut *transaction)
        .await?;
        sqlx::query(
            "UPDATE webhook_subscriptions SET consecutive_failures = 0 WHERE id = \
             (SELECT subscription_id FROM webhook_deliveries WHERE id = $1)",
        )
        .bind(id.as_str())
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn record_failure(
        &self,
        id: &DeliveryId,
        status: Option<i64>,
        error: &str,
        disable_after: i64,
    ) -> WebhookResult<bool> {
        let mut transaction = self.pool.begin().await?;
        let subscription_id: Option<String> =
            sqlx::query_scalar("SELECT subscription_id FROM webhook_deliveries WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&mut *transaction)
                .await?;
        let Some(subscription_id) = subscription_id else {
            return Err(WebhookError::NotFound(format!("delivery `{id}`")));
        };
        sqlx::query(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = $1, \
             last_error = $2 WHERE id = $3",
        )
        .bind(status)
        .bind(error)
        .bind(id.as_str())
        .execute(&mut *transaction)
        .await?;
        sqlx::query(
            "UPDATE webhook_subscriptions SET consecutive_failures = consecutive_failures + 1 \
             WHERE id = $1",
        )
        .bind(&subscription_id)
        .execute(&mut *transaction)
        .await?;
        let failures: i64 = sqlx::query_scalar(
            "SELECT consecutive_failures FROM webhook_subscriptions WHERE id = $1",
        )
        .bind(&subscription_id)
        .fetch_one(&mut *transaction)
        .await?;
        let disable = failures >= disable_after.max(1);
        if disable {
            let reason = format!(
                "disabled after {failures} consecutive failed deliveries; the last: {error}"
            );
            sqlx::query(
                "UPDATE webhook_subscriptions SET status = 'disabled', disabled_reason = $1 \
                 WHERE id = $2",
            )
            .bind(reason)
            .bind(&subscription_id)
            .execute(&mut *transaction)
            .await?;
            sqlx::query(
                "UPDATE webhook_deliveries SET status = 'skipped' \
                 WHERE subscription_id = $1 AND status = 'pending'",
            )
            .bind(&subscription_id)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(disable)
    }

    async fn deliveries(&self, id: &WebhookId, limit: i64) -> WebhookResult<Vec<Delivery>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE subscription_id = $1 \
             ORDER BY seq DESC LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(id.as_str())
            .bind(limit.clamp(1, 500))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(delivery).collect()
    }
}
