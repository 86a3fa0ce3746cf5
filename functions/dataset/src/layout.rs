//! Object keys of a dataset, as the ODF dataset layout defines them:
//! `<root>/<dataset-did>/{refs/head, blocks/<hash>, data/<hash>, checkpoints/<hash>, info/}`.

use object_store::path::Path;
use weir_odf::{DatasetId, Multihash};

#[derive(Debug, Clone)]
pub struct DatasetLayout {
    prefix: Path,
}

impl DatasetLayout {
    pub fn new(root: &Path, dataset_id: &DatasetId) -> Self {
        Self {
            prefix: root.clone().join(dataset_id.to_did_string()),
        }
    }

    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    pub fn head(&self) -> Path {
        self.prefix.clone().join("refs").clone().join("head")
    }

    pub fn block(&self, hash: &Multihash) -> Path {
        self.prefix
            .clone()
            .join("blocks")
            .clone()
            .join(hash.to_multibase())
    }

    pub fn data(&self, hash: &Multihash) -> Path {
        self.prefix
            .clone()
            .join("data")
            .clone()
            .join(hash.to_multibase())
    }

    pub fn checkpoint(&self, hash: &Multihash) -> Path {
        self.prefix
            .clone()
            .join("checkpoints")
            .clone()
            .join(hash.to_multibase())
    }

    /// A Weir-only object a large slice is uploaded to before it is moved under its hash; ODF
    /// readers never look under `staging/`.
    pub fn staging(&self, name: &str) -> Path {
        self.prefix.clone().join("staging").clone().join(name)
    }

    pub fn info(&self, name: &str) -> Path {
        self.prefix.clone().join("info").clone().join(name)
    }
}

/// Where coordinators and engines exchange a step's files (`<root>/.engine/<step>/`): never
/// dataset content, and outside every dataset's prefix.
pub const ENGINE_SCRATCH_DIR: &str = ".engine";

pub fn engine_scratch(root: &Path) -> Path {
    root.clone().join(ENGINE_SCRATCH_DIR)
}
