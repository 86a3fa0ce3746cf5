//! Config of the governance function (`/srv/governance/service-config.yml`), with `WEIR__...`
//! overrides.

use serde::Deserialize;
use weir_dataset::StorageConfig;
use weir_function_runtime::ControlPlaneLinkConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GovernanceConfig {
    pub storage: StorageConfig,
    /// The control plane that authenticates callers, decides access and is told about commits.
    /// Without one every caller may do everything: development only.
    pub control_plane: Option<ControlPlaneLinkConfig>,
    /// Without a control plane the function refuses to start unless this is set.
    pub open_access: bool,
    /// Commit attempts when concurrent writers keep moving the head.
    pub max_commit_attempts: u32,
    pub docs: DocsLimits,
    /// Files attached to issues and comments (`POST …/files`).
    pub max_file_bytes: usize,
}

impl Default for GovernanceConfig {
    fn default() -> Self {
        Self {
            storage: StorageConfig::default(),
            control_plane: None,
            open_access: false,
            max_commit_attempts: 10,
            docs: DocsLimits::default(),
            max_file_bytes: 10 * 1024 * 1024,
        }
    }
}

/// Bounds of what documentation may hold. Attachments are embedded in metadata blocks, which
/// every reader of the chain downloads, so they stay small; larger files belong elsewhere.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DocsLimits {
    pub max_description_chars: usize,
    pub max_keywords: usize,
    pub max_keyword_chars: usize,
    pub max_attachments: usize,
    pub max_attachment_bytes: usize,
    /// All attachments together: the size of the `SetAttachments` block.
    pub max_attachments_total_bytes: usize,
}

impl Default for DocsLimits {
    fn default() -> Self {
        Self {
            max_description_chars: 2_000,
            max_keywords: 32,
            max_keyword_chars: 64,
            max_attachments: 32,
            max_attachment_bytes: 256 * 1024,
            max_attachments_total_bytes: 1024 * 1024,
        }
    }
}
