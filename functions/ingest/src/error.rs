//! Ingest errors and how they answer over HTTP.

use weir_dataset::{CommitError, SliceError, StorageError};
use weir_function_runtime::{ApiError, ErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("dataset `{0}` not found")]
    DatasetNotFound(String),
    #[error("{0}")]
    Forbidden(String),
    /// The platform refused or could not check the caller (401, or 503 when unreachable).
    #[error("{0}")]
    Access(weir_function_runtime::ApiError),
    #[error("dataset `{0}` is derivative: only root datasets accept pushed data")]
    DerivativeDataset(String),
    #[error("dataset `{0}` has no push source")]
    NoPushSource(String),
    #[error("push source `{name}` not found; available: {available:?}")]
    UnknownSource {
        name: String,
        available: Vec<String>,
    },
    #[error("dataset has several push sources {0:?}: pass ?sourceName=")]
    AmbiguousSource(Vec<String>),
    #[error(
        "unsupported media type `{0}`: use text/csv, application/json, application/x-ndjson, application/geo+json or application/vnd.apache.parquet"
    )]
    UnsupportedMediaType(String),
    #[error("request body is empty")]
    EmptyBody,
    #[error("request body exceeds the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("malformed {format} input: {message}")]
    Malformed {
        format: &'static str,
        message: String,
    },
    #[error("invalid value: {0}")]
    BadValue(String),
    /// A value of one record that does not fit its column; `record` is 1-based, counted in the
    /// batch it was found in until `after` places it in the body.
    #[error("invalid value: record {record}: column `{column}`: {message}")]
    BadRecord {
        record: u64,
        column: String,
        message: String,
    },
    #[error("invalid `odf-event-time` header `{0}`: expected an RFC 3339 timestamp")]
    BadEventTimeHeader(String),
    #[error("preprocess query failed: {0}")]
    Preprocess(String),
    #[error("merge failed: {0}")]
    Merge(String),
    #[error("dataset metadata is not supported by this ingest function: {0}")]
    Unsupported(String),
    #[error("dataset is being written concurrently; gave up after {attempts} attempts")]
    TooManyConflicts { attempts: u32 },
    #[error("invalid `Idempotency-Key` header: {0}")]
    BadIdempotencyKey(String),
    #[error(
        "idempotency key `{key}` was already used for a different request to this dataset; \
         use a new key for a new request"
    )]
    IdempotencyKeyReused { key: String },
    /// A polled source stopped answering part way through its data.
    #[error("reading the source failed: {0}")]
    SourceUnavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("internal error: {0}")]
    Internal(String),
}

impl IngestError {
    /// Whether the same input may succeed later without any change: a lost race, storage or
    /// the platform being unavailable, a source that broke off. Bad input never does.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::TooManyConflicts { .. }
                | Self::SourceUnavailable(_)
                | Self::Internal(_)
                | Self::Access(_)
        )
    }
}

impl IngestError {
    /// Places a record error of a batch in the body, given the records before the batch.
    pub fn after(self, records_before: u64) -> Self {
        match self {
            Self::BadRecord {
                record,
                column,
                message,
            } => Self::BadRecord {
                record: record + records_before,
                column,
                message,
            },
            other => other,
        }
    }
}

/// Applies `shape` to each batch, naming records by their place among all the batches.
pub fn each_numbered<T>(
    batches: &[arrow::array::RecordBatch],
    mut shape: impl FnMut(&arrow::array::RecordBatch) -> Result<T, IngestError>,
) -> Result<Vec<T>, IngestError> {
    let mut before = 0u64;
    batches
        .iter()
        .map(|batch| {
            let shaped = shape(batch).map_err(|error| error.after(before))?;
            before += batch.num_rows() as u64;
            Ok(shaped)
        })
        .collect()
}

impl From<StorageError> for IngestError {
    fn from(error: StorageError) -> Self {
        Self::Internal(error.to_string())
    }
}

impl From<CommitError> for IngestError {
    fn from(error: CommitError) -> Self {
        match error {
            CommitError::InvalidBlock(error) => Self::BadValue(error.to_string()),
            CommitError::TooManyConflicts { attempts } => Self::TooManyConflicts { attempts },
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<SliceError> for IngestError {
    fn from(error: SliceError) -> Self {
        match error {
            SliceError::Schema(message) => Self::BadValue(message),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> Self {
        let kind = match &error {
            IngestError::DatasetNotFound(_) => ErrorKind::NotFound,
            IngestError::Forbidden(_) => ErrorKind::Forbidden,
            IngestError::DerivativeDataset(_)
            | IngestError::NoPushSource(_)
            | IngestError::UnknownSource { .. }
            | IngestError::AmbiguousSource(_)
            | IngestError::EmptyBody
            | IngestError::Malformed { .. }
            | IngestError::BadValue(_)
            | IngestError::BadRecord { .. }
            | IngestError::BadEventTimeHeader(_)
            | IngestError::Preprocess(_)
            | IngestError::Merge(_)
            | IngestError::Unsupported(_)
            | IngestError::BadIdempotencyKey(_) => ErrorKind::InvalidInput,
            IngestError::IdempotencyKeyReused { .. } => ErrorKind::Unprocessable,
            IngestError::UnsupportedMediaType(_) => ErrorKind::UnsupportedMediaType,
            IngestError::TooLarge { .. } => ErrorKind::PayloadTooLarge,
            IngestError::TooManyConflicts { .. } => ErrorKind::Conflict,
            IngestError::Internal(_) => ErrorKind::Internal,
            IngestError::SourceUnavailable(_) => ErrorKind::Retryable,
            IngestError::Access(error) => error.kind,
        };
        ApiError::new(kind, error.to_string())
    }
}
