//! Threads, their labels and assignees, and who may post.

use async_trait::async_trait;
use sqlx::AnyPool;

use super::{THREAD_COLUMNS, thread_from_row};
use crate::error::{MetastoreError, MetastoreResult};
use crate::governance::*;
use crate::model::OutboxMessage;
use crate::sql::{SqlMetastore, get, insert_outbox};

async fn with_sets(pool: &AnyPool, mut thread: Thread) -> MetastoreResult<Thread> {
    thread.labels = sqlx::query_scalar(
        "SELECT label FROM governance_labels WHERE thread_id = $1 ORDER BY label",
    )
    .bind(thread.id.as_str())
    .fetch_all(pool)
    .await?;
    thread.assignees = sqlx::query_scalar(
        "SELECT account_id FROM governance_assignees WHERE thread_id = $1 ORDER BY account_id",
    )
    .bind(thread.id.as_str())
    .fetch_all(pool)
    .await?;
    Ok(thread)
}

async fn replace_sets(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &ThreadId,
    labels: Option<&[String]>,
    assignees: Option<&[String]>,
) -> MetastoreResult<()> {
    for (table, column, values) in [
        ("governance_labels", "label", labels),
        ("governance_assignees", "account_id", assignees),
    ] {
        let Some(values) = values else { continue };
        sqlx::query(&format!("DELETE FROM {table} WHERE thread_id = $1"))
            .bind(id.as_str())
            .execute(&mut **transaction)
            .await?;
        for value in values {
            sqlx::query(&format!(
                "INSERT INTO {table} (thread_id, {column}) VALUES ($1, $2) ON CONFLICT DO NOTHING"
            ))
            .bind(id.as_str())
            .bind(value)
            .execute(&mut **transaction)
            .await?;
        }
    }
    Ok(())
}

impl SqlMetastore {
    pub(super) async fn thread_in(&self, id: &ThreadId) -> MetastoreResult<Thread> {
        let sql = format!("SELECT {THREAD_COLUMNS} FROM governance_threads WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| MetastoreError::NotFound(format!("thread `{id}`")))?;
        with_sets(self.pool(), thread_from_row(&row)?).await
    }
}

#[async_trait]
impl GovernanceRepository for SqlMetastore {
    async fn create_thread(
        &self,
        thread: &NewThread,
        outbox: &(dyn Fn(i64) -> Vec<OutboxMessage> + Send + Sync),
    ) -> MetastoreResult<Thread> {
        // Two threads created at once may pick the same number: the unique index refuses
        // the second, which takes the next.
        for _ in 0..5 {
            let mut transaction = self.pool().begin().await?;
            let exists: Option<String> =
                sqlx::query_scalar("SELECT id FROM datasets WHERE id = $1")
                    .bind(&thread.dataset_id)
                    .fetch_optional(&mut *transaction)
                    .await?;
            if exists.is_none() {
                return Err(MetastoreError::NotFound(format!(
                    "dataset `{}`",
                    thread.dataset_id
                )));
            }
            let last: Option<i64> = sqlx::query_scalar(
                "SELECT MAX(number) FROM governance_threads WHERE dataset_id = $1",
            )
            .bind(&thread.dataset_id)
            .fetch_one(&mut *transaction)
            .await?;
            let number = last.unwrap_or(0) + 1;
            let inserted = sqlx::query(
                "INSERT INTO governance_threads (id, dataset_id, number, kind, title, author_id, \
                 state, locked, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'open', 0, $7, $7)",
            )
            .bind(thread.id.as_str())
            .bind(&thread.dataset_id)
            .bind(number)
            .bind(thread.kind.as_str())
            .bind(&thread.title)
            .bind(&thread.author_id)
            .bind(thread.created_at)
            .execute(&mut *transaction)
            .await;
            match inserted {
                Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                    let _ = transaction.rollback().await;
                    continue;
                }
                other => {
                    other?;
                }
            }
            replace_sets(
                &mut transaction,
                &thread.id,
                Some(&thread.labels),
                Some(&thread.assignees),
            )
            .await?;
            super::comments::insert_comment(
                &mut transaction,
                &thread.id,
                &thread.body,
                thread.created_at,
            )
            .await?;
            insert_outbox(&mut transaction, &outbox(number), thread.created_at).await?;
            transaction.commit().await?;
            return self.thread_in(&thread.id).await;
        }
        Err(MetastoreError::Conflict(
            "threads were being created too fast; try again".into(),
        ))
    }

