//! Where a process keeps its datasets, as written in service configs:
//!
//! ```yaml
//! storage:
//!   kind: local_fs          # or s3, memory
//!   root_dir: /var/lib/weir/datasets
//! ```

use serde::{Deserialize, Serialize};

use crate::error::StorageError;
use crate::store::{DatasetStore, S3Settings};

/// Serializable so that a process can hand its storage to workers it starts (`weir up`'s local
/// engine workers); it may hold S3 credentials, so written files must stay private.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StorageConfig {
    LocalFs {
        root_dir: std::path::PathBuf,
    },
    S3 {
        bucket: String,
        #[serde(default)]
        prefix: String,
        #[serde(default = "default_region")]
        region: String,
        endpoint: Option<String>,
        access_key_id: Option<String>,
        secret_access_key: Option<String>,
        #[serde(default)]
        allow_http: bool,
    },
    Memory,
}

fn default_region() -> String {
    "us-east-1".to_string()
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self::LocalFs {
            root_dir: ".weir/datasets".into(),
        }
    }
}

impl StorageConfig {
    pub fn open(&self) -> Result<DatasetStore, StorageError> {
        match self {
            Self::LocalFs { root_dir } => DatasetStore::local_fs(root_dir),
            Self::Memory => Ok(DatasetStore::in_memory()),
            Self::S3 {
                bucket,
                prefix,
                region,
                endpoint,
                access_key_id,
                secret_access_key,
                allow_http,
            } => DatasetStore::s3(&S3Settings {
                bucket: bucket.clone(),
                prefix: prefix.clone(),
                region: region.clone(),
                endpoint: endpoint.clone(),
                access_key_id: access_key_id.clone(),
                secret_access_key: secret_access_key.clone(),
                allow_http: *allow_http,
            }),
        }
    }
}
