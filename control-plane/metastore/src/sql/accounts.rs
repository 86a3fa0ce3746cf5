//! Accounts, organization membership and access tokens.

use async_trait::async_trait;
use sqlx::any::AnyRow;

use super::{SqlMetastore, get, insert_outbox};
use crate::error::{MetastoreError, MetastoreResult};
use crate::model::*;
use crate::repository::{AccountRepository, TokenRepository};

const ACCOUNT_COLUMNS: &str = "id, name, kind, display_name, email, is_admin, created_at";

fn account_from_row(row: &AnyRow) -> MetastoreResult<Account> {
    let kind: String = get(row, "kind")?;
    Ok(Account {
        id: get(row, "id")?,
        name: get(row, "name")?,
        kind: AccountKind::parse(&kind)
            .ok_or_else(|| MetastoreError::Internal(format!("unknown account kind `{kind}`")))?,
        display_name: get(row, "display_name")?,
        email: get(row, "email")?,
        is_admin: get::<i64>(row, "is_admin")? != 0,
        created_at: get(row, "created_at")?,
    })
}

fn token_from_row(row: &AnyRow) -> MetastoreResult<AccessToken> {
    Ok(AccessToken {
        id: get(row, "id")?,
        account_id: get(row, "account_id")?,
        name: get(row, "name")?,
        created_at: get(row, "created_at")?,
        revoked_at: get(row, "revoked_at")?,
    })
}

#[async_trait]
impl AccountRepository for SqlMetastore {
    async fn create_account(&self, new_account: NewAccount) -> MetastoreResult<()> {
        let account = &new_account.account;
        sqlx::query(
            "INSERT INTO accounts (id, name, name_key, kind, display_name, email, password_hash, \
             is_admin, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&account.id)
        .bind(&account.name)
        .bind(account.name.to_lowercase())
        .bind(account.kind.as_str())
        .bind(&account.display_name)
        .bind(&account.email)
        .bind(&new_account.password_hash)
        .bind(i64::from(account.is_admin))
        .bind(account.created_at)
        .execute(&self.pool)
        .await
        .map_err(|error| match MetastoreError::from(error) {
            MetastoreError::Conflict(_) => {
                MetastoreError::Conflict(format!("account `{}` already exists", account.name))
            }
            other => other,
        })?;
        Ok(())
    }

    async fn account_by_id(&self, id: &str) -> MetastoreResult<Option<Account>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    async fn account_by_name(&self, name: &str) -> MetastoreResult<Option<Account>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name_key = $1");
        let row = sqlx::query(&sql)
            .bind(name.to_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    async fn password_hash(&self, account_id: &str) -> MetastoreResult<Option<String>> {
        let hash: Option<Option<String>> =
            sqlx::query_scalar("SELECT password_hash FROM accounts WHERE id = $1")
                .bind(account_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(hash.flatten())
    }

    async fn list_accounts(&self) -> MetastoreResult<Vec<Account>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY name_key");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(account_from_row).collect()
    }

    async fn add_member(&self, organization_id: &str, member_id: &str) -> MetastoreResult<()> {
        sqlx::query(
            "INSERT INTO organization_members (organization_id, member_id) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(organization_id)
        .bind(member_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn organizations_of(&self, member_id: &str) -> MetastoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT organization_id FROM organization_members WHERE member_id = $1 \
             ORDER BY organization_id",
        )
        .bind(member_id)
        .fetch_all(&self.pool)
        .await?)
    }
}

#[async_trait]
impl TokenRepository for SqlMetastore {
    async fn create_token(&self, token: AccessToken, secret_hash: &str) -> MetastoreResult<()> {
        sqlx::query(
            "INSERT INTO access_tokens (id, account_id, name, secret_hash, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&token.id)
        .bind(&token.account_id)
        .bind(&token.name)
        .bind(secret_hash)
        .bind(token.created_at)
        .bind(token.revoked_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_tokens(&self, account_id: &str) -> MetastoreResult<Vec<AccessToken>> {
        let rows = sqlx::query(
            "SELECT id, account_id, name, created_at, revoked_at FROM access_tokens \
             WHERE account_id = $1 ORDER BY created_at, id",
        )
        .bind(account_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn token_by_id(&self, id: &str) -> MetastoreResult<Option<(AccessToken, String)>> {
        let row = sqlx::query(
            "SELECT id, account_id, name, created_at, revoked_at, secret_hash FROM access_tokens \
             WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some((token_from_row(&row)?, get(&row, "secret_hash")?)))
    }

    async fn revoke_token(
        &self,
        account_id: &str,
        token_id: &str,
        revoked_at: i64,
        outbox: &[OutboxMessage],
    ) -> MetastoreResult<()> {
        let mut transaction = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE access_tokens SET revoked_at = $1 \
             WHERE id = $2 AND account_id = $3 AND revoked_at IS NULL",
        )
        .bind(revoked_at)
        .bind(token_id)
        .bind(account_id)
        .execute(&mut *transaction)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(MetastoreError::NotFound(format!("token `{token_id}`")));
        }
        insert_outbox(&mut transaction, outbox, revoked_at).await?;
        transaction.commit().await?;
        Ok(())
    }
}
