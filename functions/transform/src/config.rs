//! Config of the transform function (`/srv/transform/service-config.yml`) and of the engine
//! worker (`/srv/engine/service-config.yml`), with `WEIR__...` overrides.

use serde::Deserialize;
use weir_dataset::StorageConfig;
use weir_function_runtime::ControlPlaneLinkConfig;
pub use weir_function_runtime::task::TaskWorkerConfig;

use crate::engine::EngineIdentity;
use crate::engine::grpc::ENGINE_PORT;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransformConfig {
    pub storage: StorageConfig,
    /// The control plane that authenticates callers, decides access and is told about commits.
    /// Without one every caller may do everything: development only.
    pub control_plane: Option<ControlPlaneLinkConfig>,
    /// Without a control plane the function refuses to start unless this is set.
    pub open_access: bool,
    /// Commit attempts when concurrent writers keep moving the head.
    pub max_commit_attempts: u32,
    pub engine: EngineConfig,
    /// Takes transform and reset tasks from the control plane's queue (the function as a flow
    /// executor, next to its HTTP routes).
    pub tasks: Option<TaskWorkerConfig>,
}

impl Default for TransformConfig {
    fn default() -> Self {
        Self {
            storage: StorageConfig::default(),
            control_plane: None,
            open_access: false,
            max_commit_attempts: 10,
            engine: EngineConfig::InProcess,
            tasks: None,
        }
    }
}

/// Where steps are computed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum EngineConfig {
    /// DataFusion in this process.
    #[default]
    InProcess,
    /// An ODF engine over gRPC (a `weir-engine` worker, or another ODF engine that reads the
    /// same storage), e.g. `http://weir-engine:5544`.
    Grpc {
        endpoint: String,
        /// Recorded about the engine; defaults to `odf-engine` at the endpoint.
        name: Option<String>,
        version: Option<String>,
    },
}

impl EngineConfig {
    pub fn open(&self) -> Result<crate::engine::SharedEngine, String> {
        match self {
            Self::InProcess => Ok(std::sync::Arc::new(crate::DataFusionEngine)),
            Self::Grpc {
                endpoint,
                name,
                version,
            } => {
                let identity = EngineIdentity {
                    name: name.clone().unwrap_or_else(|| "odf-engine".to_string()),
                    version: version.clone().unwrap_or_else(|| endpoint.clone()),
                };
                crate::engine::grpc::GrpcEngine::new(endpoint, identity)
                    .map(|engine| std::sync::Arc::new(engine) as _)
                    .map_err(|error| error.to_string())
            }
        }
    }
}

/// The engine worker: our DataFusion engine served over the ODF engine protocol.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineWorkerConfig {
    /// The node's storage: the worker reads inputs and writes outputs there.
    pub storage: StorageConfig,
    /// Address to listen on.
    pub listen: String,
    /// Seconds between `Progress` messages of a running request.
    pub progress_seconds: u64,
    /// Requests computed at once; more wait their turn (reporting `Progress`).
    pub max_concurrent_requests: usize,
}

impl Default for EngineWorkerConfig {
    fn default() -> Self {
        Self {
            storage: StorageConfig::default(),
            listen: format!("0.0.0.0:{ENGINE_PORT}"),
            progress_seconds: 10,
            max_concurrent_requests: crate::engine::grpc::server::DEFAULT_CONCURRENCY,
        }
    }
}
