//! The ingest function as an executor of `ingest` flow tasks: one poll of the dataset's
//! polling source per task. Outcomes say whether the error may pass by itself.

use weir_function_runtime::task::{LeasedTask, TaskHandler, TaskKind, TaskOutcome};
use weir_odf::DatasetId;

use super::Poller;

/// The kinds of task this function executes.
pub const TASK_KINDS: [TaskKind; 1] = [TaskKind::Ingest];

pub struct IngestTaskHandler {
    pub poller: Poller,
}

#[async_trait::async_trait]
impl TaskHandler for IngestTaskHandler {
    async fn run(&self, task: &LeasedTask) -> TaskOutcome {
        let Ok(dataset) = task.dataset_id.parse::<DatasetId>() else {
            return TaskOutcome::Failed {
                error_kind: "definition".to_string(),
                message: format!("`{}` is not a dataset id", task.dataset_id),
                retryable: false,
            };
        };
        match self.poller.poll(&dataset).await {
            Ok(outcome) => TaskOutcome::Success {
                changed: outcome.commits > 0,
                details: serde_json::to_value(&outcome).unwrap_or_default(),
            },
            Err(error) => TaskOutcome::Failed {
                error_kind: error.kind().to_string(),
                message: error.to_string(),
                retryable: error.is_retryable(),
            },
        }
    }
}
