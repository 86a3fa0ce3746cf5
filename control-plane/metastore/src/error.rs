#[derive(Debug, thiserror::Error)]
pub enum MetastoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A request the store cannot run as given (a search expression it refuses).
    #[error("{0}")]
    Invalid(String),
    #[error("invalid metastore url `{0}`: expected postgres://... or sqlite://...")]
    InvalidUrl(String),
    #[error("metastore internal error: {0}")]
    Internal(String),
}

impl From<sqlx::Error> for MetastoreError {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(database_error) = &error
            && database_error.is_unique_violation()
        {
            return Self::Conflict(database_error.message().to_string());
        }
        Self::Internal(error.to_string())
    }
}

pub type MetastoreResult<T> = Result<T, MetastoreError>;
