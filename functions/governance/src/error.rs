//! Why a governance request failed: the caller's mistake (with the field it concerns), or
//! storage trouble that a retry may cure. No HTTP types; `routes` maps kinds to statuses.

use weir_dataset::{CommitError, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum GovernanceError {
    /// A field of the request is not acceptable; `field` names it (`license.spdxId`, ...).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// An attachment or description over its configured limit.
    #[error("{field}: {message}")]
    TooLarge { field: String, message: String },
    /// The attachment's declared media type is not the one its path implies.
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{what} not found")]
    NotFound { what: String },
    /// The dataset has no blocks yet (it is being created).
    #[error("dataset `{0}` has no metadata yet")]
    Empty(String),
    #[error(transparent)]
    Commit(#[from] CommitError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl GovernanceError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn too_large(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::TooLarge {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Whether the same request may succeed when sent again unchanged.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Storage(_) => true,
            Self::Commit(error) => !matches!(error, CommitError::InvalidBlock(_)),
            _ => false,
        }
    }
}
