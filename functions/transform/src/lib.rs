//! weir-transform: the transform function, which computes derivative datasets.
//!
//! The coordinator (`coordinator`) reads the chains, decides what input records are new, runs
//! an engine (`engine`: ours is DataFusion in-process) and commits `ExecuteTransform` through
//! the commit pipeline of weir-dataset; `tasks` executes the flow tasks the control plane
//! schedules, and `status` is what its routes show of them. It must not
//! depend on the control plane, its database or its event bus (those reach it through traits).

pub mod config;
pub mod coordinator;
pub mod engine;
pub mod error;
pub mod notify;
pub mod reset;
pub mod routes;
pub mod status;
pub mod tasks;
pub mod verify;

pub use config::{EngineConfig, EngineWorkerConfig, TaskWorkerConfig, TransformConfig};
pub use coordinator::{StepOutcome, Transformer};
pub use engine::datafusion::DataFusionEngine;
pub use error::TransformError;
pub use routes::{TransformContext, router};
pub use status::{TransformRuns, TransformStatus};
pub use tasks::TransformTaskHandler;

pub const FUNCTION_NAME: &str = "transform";
/// Name under which the engine worker reads its config.
pub const ENGINE_WORKER_NAME: &str = "engine";

/// The transform function's HTTP surface over the configured storage, engine and control plane.
pub async fn build(config: TransformConfig) -> Result<axum::Router, String> {
    let store = config.storage.open().map_err(|error| error.to_string())?;
    let platform = weir_function_runtime::Platform::from_config(
        FUNCTION_NAME,
        config.control_plane.as_ref(),
        config.open_access,
    )
    .await?;
    let mut transformer = Transformer::new(store.clone(), config.engine.open()?);
    transformer.max_commit_attempts = config.max_commit_attempts;
    if let Some(notifier) = platform.notifier {
        transformer
            .listeners
            .push(std::sync::Arc::new(notify::NotifyListener::new(notifier)));
    }
    if let Some(tasks) = &config.tasks {
        spawn_task_worker(tasks, config.control_plane.as_ref(), transformer.clone())?;
    }
    Ok(router(std::sync::Arc::new(TransformContext {
        store,
        transformer,
        access: platform.access,
        runs: None,
    })))
}

/// Starts taking tasks from the control plane's queue over HTTP.
fn spawn_task_worker(
    tasks: &TaskWorkerConfig,
    link: Option<&weir_function_runtime::ControlPlaneLinkConfig>,
    transformer: Transformer,
) -> Result<(), String> {
    use std::time::Duration;
    use weir_function_runtime::task::{RemoteTaskSource, WorkerOptions, run_worker};
    let url = tasks
        .url
        .clone()
        .or_else(|| link.map(|link| link.url.clone()))
        .ok_or("invalid config key `tasks.url`: needed when there is no `control_plane`")?;
    if !(1..=64).contains(&tasks.concurrency) {
        return Err("invalid config key `tasks.concurrency`: must be between 1 and 64".to_string());
    }
    if !(5..=3600).contains(&tasks.lease_seconds) {
        return Err(
            "invalid config key `tasks.lease_seconds`: must be between 5 and 3600".to_string(),
        );
    }
    let source = RemoteTaskSource::new(&url, &tasks.token)?;
    let options = WorkerOptions {
        executor: tasks
            .executor
            .clone()
            .unwrap_or_else(|| format!("transform/{}", uuid::Uuid::new_v4().simple())),
        kinds: tasks::TASK_KINDS.to_vec(),
        lease: Duration::from_secs(tasks.lease_seconds),
        idle_poll: Duration::from_millis(tasks.poll_millis.max(10)),
        concurrency: tasks.concurrency,
    };
    tokio::spawn(run_worker(
        std::sync::Arc::new(source),
        std::sync::Arc::new(TransformTaskHandler { transformer }),
        options,
        std::sync::Arc::new(tokio::sync::Notify::new()),
    ));
    Ok(())
}
