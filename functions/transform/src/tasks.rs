//! The transform function as an executor of flow tasks: `transform` runs a step (resetting
//! first when an input's history changed and the flow recovers from that), `reset` resets a
//! derivative to its metadata. Outcomes say whether the error may pass by itself.

use weir_function_runtime::task::{LeasedTask, TaskHandler, TaskKind, TaskOutcome};
use weir_odf::DatasetId;

use crate::coordinator::Transformer;
use crate::error::TransformError;

pub struct TransformTaskHandler {
    pub transformer: Transformer,
}

/// The kinds of task this function executes.
pub const TASK_KINDS: [TaskKind; 2] = [TaskKind::Transform, TaskKind::Reset];

fn failed(error: &TransformError) -> TaskOutcome {
    let error_kind = match error {
        TransformError::InputRewritten { .. } => "inputRewritten",
        TransformError::Engine(_) => "engine",
        TransformError::Commit(_) => "commit",
        TransformError::Storage(_) | TransformError::Slice(_) => "storage",
        TransformError::OutputSchema(_) => "outputSchema",
        _ => "definition",
    };
    TaskOutcome::Failed {
        error_kind: error_kind.to_string(),
        message: error.to_string(),
        retryable: error.is_retryable(),
    }
}

impl TransformTaskHandler {
    /// A step; when an input turns out to have been reset or compacted and `may_recover`, the
    /// derivative resets to its metadata and the step runs again from the inputs.
    async fn step(
        &self,
        dataset: &DatasetId,
        may_recover: bool,
    ) -> Result<TaskOutcome, TransformError> {
        let (outcome, reset) = match self.transformer.run_step(dataset).await {
            Err(TransformError::InputRewritten { .. }) if may_recover => {
                let reset = self.transformer.reset(dataset, None).await?;
                (self.transformer.run_step(dataset).await?, Some(reset))
            }
            other => (other?, None),
        };
        let mut details = serde_json::to_value(&outcome).unwrap_or_default();
        if let Some(reset) = &reset {
            details["reset"] = serde_json::to_value(reset).unwrap_or_default();
        }
        Ok(TaskOutcome::Success {
            changed: outcome.new_head.is_some() || reset.is_some(),
            details,
        })
    }
}

#[async_trait::async_trait]
impl TaskHandler for TransformTaskHandler {
    async fn run(&self, task: &LeasedTask) -> TaskOutcome {
        let Ok(dataset) = task.dataset_id.parse::<DatasetId>() else {
            return TaskOutcome::Failed {
                error_kind: "definition".to_string(),
                message: format!("`{}` is not a dataset id", task.dataset_id),
                retryable: false,
            };
        };
        let recover_allowed = task.params["onBreakingChange"] != "noAction";
        let result = match task.kind {
            TaskKind::Reset => {
                self.transformer
                    .reset(&dataset, None)
                    .await
                    .map(|reset| TaskOutcome::Success {
                        changed: true,
                        details: serde_json::to_value(&reset).unwrap_or_default(),
                    })
            }
            _ => self.step(&dataset, recover_allowed).await,
        };
        result.unwrap_or_else(|error| failed(&error))
    }
}
