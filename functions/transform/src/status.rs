//! What the transform function's routes show and ask of whoever schedules steps (the control
//! plane's flows): a derivative's transform status, and a run after a reset.

use chrono::{DateTime, Utc};
use serde::Serialize;
use weir_odf::DatasetId;

/// The state of a derivative's steps, as shown on the dataset.
#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TransformStatus {
    /// A step is running (or retrying).
    pub running: bool,
    /// A step waits to run (new input arrived, a schedule, or a manual trigger).
    pub pending: bool,
    pub last_run_at: Option<DateTime<Utc>>,
    /// How long the last step took, from being taken by an executor to its end.
    pub last_duration_ms: Option<u64>,
    /// What the last successful step did.
    pub last_outcome: Option<serde_json::Value>,
    /// The last step's error, until a step succeeds.
    pub last_error: Option<StepFailure>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepFailure {
    pub message: String,
    /// Whether running again without a change may help.
    pub retryable: bool,
    pub at: DateTime<Utc>,
}

/// Whoever runs steps by themselves (the flows of the control plane under `weir up`).
#[async_trait::async_trait]
pub trait TransformRuns: Send + Sync {
    async fn status(&self, dataset: &DatasetId) -> TransformStatus;
    /// Asks for a step of `dataset` soon (after a reset).
    async fn request_run(&self, dataset: &DatasetId, account_id: &str);
}
