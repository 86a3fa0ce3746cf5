//! Backends for the contract suites: SQLite (a temporary file) and PostgreSQL (a fresh
//! database per test on `WEIR_TEST_POSTGRES_URL`, default 127.0.0.1:5432).

#![allow(dead_code)]

use weir_metastore::*;

pub struct Backend {
    pub metastore: SqlMetastore,
    pub url: String,
    _directory: Option<tempfile::TempDir>,
}

pub async fn sqlite() -> Backend {
    let directory = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", directory.path().join("meta.db").display());
    Backend {
        metastore: SqlMetastore::connect(&url).await.unwrap(),
        url,
        _directory: Some(directory),
    }
}

pub async fn postgres() -> Backend {
    use sqlx::Connection;
    let admin_url = std::env::var("WEIR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(&admin_url)
        .await
        .expect("postgresql must run for the contract suite (see local/test)");
    let database = format!("weir_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {database}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let base = admin_url.rsplit_once('/').unwrap().0;
    let url = format!("{base}/{database}");
    Backend {
        metastore: SqlMetastore::connect(&url).await.unwrap(),
        url,
        _directory: None,
    }
}

#[macro_export]
macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend {
            $(#[tokio::test] async fn $name() { super::$name(super::common::sqlite().await).await })*
        }
        mod postgres_backend {
            $(#[tokio::test] async fn $name() { super::$name(super::common::postgres().await).await })*
        }
    };
}
