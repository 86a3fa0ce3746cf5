//! The dataset registry and dataset roles.

use async_trait::async_trait;
use sqlx::any::AnyRow;

use super::{SqlMetastore, get, insert_outbox, now_millis};
use crate::error::{MetastoreError, MetastoreResult};
use crate::model::*;
use crate::repository::DatasetRepository;

const DATASET_COLUMNS: &str = "id, owner_id, owner_name, name, kind, storage_location, \
     visibility, created_at, head_hash, head_sequence";

/// The same columns named by table, for queries that join others.
const QUALIFIED_DATASET_COLUMNS: &str = "datasets.id, datasets.owner_id, datasets.owner_name, \
     datasets.name, datasets.kind, datasets.storage_location, datasets.visibility, \
     datasets.created_at, datasets.head_hash, datasets.head_sequence";

fn dataset_from_row(row: &AnyRow) -> MetastoreResult<DatasetEntry> {
    let visibility: String = get(row, "visibility")?;
    Ok(DatasetEntry {
        id: get(row, "id")?,
        owner_id: get(row, "owner_id")?,
        owner_name: get(row, "owner_name")?,
        name: get(row, "name")?,
        kind: get(row, "kind")?,
        storage_location: get(row, "storage_location")?,
        visibility: Visibility::parse(&visibility).ok_or_else(|| {
            MetastoreError::Internal(format!("unknown visibility `{visibility}`"))
        })?,
        created_at: get(row, "created_at")?,
        head_hash: get(row, "head_hash")?,
        head_sequence: get(row, "head_sequence")?,
    })
}

macro_rules! insert_dataset_sql {
    () => {
        "INSERT INTO datasets (id, owner_id, owner_name, name, alias_key, kind, \
         storage_location, visibility, created_at, head_hash, head_sequence) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    };
}

/// Creation: the repair loop may have registered the dataset from storage between the storage
/// write and this insert; the creating request's row then wins (same id, its visibility). A
/// different dataset under the same alias is still a conflict.
const INSERT_DATASET: &str = concat!(
    insert_dataset_sql!(),
    " ON CONFLICT (id) DO UPDATE SET visibility = excluded.visibility"
);

/// Reindex: replaces what storage knows, keeps visibility and head (the index moves the head).
const UPSERT_DATASET: &str = concat!(
    insert_dataset_sql!(),
    " ON CONFLICT (id) DO UPDATE SET owner_id = excluded.owner_id, \
     owner_name = excluded.owner_name, name = excluded.name, \
     alias_key = excluded.alias_key, kind = excluded.kind, \
     storage_location = excluded.storage_location"
);

/// `sql` (one of the two above) with the registry row bound.
fn insert_dataset<'q>(
    sql: &'static str,
    entry: &'q DatasetEntry,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    sqlx::query(sql)
        .bind(&entry.id)
        .bind(&entry.owner_id)
        .bind(&entry.owner_name)
        .bind(&entry.name)
        .bind(alias_key(&entry.owner_name, &entry.name))
        .bind(&entry.kind)
        .bind(&entry.storage_location)
        .bind(entry.visibility.as_str())
        .bind(entry.created_at)
        .bind(&entry.head_hash)
        .bind(entry.head_sequence)
}

fn alias_conflict(entry_alias: String) -> impl Fn(sqlx::Error) -> MetastoreError {
    move |error| match MetastoreError::from(error) {
        MetastoreError::Conflict(_) => {
            MetastoreError::Conflict(format!("dataset `{entry_alias}` already exists"))
        }
        other => other,
    }
}

