//! The task queue as a `TaskSource` for executors in the control plane's process (`weir up`'s
//! transform executor, the GC task, benchmarks).

use std::sync::Arc;
use std::time::Duration;

use weir_tasks::{LeasedTask, TaskKind, TaskOutcome, TaskSource, TaskSourceError};

use crate::error::FlowError;
use crate::service::FlowService;

pub struct LocalTaskSource(pub Arc<FlowService>);

fn source_error(error: FlowError) -> TaskSourceError {
    match error {
        FlowError::LeaseLost(task) => TaskSourceError::LeaseLost(task),
        other => TaskSourceError::Unavailable(Box::new(other)),
    }
}

#[async_trait::async_trait]
impl TaskSource for LocalTaskSource {
    async fn lease(
        &self,
        kinds: &[TaskKind],
        executor: &str,
        lease: Duration,
    ) -> Result<Option<LeasedTask>, TaskSourceError> {
        self.0
            .lease(kinds, executor, lease)
            .await
            .map_err(source_error)
    }

    async fn heartbeat(
        &self,
        task: &LeasedTask,
        executor: &str,
        lease: Duration,
    ) -> Result<(), TaskSourceError> {
        self.0
            .heartbeat(task.task_id, executor, lease)
            .await
            .map(|_| ())
            .map_err(source_error)
    }

    async fn finish(
        &self,
        task: &LeasedTask,
        executor: &str,
        outcome: TaskOutcome,
    ) -> Result<(), TaskSourceError> {
        self.0
            .finish(task.task_id, executor, outcome)
            .await
            .map(|_| ())
            .map_err(source_error)
    }
}
