//! Comments: threaded replies, edits that keep the earlier bodies, hiding, deletion, reactions
//! and mentions.

use sqlx::AnyPool;

use super::{COMMENT_COLUMNS, comment_from_row};
use crate::error::{MetastoreError, MetastoreResult};
use crate::governance::*;
use crate::model::OutboxMessage;
use crate::sql::{SqlMetastore, get, insert_outbox, now_millis};

pub(super) async fn insert_comment(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    thread_id: &ThreadId,
    comment: &NewComment,
    at: i64,
) -> MetastoreResult<()> {
    if let Some(parent) = &comment.parent_id {
        let same_thread: Option<String> = sqlx::query_scalar(
            "SELECT id FROM governance_comments WHERE id = $1 AND thread_id = $2",
        )
        .bind(parent.as_str())
        .bind(thread_id.as_str())
        .fetch_optional(&mut **transaction)
        .await?;
        if same_thread.is_none() {
            return Err(MetastoreError::NotFound(format!(
                "comment `{parent}` in this thread"
            )));
        }
    }
    sqlx::query(
        "INSERT INTO governance_comments (id, thread_id, parent_id, author_id, body, created_at, \
         edited_at, hidden, deleted) VALUES ($1, $2, $3, $4, $5, $6, NULL, 0, 0)",
    )
    .bind(comment.id.as_str())
    .bind(thread_id.as_str())
    .bind(comment.parent_id.as_ref().map(|id| id.as_str().to_string()))
    .bind(&comment.author_id)
    .bind(&comment.body)
    .bind(at)
    .execute(&mut **transaction)
    .await?;
    replace_mentions(transaction, &comment.id, &comment.mentions).await
}

