//! Query errors and how they answer over HTTP.

use datafusion::error::DataFusionError;
use weir_function_runtime::{ApiError, ErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("invalid SQL: {0}")]
    InvalidSql(String),
    #[error("{0}")]
    UnknownTable(String),
    #[error("only read queries are allowed: {0}")]
    NotReadOnly(String),
    #[error("dataset `{0}` not found")]
    DatasetNotFound(String),
    #[error("block {block} is not in the chain of `{alias}`")]
    BlockNotFound { alias: String, block: String },
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("query exceeded the memory limit of {limit} bytes: {message}")]
    MemoryLimit { limit: u64, message: String },
    #[error("query did not finish within {seconds} s")]
    Timeout { seconds: u64 },
    #[error("result has more than {limit} rows: add a LIMIT or use paging (skip/limit)")]
    TooManyRows { limit: u64 },
    #[error("query failed: {0}")]
    Execution(String),
    /// The query is over one of the function's documented limits (length, nesting depth).
    #[error("query refused: {0}")]
    LimitExceeded(String),
    /// The platform refused or could not check the caller (401, or 503 when unreachable).
    #[error("{0}")]
    Access(ApiError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl QueryError {
    /// Classifies an engine error: user mistakes become 4xx, the rest internal.
    pub fn from_datafusion(error: DataFusionError, memory_limit: u64) -> Self {
        let root = error.find_root();
        let message = root.to_string();
        match root {
            DataFusionError::SQL(..) if message.contains("RecursionLimitExceeded") => {
                Self::LimitExceeded(format!(
                    "query nests deeper than the SQL parser's recursion limit ({message})"
                ))
            }
            DataFusionError::SQL(..) => Self::InvalidSql(message),
            DataFusionError::ResourcesExhausted(detail) => Self::MemoryLimit {
                limit: memory_limit,
                message: detail.clone(),
            },
            DataFusionError::Plan(detail)
                if detail.contains("not supported")
                    && (detail.contains("DDL")
                        || detail.contains("DML")
                        || detail.contains("Statement")) =>
            {
                Self::NotReadOnly(detail.clone())
            }
            DataFusionError::Plan(detail) if detail.contains("not found") => {
                Self::UnknownTable(detail.clone())
            }
            DataFusionError::Plan(_) => Self::InvalidSql(message),
            DataFusionError::NotImplemented(detail) => {
                Self::InvalidSql(format!("not supported: {detail}"))
            }
            DataFusionError::SchemaError(..) => Self::InvalidSql(message),
            DataFusionError::ArrowError(..) | DataFusionError::Execution(..) => {
                Self::Execution(message)
            }
            DataFusionError::External(inner) => match inner.downcast_ref::<QueryError>() {
                Some(QueryError::DatasetNotFound(alias)) => Self::DatasetNotFound(alias.clone()),
                Some(QueryError::InvalidRequest(detail)) => Self::InvalidRequest(detail.clone()),
                Some(QueryError::Access(error)) => Self::Access(error.clone()),
                Some(QueryError::BlockNotFound { alias, block }) => Self::BlockNotFound {
                    alias: alias.clone(),
                    block: block.clone(),
                },
                _ => Self::Internal(message),
            },
            _ => Self::Internal(message),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        let kind = match &error {
            QueryError::InvalidSql(_)
            | QueryError::UnknownTable(_)
            | QueryError::NotReadOnly(_)
            | QueryError::BlockNotFound { .. }
            | QueryError::InvalidRequest(_)
            | QueryError::MemoryLimit { .. }
            | QueryError::TooManyRows { .. }
            | QueryError::Execution(_)
            | QueryError::LimitExceeded(_) => ErrorKind::InvalidInput,
            QueryError::DatasetNotFound(_) => ErrorKind::NotFound,
            QueryError::Timeout { .. } => ErrorKind::Retryable,
            QueryError::Internal(_) => ErrorKind::Internal,
            QueryError::Access(error) => error.kind,
        };
        ApiError::new(kind, error.to_string())
    }
}
