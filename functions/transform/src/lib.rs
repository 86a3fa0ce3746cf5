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
    Ok(build_function(config).await?.router)
}

/// The function as its binary runs it: the routes, and with `tasks`, a task executor (a
/// background worker, or in Lambda the handler of task announcements).
pub async fn build_function(
    config: TransformConfig,
) -> Result<weir_function_runtime::Function, String> {
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
        // An executor reports with its service token: an anonymous report about a private
        // dataset would be refused, and wait for the repair loop.
        let caller = match &config.tasks {
            Some(tasks) => weir_function_runtime::Caller::service(&tasks.token),
            None => weir_function_runtime::Caller::anonymous(),
        };
        transformer
            .listeners
            .push(std::sync::Arc::new(notify::NotifyListener {
                notifier,
                caller,
            }));
    }
    let mut messages = None;
    if let Some(tasks) = &config.tasks {
        messages = weir_function_runtime::task::spawn_remote_worker(
            tasks,
            config.control_plane.as_ref(),
            FUNCTION_NAME,
            &tasks::TASK_KINDS,
            std::sync::Arc::new(TransformTaskHandler {
                transformer: transformer.clone(),
            }),
        )?;
    }
    let router = router(std::sync::Arc::new(TransformContext {
        store,
        transformer,
        access: platform.access,
        runs: None,
    }));
    Ok(weir_function_runtime::Function { router, messages })
}
