//! Config of the ingest function (`/srv/ingest/service-config.yml`, `WEIR__...` overrides).

use serde::Deserialize;
use weir_dataset::StorageConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    pub storage: StorageConfig,
    /// Largest accepted request body; larger ones answer 413.
    pub max_body_bytes: u64,
    /// Commit attempts when concurrent writers keep moving the head; then 409.
    pub max_commit_attempts: u32,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            storage: StorageConfig::default(),
            max_body_bytes: 1 << 30,
            max_commit_attempts: 20,
        }
    }
}
