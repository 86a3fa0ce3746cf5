//! Derivatives computed by themselves under `weir up`: the transform function executes the
//! control plane's flow tasks in this process (an in-process executor taking from the task
//! queue), and its routes show the flows' runs as the transform status.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use weir_control_plane::ControlPlane;
use weir_flows::executor::LocalTaskSource;
use weir_flows::model::{FlowKey, FlowType};
use weir_flows::repository::RunFilter;
use weir_flows::{RunOutcome, RunStatus, Target};
use weir_function_runtime::task::{TaskHandler, TaskKind, TaskSource, WorkerOptions};
use weir_odf::DatasetId;
use weir_transform::notify::NotifyListener;
use weir_transform::status::StepFailure;
use weir_transform::{
    DataFusionEngine, TransformContext, TransformRuns, TransformStatus, TransformTaskHandler,
    Transformer,
};

/// Name of the in-process executor; tasks it held when `weir up` stopped are queued again at
/// start.
pub const EXECUTOR: &str = "weir-up/transform";

struct FlowRuns(Arc<ControlPlane>);

fn time(millis: Option<i64>) -> Option<DateTime<Utc>> {
    millis.and_then(DateTime::from_timestamp_millis)
}

#[async_trait::async_trait]
impl TransformRuns for FlowRuns {
    async fn status(&self, dataset: &DatasetId) -> TransformStatus {
        let filter = RunFilter {
            dataset_id: Some(dataset.to_did_string()),
            flow_type: Some(FlowType::Transform),
            active_only: false,
        };
        let runs = match self.0.flows.flows.runs(&filter, None, 10).await {
            Ok(runs) => runs,
            Err(error) => {
                tracing::warn!(%error, "cannot read flow runs");
                return TransformStatus {
                    pending: true,
                    ..TransformStatus::default()
                };
            }
        };
        let mut status = TransformStatus::default();
        for run in &runs {
            match run.status {
                RunStatus::Running | RunStatus::Retrying => status.running = true,
                RunStatus::Waiting | RunStatus::Queued => status.pending = true,
                RunStatus::Finished => {}
            }
        }
        let last = runs.iter().find(|run| {
            run.status == RunStatus::Finished
                && !matches!(run.outcome, Some(RunOutcome::Aborted { .. }))
        });
        if let Some(run) = last {
            status.last_run_at = time(run.finished_at);
            status.last_duration_ms = run
                .finished_at
                .zip(run.started_at)
                .map(|(end, start)| (end - start).max(0) as u64);
            match &run.outcome {
                Some(RunOutcome::Success { details, .. }) => {
                    status.last_outcome = Some(details.clone())
                }
                Some(RunOutcome::Failed {
                    message, retryable, ..
                }) => {
                    status.last_error = Some(StepFailure {
                        message: message.clone(),
                        retryable: *retryable,
                        at: time(run.finished_at).unwrap_or_else(Utc::now),
                    })
                }
                _ => {}
            }
        }
        status
    }

    async fn request_run(&self, dataset: &DatasetId, account_id: &str) {
        let key = FlowKey::new(dataset.to_did_string(), FlowType::Transform);
        if let Err(error) = self
            .0
            .flows
            .trigger_manual(&key, Target::Derivative, account_id)
            .await
        {
            tracing::warn!(%error, dataset_id = %dataset, "cannot trigger a transform run");
        }
    }
}

/// The transform function's context; with `executor`, executing transform and reset tasks in
/// this process.
pub async fn start(
    control_plane: &Arc<ControlPlane>,
    executor: bool,
) -> Result<Arc<TransformContext>, String> {
    let mut transformer = Transformer::new(control_plane.store.clone(), Arc::new(DataFusionEngine));
    // Publishes `block-committed` for the transform's commits, so derivatives of derivatives run.
    transformer.listeners.push(Arc::new(NotifyListener::new(
        control_plane.commit_notifier("transform"),
    )));
    if executor {
        spawn_executor(control_plane, transformer.clone()).await?;
    }
    Ok(Arc::new(TransformContext {
        store: control_plane.store.clone(),
        transformer,
        access: control_plane.access_policy(),
        runs: Some(Arc::new(FlowRuns(control_plane.clone()))),
    }))
}

async fn spawn_executor(
    control_plane: &Arc<ControlPlane>,
    transformer: Transformer,
) -> Result<(), String> {
    spawn_local_worker(
        control_plane,
        EXECUTOR,
        &weir_transform::tasks::TASK_KINDS,
        Arc::new(TransformTaskHandler { transformer }),
    )
    .await
}

/// Runs `handler` on tasks of `kinds` from the control plane's queue in this process, as
/// `executor`; tasks it held when `weir up` stopped are queued again first.
pub async fn spawn_local_worker(
    control_plane: &Arc<ControlPlane>,
    executor: &str,
    kinds: &[TaskKind],
    handler: Arc<dyn TaskHandler>,
) -> Result<(), String> {
    let requeued = control_plane
        .flows
        .tasks
        .requeue_held_by(executor)
        .await
        .map_err(|error| format!("task queue: {error}"))?;
    if requeued > 0 {
        tracing::info!(
            requeued,
            executor,
            "tasks left running by the last run of weir up are queued again"
        );
    }
    let source: Arc<dyn TaskSource> = Arc::new(LocalTaskSource(control_plane.flows.clone()));
    tokio::spawn(weir_function_runtime::task::run_worker(
        source,
        handler,
        WorkerOptions {
            executor: executor.to_string(),
            kinds: kinds.to_vec(),
            lease: Duration::from_secs(60),
            idle_poll: Duration::from_secs(1),
            concurrency: 2,
        },
        control_plane.flows.worker_wake.clone(),
    ));
    Ok(())
}
