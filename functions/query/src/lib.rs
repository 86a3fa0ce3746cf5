//! weir-query: the query function. SQL over datasets with DataFusion.
//!
//! HTTP: `POST /query` and `GET /query` (JSON formats, Arrow IPC, Parquet), proofs and
//! `POST /verify`, `/{account}/{dataset}/tail`, `/metadata` and the simple transfer protocol read
//! side (`refs/head`, `blocks/`, `data/`, `checkpoints/`). FlightSQL over the same catalog.
//! Limits: per-query memory pool, timeout, max result rows; read-only SQL.
//!
//! Depends on weir-odf, weir-dataset and weir-function-runtime; nothing depends on it but binaries.

pub mod api;
pub mod catalog;
pub mod config;
pub mod error;
pub mod execute;
pub mod flight;
pub mod formats;
pub mod metadata;
pub mod planner;
pub mod proof;
pub mod routes;
pub mod sql_guard;

use std::sync::Arc;

use ed25519_dalek::SigningKey;

pub use api::{QueryRequest, QueryResponse, VerifyRequest, VerifyResponse};
pub use config::QueryConfig;
pub use error::QueryError;
pub use routes::{QueryContext, router};

pub const FUNCTION_NAME: &str = "query";

/// The node key: from config (hex seed) or freshly generated.
pub fn node_key(config: &QueryConfig) -> Result<SigningKey, String> {
    let Some(hex) = &config.node_private_key else {
        return Ok(SigningKey::from_bytes(
            &weir_odf::DatasetId::new_generated().0.to_bytes(),
        ));
    };
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect::<Option<_>>()
        .ok_or("invalid config key `node_private_key`: expected 64 hex characters")?;
    let seed: [u8; 32] = bytes.try_into().map_err(|_| {
        "invalid config key `node_private_key`: expected 64 hex characters".to_string()
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Builds the query context (once per cold start): links to the configured control plane, or
/// runs open to everyone without one.
pub async fn build_context(config: QueryConfig) -> Result<Arc<QueryContext>, String> {
    let platform = weir_function_runtime::Platform::from_config(
        FUNCTION_NAME,
        config.control_plane.as_ref(),
        config.open_access,
    )
    .await?;
    build_context_with_access(config, platform.access)
}

/// Builds the query context with the platform's access policy (`weir up`).
pub fn build_context_with_access(
    config: QueryConfig,
    access: Arc<dyn weir_function_runtime::AccessPolicy>,
) -> Result<Arc<QueryContext>, String> {
    let store = config.storage.open().map_err(|error| error.to_string())?;
    let account =
        config
            .default_account
            .parse()
            .map_err(|error: weir_odf::IdentityParseError| {
                format!("invalid config key `default_account`: {error}")
            })?;
    let key = node_key(&config)?;
    let mut catalog = catalog::QueryCatalog::new(store, account);
    catalog.access = access;
    let catalog = Arc::new(catalog);
    Ok(Arc::new(QueryContext {
        engine: Arc::new(execute::QueryEngine::new(catalog, config)),
        key,
    }))
}
