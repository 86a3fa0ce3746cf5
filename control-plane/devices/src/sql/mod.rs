//! The sqlx implementation of `DeviceRegistry` on the metastore's database (PostgreSQL or SQLite
//! through sqlx's `Any` driver), with its own migrations (versions 200 and up).

mod endpoints;
mod usage;

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use weir_metastore::sql::insert_outbox;
use weir_metastore::sql::migrate::{Migration, apply_migrations};
use weir_metastore::{OutboxMessage, SqlMetastore};

use crate::error::{DeviceError, DeviceResult};
use crate::model::*;
use crate::repository::DeviceRegistry;

const MIGRATIONS: &[Migration] = &[Migration {
    version: 201,
    sql: include_str!("../../migrations/0201_devices.sql"),
}];

#[derive(Clone)]
pub struct SqlDeviceRegistry {
    pool: AnyPool,
}

impl SqlDeviceRegistry {
    /// Shares the metastore's pool and applies the registry's migrations.
    pub async fn open(metastore: &SqlMetastore) -> DeviceResult<Self> {
        apply_migrations(metastore.pool(), metastore.backend(), MIGRATIONS).await?;
        Ok(Self {
            pool: metastore.pool().clone(),
        })
    }
}

fn get<'r, T>(row: &'r AnyRow, column: &str) -> DeviceResult<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(column).map_err(DeviceError::from)
}

/// A unique constraint broke: the name (or token) is taken.
fn taken(error: sqlx::Error, what: String) -> DeviceError {
    match &error {
        sqlx::Error::Database(database) if database.is_unique_violation() => {
            DeviceError::Conflict(what)
        }
        _ => DeviceError::from(error),
    }
}

const APPLICATION_COLUMNS: &str =
    "application_id, name, account_id, dataset_id, description, created_at";

fn application_from_row(row: &AnyRow) -> DeviceResult<Application> {
    Ok(Application {
        id: ApplicationId::from_string(get::<String>(row, "application_id")?),
        name: get(row, "name")?,
        account_id: get(row, "account_id")?,
        dataset_id: get(row, "dataset_id")?,
        description: get(row, "description")?,
        created_at: get(row, "created_at")?,
    })
}

const VERSION_COLUMNS: &str =
    "version_id, application_id, name, dataset_id, event_time_pointer, created_at";

fn version_from_row(row: &AnyRow) -> DeviceResult<AppVersion> {
    Ok(AppVersion {
        id: VersionId::from_string(get::<String>(row, "version_id")?),
        application_id: ApplicationId::from_string(get::<String>(row, "application_id")?),
        name: get(row, "name")?,
        dataset_id: get(row, "dataset_id")?,
        event_time_pointer: get(row, "event_time_pointer")?,
        created_at: get(row, "created_at")?,
    })
}

/// Deletes the endpoints (with their tokens and attributes) matching `condition` on `id`.
async fn delete_endpoints_where(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    condition: &str,
    id: &str,
) -> DeviceResult<()> {
    for table in ["device_tokens", "device_endpoint_attributes"] {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE endpoint_id IN \
             (SELECT endpoint_id FROM device_endpoints WHERE {condition})"
        ))
        .bind(id)
        .execute(&mut **transaction)
        .await?;
    }
    sqlx::query(&format!("DELETE FROM device_endpoints WHERE {condition}"))
        .bind(id)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

