//! weir-governance: the governance function. Dataset documentation kept in the dataset itself:
//! description and keywords (`SetInfo`), license (`SetLicense`, SPDX ids or a named custom
//! license) and readme and other text attachments (`SetAttachments`), read by readers and changed
//! by maintainers, committed through weir-dataset's one commit pipeline so any ODF tool sees them;
//! and files attached to issues and comments (`files`), content-addressed in the dataset's
//! `info/files/`, type-checked from their bytes, served inert.
//!
//! Depends on weir-odf, weir-dataset and weir-function-runtime; never on the control plane, its
//! database or another function. The binary runs it as a Lambda or an HTTP service; `weir up`
//! mounts `routes::router` in-process.

pub mod config;
pub mod docs;
pub mod error;
pub mod files;
pub mod routes;

use std::sync::Arc;

pub use config::GovernanceConfig;
pub use error::GovernanceError;
pub use routes::{GovernanceContext, router};

pub const FUNCTION_NAME: &str = "governance";

/// Builds the function's context and router from its config (once per cold start): links to the
/// configured control plane, or runs open to everyone without one.
pub async fn build(config: GovernanceConfig) -> Result<axum::Router, String> {
    let store = config.storage.open().map_err(|error| error.to_string())?;
    let platform = weir_function_runtime::Platform::from_config(
        FUNCTION_NAME,
        config.control_plane.as_ref(),
        config.open_access,
    )
    .await?;
    Ok(router(Arc::new(GovernanceContext {
        store,
        access: platform.access,
        notifier: platform.notifier,
        config,
    })))
}
