//! Errors of the control plane's services; each maps to an API error kind.

use weir_function_runtime::{ApiError, ErrorKind};
use weir_metastore::MetastoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn internal(error: impl std::fmt::Display) -> Self {
        Self::Internal(error.to_string())
    }

    pub fn dataset_not_found(alias: &str) -> Self {
        Self::NotFound(format!("dataset `{alias}` not found"))
    }
}

impl From<MetastoreError> for ServiceError {
    fn from(error: MetastoreError) -> Self {
        match error {
            MetastoreError::NotFound(what) => Self::NotFound(format!("{what} not found")),
            MetastoreError::Conflict(message) => Self::Conflict(message),
            MetastoreError::Invalid(message) => Self::InvalidInput(message),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<weir_dataset::StorageError> for ServiceError {
    fn from(error: weir_dataset::StorageError) -> Self {
        Self::Internal(error.to_string())
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        let kind = match &error {
            ServiceError::InvalidInput(_) => ErrorKind::InvalidInput,
            ServiceError::Unauthenticated(_) => ErrorKind::Unauthenticated,
            ServiceError::Forbidden(_) => ErrorKind::Forbidden,
            ServiceError::NotFound(_) => ErrorKind::NotFound,
            ServiceError::Conflict(_) => ErrorKind::Conflict,
            ServiceError::Internal(_) => ErrorKind::Internal,
        };
        ApiError::new(kind, error.to_string())
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
