//! The transactional outbox and leader leases.

use async_trait::async_trait;

use super::{SqlMetastore, get, now_millis};
use crate::error::MetastoreResult;
use crate::model::*;
use crate::repository::{LeaseRepository, OutboxRepository};

#[async_trait]
impl OutboxRepository for SqlMetastore {
    async fn enqueue(&self, messages: &[OutboxMessage]) -> MetastoreResult<()> {
        let mut transaction = self.pool.begin().await?;
        super::insert_outbox(&mut transaction, messages, now_millis()).await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn pending_messages(&self, limit: i64) -> MetastoreResult<Vec<PendingMessage>> {
        let rows = sqlx::query(
            "SELECT seq, event_id, subject, payload, created_at FROM outbox \
             WHERE published_at IS NULL ORDER BY seq LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PendingMessage {
                    seq: get(row, "seq")?,
                    message: OutboxMessage {
                        event_id: get(row, "event_id")?,
                        subject: get(row, "subject")?,
                        payload: get(row, "payload")?,
                    },
                    created_at: get(row, "created_at")?,
                })
            })
            .collect()
    }

    async fn mark_published(&self, seqs: &[i64], published_at: i64) -> MetastoreResult<()> {
        let mut transaction = self.pool.begin().await?;
        for seq in seqs {
            sqlx::query("UPDATE outbox SET published_at = $1 WHERE seq = $2")
                .bind(published_at)
                .bind(seq)
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl LeaseRepository for SqlMetastore {
    async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl_millis: i64,
    ) -> MetastoreResult<bool> {
        sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at < $4",
        )
        .bind(name)
        .bind(holder)
        .bind(now + ttl_millis)
        .bind(now)
        .execute(&self.pool)
        .await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT holder FROM leases WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(current.as_deref() == Some(holder))
    }

    async fn release_lease(&self, name: &str, holder: &str) -> MetastoreResult<()> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
