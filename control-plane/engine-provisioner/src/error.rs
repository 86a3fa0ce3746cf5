//! What can go wrong while provisioning, and whether it is worth trying again.

use crate::demand::DemandError;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("task queue: {0}")]
    Demand(#[from] DemandError),
    #[cfg(feature = "kubernetes")]
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[cfg(feature = "kubernetes")]
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<ProvisionError>>),
    #[error("invalid pool {pool}: {message}")]
    InvalidPool { pool: String, message: String },
    #[error("worker process {program}: {source}")]
    Process {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

impl ProvisionError {
    /// Retryable errors are retried soon; permanent ones wait for the pool to change.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Demand(error) => error.is_retryable(),
            #[cfg(feature = "kubernetes")]
            Self::Kube(kube::Error::Api(status)) => {
                status.code >= 500 || status.code == 409 || status.code == 429
            }
            #[cfg(feature = "kubernetes")]
            Self::Kube(_) => true,
            #[cfg(feature = "kubernetes")]
            Self::Finalizer(_) => true,
            Self::InvalidPool { .. } => false,
            Self::Process { .. } => true,
        }
    }
}
