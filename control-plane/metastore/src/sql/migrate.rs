//! A small migration runner: each migration runs in its own transaction together with the row
//! recording it. On PostgreSQL, replicas starting together serialize on an advisory lock
//! (concurrent `CREATE TABLE IF NOT EXISTS` can otherwise fail on the catalog's unique index).

use sqlx::{Acquire, AnyPool};

use super::Backend;
use crate::error::{MetastoreError, MetastoreResult};

/// One schema change. Other stores of the control plane (flows) bring their own list, with
/// versions of their own range, and apply it through `apply_migrations`.
pub struct Migration {
    pub version: i64,
    /// PostgreSQL dialect; `for_backend` adapts it to SQLite.
    pub sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../../migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../../migrations/0002_dataset_docs.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("../../migrations/0003_governance.sql"),
    },
];

/// The one place the dialects differ in our schema: auto-increment keys.
fn for_backend(sql: &str, backend: Backend) -> String {
    match backend {
        Backend::Postgres => sql.to_string(),
        Backend::Sqlite => {
            sql.replace("BIGSERIAL PRIMARY KEY", "INTEGER PRIMARY KEY AUTOINCREMENT")
        }
    }
}

/// Arbitrary key of the advisory lock guarding migrations.
const MIGRATION_LOCK_KEY: i64 = 0x0057_4549_524d_4947;

pub(super) async fn run(pool: &AnyPool, backend: Backend) -> MetastoreResult<()> {
    apply_migrations(pool, backend, MIGRATIONS).await
}

/// Applies the migrations of `list` not yet recorded, in order.
pub async fn apply_migrations(
    pool: &AnyPool,
    backend: Backend,
    list: &[Migration],
) -> MetastoreResult<()> {
    let mut connection = pool.acquire().await?;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *connection)
            .await?;
    }
    let result = apply(&mut connection, backend, list).await;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *connection)
            .await?;
    }
    result
}

async fn apply(
    connection: &mut sqlx::AnyConnection,
    backend: Backend,
    list: &[Migration],
) -> MetastoreResult<()> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS weir_schema_migrations \
         (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *connection)
    .await?;
    for migration in list {
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT version FROM weir_schema_migrations WHERE version = $1")
                .bind(migration.version)
                .fetch_optional(&mut *connection)
                .await?;
        if applied.is_some() {
            continue;
        }
        let mut transaction = connection.begin().await?;
        let recorded = sqlx::query(
            "INSERT INTO weir_schema_migrations (version, applied_at) VALUES ($1, $2) \
             ON CONFLICT (version) DO NOTHING",
        )
        .bind(migration.version)
        .bind(super::now_millis())
        .execute(&mut *transaction)
        .await?;
        if recorded.rows_affected() == 0 {
            continue;
        }
        let sql = for_backend(migration.sql, backend);
        sqlx::raw_sql(&sql)
            .execute(&mut *transaction)
            .await
            .map_err(|error| {
                MetastoreError::Internal(format!("migration {} failed: {error}", migration.version))
            })?;
        transaction.commit().await?;
        tracing::info!(version = migration.version, "applied metastore migration");
    }
    Ok(())
}
