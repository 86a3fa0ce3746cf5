//! Errors of flows: a config field at fault (shown to users as 400 naming it), a state that does
//! not allow the operation, and repository failures that keep their source and say whether
//! trying again may help.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid `{field}`: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error(transparent)]
    InvalidField(#[from] FieldError),
    #[error("{0}")]
    NotFound(String),
    /// The operation does not fit the current state (e.g. cancelling a finished run).
    #[error("{0}")]
    Conflict(String),
    /// The task is no longer leased to the caller.
    #[error("task {0} is not leased to this executor")]
    LeaseLost(i64),
    #[error("flow store: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<sqlx::Error> for FlowError {
    fn from(error: sqlx::Error) -> Self {
        FlowError::Store(Box::new(error))
    }
}

pub type FlowResult<T> = Result<T, FlowError>;
