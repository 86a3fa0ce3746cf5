//! The ingest function as an executor of flow tasks on root datasets: `ingest` polls the
//! dataset's polling source once; `compaction` merges its small slices (weir-dataset's
//! `compaction`) and tells the control plane about the new head, so derivatives find their input
//! rewritten and recover. Outcomes say whether the error may pass by itself.

use std::sync::Arc;

use weir_dataset::compaction::{CompactionParams, compact};
use weir_function_runtime::task::{LeasedTask, TaskHandler, TaskKind, TaskOutcome};
use weir_odf::DatasetId;

use super::Poller;
use crate::service::IngestContext;

/// The kinds of task this function executes.
pub const TASK_KINDS: [TaskKind; 2] = [TaskKind::Ingest, TaskKind::Compaction];

pub struct IngestTaskHandler {
    pub poller: Poller,
    pub context: Arc<IngestContext>,
}

fn failed(error_kind: &str, message: String, retryable: bool) -> TaskOutcome {
    TaskOutcome::Failed {
        error_kind: error_kind.to_string(),
        message,
        retryable,
    }
}

/// `maxSliceSize` and `maxSliceRecords` of the task, else the defaults.
fn compaction_params(params: &serde_json::Value) -> CompactionParams {
    let defaults = CompactionParams::default();
    CompactionParams {
        max_slice_size: params["maxSliceSize"]
            .as_u64()
            .unwrap_or(defaults.max_slice_size),
        max_slice_records: params["maxSliceRecords"]
            .as_u64()
            .unwrap_or(defaults.max_slice_records),
    }
}

impl IngestTaskHandler {
    async fn compact(&self, id: &DatasetId, params: &serde_json::Value) -> TaskOutcome {
        let dataset = self.context.store.dataset(id);
        match compact(&dataset, &compaction_params(params)).await {
            Ok(None) => TaskOutcome::Success {
                changed: false,
                details: serde_json::json!({"upToDate": true}),
            },
            Ok(Some(outcome)) => {
                if let Some(notifier) = &self.context.notifier {
                    notifier
                        .block_committed(
                            self.poller.caller(),
                            &id.to_did_string(),
                            &outcome.new_head.to_string(),
                            outcome.new_head_sequence_number,
                        )
                        .await;
                }
                TaskOutcome::Success {
                    changed: true,
                    details: serde_json::to_value(&outcome).unwrap_or_default(),
                }
            }
            Err(error) => failed("compaction", error.to_string(), error.is_retryable()),
        }
    }
}

#[async_trait::async_trait]
impl TaskHandler for IngestTaskHandler {
    async fn run(&self, task: &LeasedTask) -> TaskOutcome {
        let Ok(dataset) = task.dataset_id.parse::<DatasetId>() else {
            return failed(
                "definition",
                format!("`{}` is not a dataset id", task.dataset_id),
                false,
            );
        };
        if task.kind == TaskKind::Compaction {
            return self.compact(&dataset, &task.params).await;
        }
        match self.poller.poll(&dataset).await {
            Ok(outcome) => TaskOutcome::Success {
                changed: outcome.commits > 0,
                details: serde_json::to_value(&outcome).unwrap_or_default(),
            },
            Err(error) => failed(error.kind(), error.to_string(), error.is_retryable()),
        }
    }
}