#[async_trait]
impl DeviceRegistry for SqlDeviceRegistry {
    async fn create_application(&self, application: &Application) -> DeviceResult<()> {
        sqlx::query(&format!(
            "INSERT INTO device_applications ({APPLICATION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(application.id.as_str())
        .bind(&application.name)
        .bind(&application.account_id)
        .bind(&application.dataset_id)
        .bind(&application.description)
        .bind(application.created_at)
        .execute(&self.pool)
        .await
        .map_err(|error| {
            taken(
                error,
                format!("an application named `{}` exists", application.name),
            )
        })?;
        Ok(())
    }

    async fn application(&self, id: &ApplicationId) -> DeviceResult<Option<Application>> {
        let row = sqlx::query(&format!(
            "SELECT {APPLICATION_COLUMNS} FROM device_applications WHERE application_id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(application_from_row).transpose()
    }

    async fn application_by_name(&self, name: &str) -> DeviceResult<Option<Application>> {
        let row = sqlx::query(&format!(
            "SELECT {APPLICATION_COLUMNS} FROM device_applications WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(application_from_row).transpose()
    }

    async fn list_applications(&self) -> DeviceResult<Vec<Application>> {
        let rows = sqlx::query(&format!(
            "SELECT {APPLICATION_COLUMNS} FROM device_applications ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(application_from_row).collect()
    }

    async fn delete_application(
        &self,
        id: &ApplicationId,
        outbox: &[OutboxMessage],
    ) -> DeviceResult<()> {
        let mut transaction = self.pool.begin().await?;
        delete_endpoints_where(&mut transaction, "application_id = $1", id.as_str()).await?;
        for table in ["device_versions", "device_applications"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE application_id = $1"))
                .bind(id.as_str())
                .execute(&mut *transaction)
                .await?;
        }
        insert_outbox(&mut transaction, outbox, weir_metastore::sql::now_millis()).await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn create_version(&self, version: &AppVersion) -> DeviceResult<()> {
        sqlx::query(&format!(
            "INSERT INTO device_versions ({VERSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(version.id.as_str())
        .bind(version.application_id.as_str())
        .bind(&version.name)
        .bind(&version.dataset_id)
        .bind(&version.event_time_pointer)
        .bind(version.created_at)
        .execute(&self.pool)
        .await
        .map_err(|error| taken(error, format!("a version named `{}` exists", version.name)))?;
        Ok(())
    }

    async fn version_by_name(&self, name: &str) -> DeviceResult<Option<AppVersion>> {
        let row = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM device_versions WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(version_from_row).transpose()
    }

    async fn versions(&self, application: &ApplicationId) -> DeviceResult<Vec<AppVersion>> {
        let rows = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM device_versions WHERE application_id = $1 ORDER BY name"
        ))
        .bind(application.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(version_from_row).collect()
    }

    async fn delete_version(&self, id: &VersionId, outbox: &[OutboxMessage]) -> DeviceResult<()> {
        let mut transaction = self.pool.begin().await?;
        let deleted = sqlx::query("DELETE FROM device_versions WHERE version_id = $1")
            .bind(id.as_str())
            .execute(&mut *transaction)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(DeviceError::NotFound(format!("version `{id}` not found")));
        }
        insert_outbox(&mut transaction, outbox, weir_metastore::sql::now_millis()).await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn create_endpoint(&self, endpoint: &Endpoint) -> DeviceResult<()> {
        endpoints::create(&self.pool, endpoint).await
    }

    async fn endpoint(&self, id: &EndpointId) -> DeviceResult<Option<Endpoint>> {
        endpoints::fetch(&self.pool, id).await
    }

    async fn list_endpoints(
        &self,
        application: &ApplicationId,
        filter: &Attributes,
        after: Option<&EndpointId>,
        limit: i64,
    ) -> DeviceResult<Vec<Endpoint>> {
        endpoints::list(&self.pool, application, filter, after, limit).await
    }

    async fn set_attributes(&self, id: &EndpointId, attributes: &Attributes) -> DeviceResult<()> {
        endpoints::set_attributes(&self.pool, id, attributes).await
    }

    async fn delete_endpoint(&self, id: &EndpointId, outbox: &[OutboxMessage]) -> DeviceResult<()> {
        let mut transaction = self.pool.begin().await?;
        let exists: Option<String> =
            sqlx::query_scalar("SELECT endpoint_id FROM device_endpoints WHERE endpoint_id = $1")
                .bind(id.as_str())
                .fetch_optional(&mut *transaction)
                .await?;
        if exists.is_none() {
            return Err(DeviceError::NotFound(format!("endpoint `{id}` not found")));
        }
        delete_endpoints_where(&mut transaction, "endpoint_id = $1", id.as_str()).await?;
        insert_outbox(&mut transaction, outbox, weir_metastore::sql::now_millis()).await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn mark_seen(&self, seen: &[(EndpointId, i64)]) -> DeviceResult<()> {
        endpoints::mark_seen(&self.pool, seen).await
    }

    async fn add_token(&self, token: &DeviceToken, token_hash: &str) -> DeviceResult<()> {
        endpoints::add_token(&self.pool, token, token_hash).await
    }

    async fn tokens(&self, endpoint: &EndpointId) -> DeviceResult<Vec<DeviceToken>> {
        endpoints::tokens(&self.pool, endpoint).await
    }

    async fn revoke_token(
        &self,
        id: &DeviceTokenId,
        at: i64,
        outbox: &[OutboxMessage],
    ) -> DeviceResult<DeviceToken> {
        endpoints::revoke_token(&self.pool, id, at, outbox).await
    }

    async fn token_by_hash(
        &self,
        token_hash: &str,
    ) -> DeviceResult<Option<(DeviceToken, ApplicationId)>> {
        endpoints::token_by_hash(&self.pool, token_hash).await
    }

    async fn record_usage(&self, deltas: &[UsageDelta]) -> DeviceResult<()> {
        usage::record(&self.pool, deltas).await
    }

    async fn usage(&self, filter: &UsageFilter) -> DeviceResult<Vec<UsageRow>> {
        usage::sums(&self.pool, filter).await
    }

    async fn set_quota(&self, account_id: &str, quota: Option<&Quota>) -> DeviceResult<()> {
        usage::set_quota(&self.pool, account_id, quota).await
    }

    async fn quota(&self, account_id: &str) -> DeviceResult<Option<Quota>> {
        usage::quota(&self.pool, account_id).await
    }
}