async fn replace_mentions(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &CommentId,
    mentions: &[String],
) -> MetastoreResult<()> {
    sqlx::query("DELETE FROM governance_mentions WHERE comment_id = $1")
        .bind(id.as_str())
        .execute(&mut **transaction)
        .await?;
    for account in mentions {
        sqlx::query(
            "INSERT INTO governance_mentions (comment_id, account_id) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(id.as_str())
        .bind(account)
        .execute(&mut **transaction)
        .await?;
    }
    Ok(())
}

async fn with_extras(pool: &AnyPool, mut comment: Comment) -> MetastoreResult<Comment> {
    let rows = sqlx::query(
        "SELECT reaction, account_id FROM governance_reactions WHERE comment_id = $1 \
         ORDER BY reaction, account_id",
    )
    .bind(comment.id.as_str())
    .fetch_all(pool)
    .await?;
    for row in &rows {
        comment
            .reactions
            .entry(get(row, "reaction")?)
            .or_default()
            .push(get(row, "account_id")?);
    }
    comment.mentions = sqlx::query_scalar(
        "SELECT account_id FROM governance_mentions WHERE comment_id = $1 ORDER BY account_id",
    )
    .bind(comment.id.as_str())
    .fetch_all(pool)
    .await?;
    Ok(comment)
}

impl SqlMetastore {
    async fn comment_or_missing(&self, id: &CommentId) -> MetastoreResult<Comment> {
        self.comment_in(id)
            .await?
            .ok_or_else(|| MetastoreError::NotFound(format!("comment `{id}`")))
    }

    pub(super) async fn comment_in(&self, id: &CommentId) -> MetastoreResult<Option<Comment>> {
        let sql = format!("SELECT {COMMENT_COLUMNS} FROM governance_comments WHERE id = $1");
        match sqlx::query(&sql)
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await?
        {
            Some(row) => Ok(Some(
                with_extras(self.pool(), comment_from_row(&row)?).await?,
            )),
            None => Ok(None),
        }
    }

    pub(super) async fn comments_in(&self, thread_id: &ThreadId) -> MetastoreResult<Vec<Comment>> {
        let sql = format!(
            "SELECT {COMMENT_COLUMNS} FROM governance_comments WHERE thread_id = $1 \
             ORDER BY created_at, id"
        );
        let rows = sqlx::query(&sql)
            .bind(thread_id.as_str())
            .fetch_all(self.pool())
            .await?;
        let mut comments = Vec::with_capacity(rows.len());
        for row in &rows {
            comments.push(with_extras(self.pool(), comment_from_row(row)?).await?);
        }
        Ok(comments)
    }

    pub(super) async fn add_comment_in(
        &self,
        thread_id: &ThreadId,
        comment: &NewComment,
        at: i64,
        outbox: &[OutboxMessage],
    ) -> MetastoreResult<Comment> {
        let mut transaction = self.pool().begin().await?;
        let touched = sqlx::query("UPDATE governance_threads SET updated_at = $1 WHERE id = $2")
            .bind(at)
            .bind(thread_id.as_str())
            .execute(&mut *transaction)
            .await?;
        if touched.rows_affected() == 0 {
            return Err(MetastoreError::NotFound(format!("thread `{thread_id}`")));
        }
        insert_comment(&mut transaction, thread_id, comment, at).await?;
        insert_outbox(&mut transaction, outbox, at).await?;
        transaction.commit().await?;
        self.comment_or_missing(&comment.id).await
    }

    pub(super) async fn edit_comment_in(
        &self,
        id: &CommentId,
        body: &str,
        mentions: &[String],
        editor_id: &str,
        at: i64,
        outbox: &[OutboxMessage],
    ) -> MetastoreResult<Comment> {
        let current = self.comment_or_missing(id).await?;
        if current.deleted {
            return Err(MetastoreError::NotFound(format!("comment `{id}`")));
        }
        let mut transaction = self.pool().begin().await?;
        let version: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(version) FROM governance_comment_edits WHERE comment_id = $1",
        )
        .bind(id.as_str())
        .fetch_one(&mut *transaction)
        .await?;
        sqlx::query(
            "INSERT INTO governance_comment_edits (comment_id, version, body, edited_by, replaced_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id.as_str())
        .bind(version.unwrap_or(0) + 1)
        .bind(&current.body)
        .bind(editor_id)
        .bind(at)
        .execute(&mut *transaction)
        .await?;
        sqlx::query("UPDATE governance_comments SET body = $1, edited_at = $2 WHERE id = $3")
            .bind(body)
            .bind(at)
            .bind(id.as_str())
            .execute(&mut *transaction)
            .await?;
        replace_mentions(&mut transaction, id, mentions).await?;
        insert_outbox(&mut transaction, outbox, at).await?;
        transaction.commit().await?;
        self.comment_or_missing(id).await
    }

    pub(super) async fn set_flag(
        &self,
        id: &CommentId,
        column: &'static str,
        value: bool,
        outbox: &[OutboxMessage],
    ) -> MetastoreResult<Comment> {
        let mut transaction = self.pool().begin().await?;
        let updated = sqlx::query(&format!(
            "UPDATE governance_comments SET {column} = $1 WHERE id = $2"
        ))
        .bind(i64::from(value))
        .bind(id.as_str())
        .execute(&mut *transaction)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(MetastoreError::NotFound(format!("comment `{id}`")));
        }
        insert_outbox(&mut transaction, outbox, now_millis()).await?;
        transaction.commit().await?;
        self.comment_or_missing(id).await
    }

    pub(super) async fn delete_comment_in(
        &self,
        id: &CommentId,
        outbox: &[OutboxMessage],
    ) -> MetastoreResult<()> {
        let mut transaction = self.pool().begin().await?;
        for table in [
            "governance_comment_edits",
            "governance_reactions",
            "governance_mentions",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE comment_id = $1"))
                .bind(id.as_str())
                .execute(&mut *transaction)
                .await?;
        }
        let updated = sqlx::query(
            "UPDATE governance_comments SET body = '', deleted = 1 WHERE id = $1 AND deleted = 0",
        )
        .bind(id.as_str())
        .execute(&mut *transaction)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(MetastoreError::NotFound(format!("comment `{id}`")));
        }
        insert_outbox(&mut transaction, outbox, now_millis()).await?;
        transaction.commit().await?;
        Ok(())
    }

    pub(super) async fn react_in(
        &self,
        id: &CommentId,
        account_id: &str,
        reaction: &str,
        on: bool,
    ) -> MetastoreResult<Comment> {
        let comment = self.comment_or_missing(id).await?;
        if comment.deleted {
            return Err(MetastoreError::NotFound(format!("comment `{id}`")));
        }
        let sql = if on {
            "INSERT INTO governance_reactions (comment_id, account_id, reaction) \
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM governance_reactions WHERE comment_id = $1 AND account_id = $2 \
             AND reaction = $3"
        };
        sqlx::query(sql)
            .bind(id.as_str())
            .bind(account_id)
            .bind(reaction)
            .execute(self.pool())
            .await?;
        self.comment_or_missing(id).await
    }
}
