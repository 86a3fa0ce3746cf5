//! The smallest trigger that keeps derivatives computed: when a dataset commits, the derivatives
//! that read it run a step, at most one at a time per dataset; commits that arrive while a step
//! runs are batched into the next one. The flows issue replaces it with schedules, batching,
//! retries and the task queue, behind the same `TransformTrigger` trait.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use weir_odf::DatasetId;

use crate::coordinator::{StepOutcome, Transformer};

/// Told when a dataset changed, so that what reads it is computed again.
#[async_trait::async_trait]
pub trait TransformTrigger: Send + Sync {
    /// `dataset` committed a block: its derivatives should run.
    async fn input_committed(&self, dataset: &DatasetId);
    /// A derivative was created (or its transform changed): it should run.
    fn derivative_changed(&self, dataset: &DatasetId);
}

/// Who reads a dataset (the control plane's lineage index under `weir up`).
#[async_trait::async_trait]
pub trait Lineage: Send + Sync {
    async fn derivatives_of(
        &self,
        dataset: &DatasetId,
    ) -> Result<Vec<DatasetId>, Box<dyn std::error::Error + Send + Sync>>;
}

/// The last step of a derivative, as shown on the dataset.
#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TransformStatus {
    pub running: bool,
    /// A commit arrived while the step ran: another step follows.
    pub pending: bool,
    pub last_run_at: Option<DateTime<Utc>>,
    /// How long the last step took, from planning to commit.
    pub last_duration_ms: Option<u64>,
    pub last_outcome: Option<StepOutcome>,
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

/// Runs steps in this process (`weir up`).
pub struct LocalTrigger {
    transformer: Transformer,
    lineage: Arc<dyn Lineage>,
    states: Mutex<HashMap<DatasetId, TransformStatus>>,
}

impl LocalTrigger {
    pub fn new(transformer: Transformer, lineage: Arc<dyn Lineage>) -> Arc<Self> {
        Arc::new(Self {
            transformer,
            lineage,
            states: Mutex::new(HashMap::new()),
        })
    }

    pub fn status(&self, dataset: &DatasetId) -> TransformStatus {
        self.states
            .lock()
            .expect("status lock")
            .get(dataset)
            .cloned()
            .unwrap_or_default()
    }

    /// Runs `dataset` soon: now if idle, after the running step otherwise.
    pub fn schedule(self: &Arc<Self>, dataset: DatasetId) {
        {
            let mut states = self.states.lock().expect("status lock");
            let state = states.entry(dataset).or_default();
            if state.running {
                state.pending = true;
                return;
            }
            state.running = true;
        }
        let this = self.clone();
        tokio::spawn(async move { this.run_until_idle(dataset).await });
    }

    async fn run_until_idle(self: Arc<Self>, dataset: DatasetId) {
        loop {
            let started = std::time::Instant::now();
            let result = self.transformer.run_step(&dataset).await;
            let elapsed = started.elapsed();
            let mut states = self.states.lock().expect("status lock");
            let state = states.entry(dataset).or_default();
            state.last_run_at = Some(Utc::now());
            state.last_duration_ms = Some(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
            match result {
                Ok(outcome) => {
                    state.last_outcome = Some(outcome);
                    state.last_error = None;
                }
                Err(error) => {
                    tracing::warn!(dataset_id = %dataset, %error, "transform step failed");
                    state.last_error = Some(StepFailure {
                        message: error.to_string(),
                        retryable: error.is_retryable(),
                        at: Utc::now(),
                    });
                }
            }
            if state.pending {
                state.pending = false;
                continue;
            }
            state.running = false;
            return;
        }
    }
}

#[async_trait::async_trait]
impl TransformTrigger for Arc<LocalTrigger> {
    async fn input_committed(&self, dataset: &DatasetId) {
        match self.lineage.derivatives_of(dataset).await {
            Ok(derivatives) => {
                for derivative in derivatives {
                    self.schedule(derivative);
                }
            }
            Err(error) => {
                tracing::warn!(dataset_id = %dataset, %error, "cannot find the derivatives of a dataset")
            }
        }
    }

    fn derivative_changed(&self, dataset: &DatasetId) {
        self.schedule(*dataset);
    }
}
