//! Why a transform step failed, and whether running it again can help.

use weir_dataset::{CommitError, SliceError, StorageError};
use weir_odf::{DatasetId, Multihash};

use crate::engine::EngineError;

#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    #[error("the dataset is not a derivative")]
    NotDerivative,
    #[error(
        "a root dataset is reset to a block named in `toBlock`; only a derivative can go back to its metadata"
    )]
    ResetNeedsBlock,
    #[error("the dataset has no transform (SetTransform)")]
    NoTransform,
    #[error("transform input `{alias}` is not a dataset id; create the dataset through the API")]
    UnresolvedInput { alias: String },
    #[error("transform input `{alias}` does not exist")]
    InputNotFound { alias: String },
    /// The block an earlier step read is gone from the input's chain: the input was reset or
    /// compacted, and the derivative must be reset to be computed again.
    #[error(
        "transform input `{alias}` ({dataset_id}) was reset or compacted: block {block}, read by an earlier step, is no longer in its chain"
    )]
    InputRewritten {
        alias: String,
        dataset_id: DatasetId,
        block: Multihash,
    },
    #[error("output schema: {0}")]
    OutputSchema(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Commit(#[from] CommitError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Slice(#[from] SliceError),
    #[error("a worker thread failed: {0}")]
    Join(String),
}

impl TransformError {
    /// Whether the same step may succeed when run again without a change by the user.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Engine(EngineError::Internal { .. }) | Self::Storage(_) | Self::Join(_) => true,
            Self::Commit(error) => !matches!(error, CommitError::InvalidBlock(_)),
            Self::Slice(error) => !matches!(error, SliceError::Schema(_)),
            _ => false,
        }
    }
}
