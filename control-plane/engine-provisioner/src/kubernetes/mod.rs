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
