//! Errors of dataset storage operations.

use weir_odf::{DecodeError, Multihash};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object not found: {key}")]
    NotFound { key: String },
    #[error("block {hash} is corrupted: {source}")]
    CorruptedBlock {
        hash: Multihash,
        #[source]
        source: DecodeError,
    },
    #[error("block content does not match its hash {expected}")]
    HashMismatch { expected: Multihash },
    #[error("invalid head reference `{content}`")]
    InvalidHead { content: String },
    #[error("internal storage error: {0}")]
    Internal(#[from] object_store::Error),
    #[error("internal io error: {0}")]
    Io(#[from] std::io::Error),
}

/// Outcome of a failed commit.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Another writer moved the head first; nothing of this commit became visible.
    #[error("concurrent commit: expected head {expected:?}, found {actual:?}")]
    Conflict {
        expected: Option<Multihash>,
        actual: Option<Multihash>,
    },
    #[error("nothing to commit")]
    NothingToCommit,
    /// A reset named a block that is not in the dataset's chain.
    #[error("block {block} is not in the dataset's chain")]
    NotInChain { block: Multihash },
    /// Writers in other processes won the compare-and-swap every time.
    #[error("the head kept moving: {attempts} commit attempts lost to concurrent writers")]
    TooManyConflicts { attempts: u32 },
    #[error("invalid block: {0}")]
    InvalidBlock(#[from] weir_odf::validation::ChainValidationError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Errors of writing or reading data slices.
#[derive(Debug, thiserror::Error)]
pub enum SliceError {
    #[error("data does not match the dataset schema: {0}")]
    Schema(String),
    #[error("internal arrow error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("internal parquet error: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("internal slice error: {0}")]
    Internal(String),
}
