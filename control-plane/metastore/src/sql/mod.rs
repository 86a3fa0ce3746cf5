//! The sqlx implementation of every repository, for PostgreSQL and SQLite through sqlx's `Any`
//! driver. Statements use only SQL both databases accept (`$n` parameters, `ON CONFLICT`,
//! `RETURNING`); the schema in `migrations/` is PostgreSQL's, adapted to SQLite where the
//! dialects differ (auto-increment keys).

mod accounts;
mod datasets;
mod docs;
mod governance;
mod index;
pub mod migrate;
mod outbox;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use crate::error::{MetastoreError, MetastoreResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

#[derive(Clone)]
pub struct SqlMetastore {
    pool: AnyPool,
    backend: Backend,
}

impl std::fmt::Debug for SqlMetastore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlMetastore")
            .field("backend", &self.backend)
            .finish()
    }
}

impl SqlMetastore {
    /// Connects to `postgres://...` or `sqlite://PATH` (the file is created when missing) and
    /// applies pending migrations.
    pub async fn connect(url: &str) -> MetastoreResult<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(MetastoreError::InvalidUrl(url.to_string()));
        };
        let options = match backend {
            // One connection serializes SQLite writers, which the embedded node needs anyway, and
            // avoids busy errors when a deferred transaction upgrades to a write lock.
            Backend::Sqlite => AnyPoolOptions::new().max_connections(1),
            Backend::Postgres => AnyPoolOptions::new().max_connections(10),
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let separator = if url.contains('?') { '&' } else { '?' };
                format!("{url}{separator}mode=rwc")
            }
            _ => url.to_string(),
        };
        let pool = options
            .connect(&url)
            .await
            .map_err(|error| MetastoreError::Internal(format!("cannot connect: {error}")))?;
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        let metastore = Self { pool, backend };
        migrate::run(&metastore.pool, backend).await?;
        Ok(metastore)
    }

    /// The connection pool, for the other stores sharing this database (flows).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn ping(&self) -> MetastoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn get<'r, T>(row: &'r AnyRow, column: &str) -> MetastoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(column)
        .map_err(|error| MetastoreError::Internal(format!("column `{column}`: {error}")))
}

/// Enqueues `messages` in `transaction` (other stores on this database use it too, so their
/// changes and the events they imply commit together).
pub async fn insert_outbox(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    messages: &[crate::model::OutboxMessage],
    now: i64,
) -> MetastoreResult<()> {
    for message in messages {
        sqlx::query(
            "INSERT INTO outbox (event_id, subject, payload, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&message.event_id)
        .bind(&message.subject)
        .bind(&message.payload)
        .bind(now)
        .execute(&mut **transaction)
        .await?;
    }
    Ok(())
}

pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or_default()
}