    async fn thread(&self, dataset_id: &str, number: i64) -> MetastoreResult<Option<Thread>> {
        let id: Option<String> = sqlx::query_scalar(
            "SELECT id FROM governance_threads WHERE dataset_id = $1 AND number = $2",
        )
        .bind(dataset_id)
        .bind(number)
        .fetch_optional(self.pool())
        .await?;
        match id.and_then(|id| ThreadId::parse(&id)) {
            Some(id) => self.thread_in(&id).await.map(Some),
            None => Ok(None),
        }
    }

    async fn thread_by_id(&self, id: &ThreadId) -> MetastoreResult<Option<Thread>> {
        match self.thread_in(id).await {
            Ok(thread) => Ok(Some(thread)),
            Err(MetastoreError::NotFound(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    async fn list_threads(
        &self,
        dataset_id: &str,
        filter: &ThreadFilter,
    ) -> MetastoreResult<Vec<Thread>> {
        let sql = format!(
            "SELECT {THREAD_COLUMNS} FROM governance_threads t WHERE dataset_id = $1 \
             AND ($2 = '' OR kind = $2) AND ($3 = '' OR state = $3) AND number < $4 \
             AND ($5 = '' OR EXISTS (SELECT 1 FROM governance_labels l \
                 WHERE l.thread_id = t.id AND l.label = $5)) \
             ORDER BY number DESC LIMIT $6"
        );
        let rows = sqlx::query(&sql)
            .bind(dataset_id)
            .bind(filter.kind.map_or("", ThreadKind::as_str))
            .bind(filter.state.map_or("", ThreadState::as_str))
            .bind(filter.before_number.unwrap_or(i64::MAX))
            .bind(filter.label.clone().unwrap_or_default())
            .bind(if filter.limit > 0 { filter.limit } else { 50 })
            .fetch_all(self.pool())
            .await?;
        let mut threads = Vec::with_capacity(rows.len());
        for row in &rows {
            threads.push(with_sets(self.pool(), thread_from_row(row)?).await?);
        }
        Ok(threads)
    }

    async fn update_thread(
        &self,
        id: &ThreadId,
        patch: &ThreadPatch,
        at: i64,
        outbox: &[OutboxMessage],
    ) -> MetastoreResult<Thread> {
        let current = self.thread_in(id).await?;
        let mut transaction = self.pool().begin().await?;
        sqlx::query(
            "UPDATE governance_threads SET title = $1, state = $2, locked = $3, updated_at = $4 \
             WHERE id = $5",
        )
        .bind(patch.title.as_ref().unwrap_or(&current.title))
        .bind(patch.state.unwrap_or(current.state).as_str())
        .bind(i64::from(patch.locked.unwrap_or(current.locked)))
        .bind(at)
        .bind(id.as_str())
        .execute(&mut *transaction)
        .await?;
        replace_sets(
            &mut transaction,
            id,
            patch.labels.as_deref(),
            patch.assignees.as_deref(),
        )
        .await?;
        insert_outbox(&mut transaction, outbox, at).await?;
        transaction.commit().await?;
        self.thread_in(id).await
    }

    async fn delete_thread(&self, id: &ThreadId, outbox: &[OutboxMessage]) -> MetastoreResult<()> {
        let mut transaction = self.pool().begin().await?;
        // Children first, whatever the foreign-key settings.
        for sql in [
            "DELETE FROM governance_reactions WHERE comment_id IN (SELECT id FROM governance_comments WHERE thread_id = $1)",
            "DELETE FROM governance_mentions WHERE comment_id IN (SELECT id FROM governance_comments WHERE thread_id = $1)",
            "DELETE FROM governance_comment_edits WHERE comment_id IN (SELECT id FROM governance_comments WHERE thread_id = $1)",
            "DELETE FROM governance_comments WHERE thread_id = $1",
            "DELETE FROM governance_labels WHERE thread_id = $1",
            "DELETE FROM governance_assignees WHERE thread_id = $1",
        ] {
            sqlx::query(sql)
                .bind(id.as_str())
                .execute(&mut *transaction)
                .await?;
        }
        let deleted = sqlx::query("DELETE FROM governance_threads WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *transaction)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(MetastoreError::NotFound(format!("thread `{id}`")));
        }
        insert_outbox(&mut transaction, outbox, crate::sql::now_millis()).await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn add_comment(
        &self,
        thread_id: &ThreadId,
        comment: &NewComment,
        at: i64,
        outbox: &[OutboxMessage],
    ) -> MetastoreResult<Comment> {
        self.add_comment_in(thread_id, comment, at, outbox).await
    }

    async fn comment(&self, id: &CommentId) -> MetastoreResult<Option<Comment>> {
        self.comment_in(id).await
    }

    async fn comments(&self, thread_id: &ThreadId) -> MetastoreResult<Vec<Comment>> {
        self.comments_in(thread_id).await
    }

    async fn edit_comment(
        &self,
        id: &CommentId,
        body: &str,
        mentions: &[String],
        editor_id: &str,
        at: i64,
        outbox: &[OutboxMessage],
    ) -> MetastoreResult<Comment> {
        self.edit_comment_in(id, body, mentions, editor_id, at, outbox)
            .await
    }

    async fn comment_history(&self, id: &CommentId) -> MetastoreResult<Vec<CommentEdit>> {
        let rows = sqlx::query(
            "SELECT version, body, edited_by, replaced_at FROM governance_comment_edits \
             WHERE comment_id = $1 ORDER BY version",
        )
        .bind(id.as_str())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(CommentEdit {
                    version: get(row, "version")?,
                    body: get(row, "body")?,
                    edited_by: get(row, "edited_by")?,
                    replaced_at: get(row, "replaced_at")?,
                })
            })
            .collect()
    }

    async fn set_comment_hidden(
        &self,
        id: &CommentId,
        hidden: bool,
        outbox: &[OutboxMessage],
    ) -> MetastoreResult<Comment> {
        self.set_flag(id, "hidden", hidden, outbox).await
    }

    async fn delete_comment(
        &self,
        id: &CommentId,
        outbox: &[OutboxMessage],
    ) -> MetastoreResult<()> {
        self.delete_comment_in(id, outbox).await
    }

    async fn react(
        &self,
        id: &CommentId,
        account_id: &str,
        reaction: &str,
        on: bool,
    ) -> MetastoreResult<Comment> {
        self.react_in(id, account_id, reaction, on).await
    }

    async fn posting(&self, dataset_id: &str) -> MetastoreResult<Posting> {
        let posting: Option<String> =
            sqlx::query_scalar("SELECT posting FROM governance_settings WHERE dataset_id = $1")
                .bind(dataset_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(posting
            .and_then(|posting| Posting::parse(&posting))
            .unwrap_or_default())
    }

    async fn set_posting(&self, dataset_id: &str, posting: Posting) -> MetastoreResult<()> {
        sqlx::query(
            "INSERT INTO governance_settings (dataset_id, posting) VALUES ($1, $2) \
             ON CONFLICT (dataset_id) DO UPDATE SET posting = excluded.posting",
        )
        .bind(dataset_id)
        .bind(posting.as_str())
        .execute(self.pool())
        .await
        .map_err(|error| match &error {
            sqlx::Error::Database(database) if database.is_foreign_key_violation() => {
                MetastoreError::NotFound(format!("dataset `{dataset_id}`"))
            }
            _ => error.into(),
        })?;
        Ok(())
    }
}