fn escape_like(text: &str) -> String {
    text.to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

impl SqlMetastore {
    async fn update_one(
        &self,
        id: &str,
        sql: &str,
        value: &str,
        outbox: &[OutboxMessage],
        conflict_alias: Option<String>,
    ) -> MetastoreResult<()> {
        let mut transaction = self.pool.begin().await?;
        let result = sqlx::query(sql)
            .bind(value)
            .bind(id)
            .execute(&mut *transaction)
            .await;
        let result = match conflict_alias {
            Some(alias) => result.map_err(alias_conflict(alias))?,
            None => result?,
        };
        if result.rows_affected() == 0 {
            return Err(MetastoreError::NotFound(format!("dataset `{id}`")));
        }
        insert_outbox(&mut transaction, outbox, now_millis()).await?;
        transaction.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl DatasetRepository for SqlMetastore {
    async fn create_dataset(
        &self,
        entry: &DatasetEntry,
        outbox: &[OutboxMessage],
    ) -> MetastoreResult<()> {
        let mut transaction = self.pool.begin().await?;
        insert_dataset(INSERT_DATASET, entry)
            .execute(&mut *transaction)
            .await
            .map_err(alias_conflict(entry.alias()))?;
        sqlx::query(
            "INSERT INTO dataset_roles (dataset_id, account_id, role) VALUES ($1, $2, 'owner') \
             ON CONFLICT DO NOTHING",
        )
        .bind(&entry.id)
        .bind(&entry.owner_id)
        .execute(&mut *transaction)
        .await?;
        insert_outbox(&mut transaction, outbox, entry.created_at).await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn upsert_dataset(&self, entry: &DatasetEntry) -> MetastoreResult<()> {
        let mut transaction = self.pool.begin().await?;
        insert_dataset(UPSERT_DATASET, entry)
            .execute(&mut *transaction)
            .await
            .map_err(alias_conflict(entry.alias()))?;
        sqlx::query(
            "INSERT INTO dataset_roles (dataset_id, account_id, role) VALUES ($1, $2, 'owner') \
             ON CONFLICT DO NOTHING",
        )
        .bind(&entry.id)
        .bind(&entry.owner_id)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn dataset_by_id(&self, id: &str) -> MetastoreResult<Option<DatasetEntry>> {
        let sql = format!("SELECT {DATASET_COLUMNS} FROM datasets WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(dataset_from_row).transpose()
    }

    async fn dataset_by_alias(
        &self,
        owner_name: &str,
        name: &str,
    ) -> MetastoreResult<Option<DatasetEntry>> {
        let sql = format!("SELECT {DATASET_COLUMNS} FROM datasets WHERE alias_key = $1");
        let row = sqlx::query(&sql)
            .bind(alias_key(owner_name, name))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(dataset_from_row).transpose()
    }

    async fn list_datasets(&self, filter: &DatasetFilter) -> MetastoreResult<Vec<DatasetEntry>> {
        let owner_prefix = filter
            .owner_name
            .as_ref()
            .map(|owner| format!("{}/%", escape_like(owner)))
            .unwrap_or_else(|| "%".to_string());
        let search = filter
            .search
            .as_ref()
            .map(|search| format!("%{}%", escape_like(search)))
            .unwrap_or_else(|| "%".to_string());
        let scope_condition = match &filter.scope {
            ListingScope::All => "",
            ListingScope::PublicOnly => " AND visibility = 'public'",
            ListingScope::ReadableBy(_) => {
                " AND (visibility = 'public' OR owner_id = $5 \
                 OR EXISTS (SELECT 1 FROM dataset_roles r \
                     WHERE r.dataset_id = datasets.id AND r.account_id = $5) \
                 OR owner_id IN (SELECT organization_id FROM organization_members \
                     WHERE member_id = $5))"
            }
        };
        // Placeholders $1..$4 (and $5 for `ReadableBy`) are taken; the expression's follow.
        let first = if matches!(filter.scope, ListingScope::ReadableBy(_)) {
            6
        } else {
            5
        };
        let compiled = filter
            .expression
            .as_ref()
            .map(|expression| crate::search::compile::compile(expression, first))
            .transpose()
            .map_err(|error| MetastoreError::Invalid(error.to_string()))?;
        let (joins, expression_condition) = match &compiled {
            Some(compiled) => (compiled.joins.as_str(), format!(" AND {}", compiled.sql)),
            None => ("", String::new()),
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM datasets{joins} \
             WHERE alias_key LIKE $1 ESCAPE '\\' AND alias_key LIKE $2 ESCAPE '\\'{scope_condition}{expression_condition} \
             ORDER BY alias_key LIMIT $3 OFFSET $4",
            COLUMNS = QUALIFIED_DATASET_COLUMNS,
        );
        // A search's SQL differs with each expression, and PostgreSQL's generic plan of a
        // prepared statement (after five runs) ignores how selective its values are (a nested
        // loop over every dataset: 2-3x slower in tests/bench/search.sh): searches are planned
        // for their values each time and never cached.
        let mut query = sqlx::query(&sql)
            .persistent(compiled.is_none())
            .bind(owner_prefix)
            .bind(search)
            .bind(if filter.limit > 0 { filter.limit } else { 100 })
            .bind(filter.offset.max(0));
        if let ListingScope::ReadableBy(account_id) = &filter.scope {
            query = query.bind(account_id.clone());
        }
        for bind in compiled.iter().flat_map(|compiled| compiled.binds.iter()) {
            query = match bind {
                crate::search::compile::Bind::Text(text) => query.bind(text.clone()),
                crate::search::compile::Bind::Integer(value) => query.bind(*value),
            };
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(dataset_from_row).collect()
    }

    async fn rename_dataset(
        &self,
        id: &str,
        new_name: &str,
        outbox: &[OutboxMessage],
    ) -> MetastoreResult<()> {
        let Some(entry) = self.dataset_by_id(id).await? else {
            return Err(MetastoreError::NotFound(format!("dataset `{id}`")));
        };
        let mut transaction = self.pool.begin().await?;
        let result = sqlx::query("UPDATE datasets SET name = $1, alias_key = $2 WHERE id = $3")
            .bind(new_name)
            .bind(alias_key(&entry.owner_name, new_name))
            .bind(id)
            .execute(&mut *transaction)
            .await
            .map_err(alias_conflict(format!("{}/{new_name}", entry.owner_name)))?;
        if result.rows_affected() == 0 {
            return Err(MetastoreError::NotFound(format!("dataset `{id}`")));
        }
        insert_outbox(&mut transaction, outbox, now_millis()).await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn delete_dataset(&self, id: &str, outbox: &[OutboxMessage]) -> MetastoreResult<()> {
        let mut transaction = self.pool.begin().await?;
        for sql in [
            "DELETE FROM governance_reactions WHERE comment_id IN (SELECT c.id FROM governance_comments c JOIN governance_threads t ON t.id = c.thread_id WHERE t.dataset_id = $1)",
            "DELETE FROM governance_mentions WHERE comment_id IN (SELECT c.id FROM governance_comments c JOIN governance_threads t ON t.id = c.thread_id WHERE t.dataset_id = $1)",
            "DELETE FROM governance_comment_edits WHERE comment_id IN (SELECT c.id FROM governance_comments c JOIN governance_threads t ON t.id = c.thread_id WHERE t.dataset_id = $1)",
            "DELETE FROM governance_comments WHERE thread_id IN (SELECT id FROM governance_threads WHERE dataset_id = $1)",
            "DELETE FROM governance_labels WHERE thread_id IN (SELECT id FROM governance_threads WHERE dataset_id = $1)",
            "DELETE FROM governance_assignees WHERE thread_id IN (SELECT id FROM governance_threads WHERE dataset_id = $1)",
            "DELETE FROM governance_threads WHERE dataset_id = $1",
            "DELETE FROM governance_settings WHERE dataset_id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *transaction).await?;
        }
        // Children first: SQLite and PostgreSQL both cascade, but explicit deletes keep the
        // statement count the same whatever the foreign-key settings are.
        for table in [
            "dataset_roles",
            "metadata_blocks",
            "dataset_statistics",
            "dataset_dependencies",
            "dataset_docs",
            "dataset_keywords",
            "dataset_terms",
        ] {
            let column = if table == "dataset_dependencies" {
                "downstream_id"
            } else {
                "dataset_id"
            };
            sqlx::query(&format!("DELETE FROM {table} WHERE {column} = $1"))
                .bind(id)
                .execute(&mut *transaction)
                .await?;
        }
        let result = sqlx::query("DELETE FROM datasets WHERE id = $1")
            .bind(id)
            .execute(&mut *transaction)
            .await?;
        if result.rows_affected() == 0 {
            return Err(MetastoreError::NotFound(format!("dataset `{id}`")));
        }
        insert_outbox(&mut transaction, outbox, now_millis()).await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn set_visibility(
        &self,
        id: &str,
        visibility: Visibility,
        outbox: &[OutboxMessage],
    ) -> MetastoreResult<()> {
        self.update_one(
            id,
            "UPDATE datasets SET visibility = $1 WHERE id = $2",
            visibility.as_str(),
            outbox,
            None,
        )
        .await
    }

    async fn set_role(
        &self,
        dataset_id: &str,
        account_id: &str,
        role: Option<Role>,
        outbox: &[OutboxMessage],
    ) -> MetastoreResult<()> {
        let mut transaction = self.pool.begin().await?;
        match role {
            Some(role) => {
                sqlx::query(
                    "INSERT INTO dataset_roles (dataset_id, account_id, role) VALUES ($1, $2, $3) \
                     ON CONFLICT (dataset_id, account_id) DO UPDATE SET role = excluded.role",
                )
                .bind(dataset_id)
                .bind(account_id)
                .bind(role.as_str())
                .execute(&mut *transaction)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM dataset_roles WHERE dataset_id = $1 AND account_id = $2")
                    .bind(dataset_id)
                    .bind(account_id)
                    .execute(&mut *transaction)
                    .await?;
            }
        }
        insert_outbox(&mut transaction, outbox, now_millis()).await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn role_of(&self, dataset_id: &str, account_id: &str) -> MetastoreResult<Option<Role>> {
        let role: Option<String> = sqlx::query_scalar(
            "SELECT role FROM dataset_roles WHERE dataset_id = $1 AND account_id = $2",
        )
        .bind(dataset_id)
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(role.as_deref().and_then(Role::parse))
    }

    async fn list_roles(&self, dataset_id: &str) -> MetastoreResult<Vec<(String, Role)>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT account_id, role FROM dataset_roles WHERE dataset_id = $1 ORDER BY account_id",
        )
        .bind(dataset_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(account, role)| Role::parse(&role).map(|role| (account, role)))
            .collect())
    }
}
