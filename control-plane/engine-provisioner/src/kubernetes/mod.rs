//! The provisioner on Kubernetes: `EnginePool` resources, each owning a Deployment of
//! transform workers whose replicas follow the task queue.

pub mod config;
pub mod controller;
pub mod crd;
pub mod leader;
pub mod quota;
pub mod workers;

pub use config::ProvisionerConfig;
pub use controller::{Context, run_controller};
pub use crd::{EnginePool, EnginePoolSpec, EnginePoolStatus};

/// The field manager of our server-side applies and the name in events and leases.
pub const MANAGER: &str = "weir-engine-provisioner";
/// Held on every pool until its workers are gone.
pub const FINALIZER: &str = "weir.dev/engine-pool-cleanup";
/// On the Deployment and its pods: the pool they belong to.
pub const POOL_LABEL: &str = "weir.dev/engine-pool";

/// Selects rustls's `ring` provider for the Kubernetes client, once per process. Needed where
/// a build also links another provider (the AWS SDK's `aws-lc-rs` in a workspace build):
/// rustls then cannot choose by itself and panics at the first TLS connection.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
