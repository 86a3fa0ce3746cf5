//! Errors of the registry: a bad value (shown to users as 400 naming the field), a missing or
//! conflicting entity, and store failures that keep their source.

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("invalid `{field}`: {message}")]
    InvalidField { field: String, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("device registry store: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl DeviceError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// Whether trying again later may help (the database was unreachable).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Store(_))
    }
}

impl From<sqlx::Error> for DeviceError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(Box::new(error))
    }
}

impl From<weir_metastore::MetastoreError> for DeviceError {
    fn from(error: weir_metastore::MetastoreError) -> Self {
        Self::Store(Box::new(error))
    }
}

pub type DeviceResult<T> = Result<T, DeviceError>;
