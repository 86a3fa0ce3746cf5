//! Config of the provisioner (`/srv/engine-provisioner/service-config.yml`, `WEIR__...`).

use serde::Deserialize;
pub use weir_function_runtime::task::DoorbellConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProvisionerConfig {
    /// The namespace whose pools are watched; the pod's own (`POD_NAMESPACE`) when absent.
    pub namespace: Option<String>,
    pub control_plane: ControlPlaneConfig,
    /// Seconds between rounds of a pool when nothing changes.
    pub poll_seconds: u64,
    /// First pause when workers cannot be scheduled, doubled up to `max_backoff_seconds`.
    pub initial_backoff_seconds: u64,
    pub max_backoff_seconds: u64,
    pub worker: WorkerTemplate,
    pub leader_election: LeaderElectionConfig,
    /// The control plane's NATS bus: every pool gets a round as soon as a task is announced,
    /// instead of at its next poll. Announcements are watched, not taken from the workers.
    pub doorbell: Option<DoorbellConfig>,
}

impl Default for ProvisionerConfig {
    fn default() -> Self {
        Self {
            namespace: None,
            control_plane: ControlPlaneConfig::default(),
            poll_seconds: 5,
            initial_backoff_seconds: 10,
            max_backoff_seconds: 300,
            worker: WorkerTemplate::default(),
            leader_election: LeaderElectionConfig::default(),
            doorbell: None,
        }
    }
}

/// Where the task queue's depth is read (`GET /tasks/depth`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlPlaneConfig {
    pub url: String,
    /// An executor's (administrator's) token.
    pub token: String,
}

impl Default for ControlPlaneConfig {
    fn default() -> Self {
        Self {
            url: "http://weir-control-plane:8080".to_string(),
            token: String::new(),
        }
    }
}

/// What every worker pod gets, whatever its pool.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerTemplate {
    /// The image when a pool names none.
    pub image: String,
    /// A ConfigMap with the worker's `service-config.yml` (storage, control_plane, tasks),
    /// mounted at `/srv/transform`.
    pub config_map: String,
    /// The Secret and key of the token workers take tasks with (`WEIR__TASKS__TOKEN`).
    pub token_secret: String,
    pub token_key: String,
    pub service_account: Option<String>,
    pub image_pull_secrets: Vec<String>,
    /// Seconds a worker may take to finish its tasks when stopped.
    pub termination_grace_seconds: i64,
}

impl Default for WorkerTemplate {
    fn default() -> Self {
        Self {
            image: "ghcr.io/weir-odf/weir-transform:latest".to_string(),
            config_map: "weir-engine-worker".to_string(),
            token_secret: "weir-secrets".to_string(),
            token_key: "tasks-token".to_string(),
            service_account: None,
            image_pull_secrets: Vec::new(),
            termination_grace_seconds: 120,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeaderElectionConfig {
    pub enabled: bool,
    pub lease_name: String,
    pub lease_seconds: u64,
    /// This replica's name in the lease; the pod's name (`POD_NAME`) or the host name.
    pub identity: Option<String>,
}

impl Default for LeaderElectionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            lease_name: "weir-engine-provisioner".to_string(),
            lease_seconds: 15,
            identity: None,
        }
    }
}
