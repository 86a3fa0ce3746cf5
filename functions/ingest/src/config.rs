//! Config of the ingest function (`/srv/ingest/service-config.yml`, `WEIR__...` overrides).

use serde::Deserialize;
use weir_dataset::StorageConfig;
use weir_dataset::polling::PollingPolicy;
use weir_function_runtime::ControlPlaneLinkConfig;
use weir_function_runtime::task::TaskWorkerConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    pub storage: StorageConfig,
    /// The control plane that authenticates callers and decides access (and, for ingest, is told
    /// about commits). Without one every caller may do everything: development only.
    pub control_plane: Option<ControlPlaneLinkConfig>,
    /// Without a control plane the function refuses to start unless this is set: then every
    /// caller may write every dataset (development only).
    pub open_access: bool,
    /// Largest accepted request body; larger ones answer 413.
    pub max_body_bytes: u64,
    /// Commit attempts when concurrent writers keep moving the head; then 409.
    pub max_commit_attempts: u32,
    /// Where polling sources may fetch from (and how S3 buckets are reached).
    pub polling: PollingPolicy,
    /// Takes `ingest` tasks (polls of polling sources) from the control plane's queue.
    pub tasks: Option<TaskWorkerConfig>,
    /// Queue ingest: the identity it writes as, micro-batching, and a JetStream consumer.
    pub queue: crate::queue::QueueIngestConfig,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            storage: StorageConfig::default(),
            control_plane: None,
            open_access: false,
            max_body_bytes: 1 << 30,
            max_commit_attempts: 20,
            polling: PollingPolicy::default(),
            tasks: None,
            queue: crate::queue::QueueIngestConfig::default(),
        }
    }
}
