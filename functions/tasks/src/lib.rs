//! weir-tasks: the protocol between the control plane's task queue and the executors that take
//! tasks from it: the wire shape of a leased task and of its outcome, where tasks come from
//! (`TaskSource`: the queue in-process, or the control plane's HTTP API for a function deployed
//! apart, in weir-function-runtime), and the worker loop that takes, runs and reports them,
//! renewing the lease while a task runs.
//!
//! Shared by weir-flows (the queue) and the functions (executors); it must not depend on either,
//! nor on HTTP, database or cloud SDK crates.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a task does; the same names as flow types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TaskKind {
    /// Polls a root dataset's source.
    Ingest,
    /// Runs a step of a derivative.
    Transform,
    /// Merges a dataset's small slices.
    Compaction,
    /// Resets a dataset (a derivative recovering from a breaking change of an input).
    Reset,
    /// Sweeps storage of objects no chain refers to.
    Gc,
    /// Delivers a dataset's pending webhook calls.
    Webhook,
}

impl TaskKind {
    pub const ALL: [TaskKind; 6] = [
        TaskKind::Ingest,
        TaskKind::Transform,
        TaskKind::Compaction,
        TaskKind::Reset,
        TaskKind::Gc,
        TaskKind::Webhook,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Ingest => "ingest",
            TaskKind::Transform => "transform",
            TaskKind::Compaction => "compaction",
            TaskKind::Reset => "reset",
            TaskKind::Gc => "gc",
            TaskKind::Webhook => "webhook",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// Where queued tasks are announced on NATS JetStream, so that executors deployed apart wake at
/// once instead of polling: one work-queue stream per bus prefix, one subject per task kind. A
/// message only says "a task of this kind was queued": the executor then leases a task through
/// its `TaskSource` (the lease stays the queue's, and a lost message only delays a task until
/// the executor's next poll).
pub mod doorbell {
    use super::TaskKind;

    /// `<PREFIX>_TASKS`, the prefix upper-cased with other characters as `_`.
    pub fn stream_name(prefix: &str) -> String {
        let prefix: String = prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        format!("{prefix}_TASKS")
    }

    /// `<prefix>.tasks.<kind>`.
    pub fn subject(prefix: &str, kind: TaskKind) -> String {
        format!("{prefix}.tasks.{}", kind.as_str())
    }

    /// `<prefix>.tasks.>`: the announcements of every kind (the stream's subjects).
    pub fn all_subjects(prefix: &str) -> String {
        format!("{prefix}.tasks.>")
    }

    /// Announcements older than this are dropped (the executors' polls find those tasks).
    pub const MAX_AGE: std::time::Duration = std::time::Duration::from_secs(3600);
    /// Announcements kept per kind while no executor listens.
    pub const MAX_PER_KIND: i64 = 100;
}

/// A task an executor holds until `lease_until_millis` (renewed by heartbeats).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeasedTask {
    pub task_id: i64,
    pub run_id: i64,
    pub kind: TaskKind,
    /// `did:odf:...`; empty for system tasks (GC).
    pub dataset_id: String,
    /// 1 for the first attempt of the run.
    pub attempt: u32,
    pub lease_until_millis: i64,
    /// Kind-specific parameters (e.g. what a reset recovers from).
    #[serde(default)]
    pub params: serde_json::Value,
}

/// How a task ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum TaskOutcome {
    /// `changed`: whether a block was committed; `details`: what changed, kind-specific.
    #[serde(rename_all = "camelCase")]
    Success {
        changed: bool,
        #[serde(default)]
        details: serde_json::Value,
    },
    /// `retryable`: whether running again without any change may succeed.
    #[serde(rename_all = "camelCase")]
    Failed {
        error_kind: String,
        message: String,
        retryable: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum TaskSourceError {
    /// The queue cannot be reached now; the worker tries again.
    #[error("task queue unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The lease was lost (expired and taken by another executor, or the run was cancelled).
    #[error("the lease on task {0} is lost")]
    LeaseLost(i64),
}

/// Where an executor takes tasks from.
#[async_trait::async_trait]
pub trait TaskSource: Send + Sync {
    /// The next queued task of one of `kinds`, leased to `executor` for `lease`.
    async fn lease(
        &self,
        kinds: &[TaskKind],
        executor: &str,
        lease: Duration,
    ) -> Result<Option<LeasedTask>, TaskSourceError>;
    /// Extends the lease; `LeaseLost` when the task is no longer this executor's.
    async fn heartbeat(
        &self,
        task: &LeasedTask,
        executor: &str,
        lease: Duration,
    ) -> Result<(), TaskSourceError>;
    /// Reports the outcome; `LeaseLost` when another executor took the task meanwhile (its
    /// outcome then counts, not this one).
    async fn finish(
        &self,
        task: &LeasedTask,
        executor: &str,
        outcome: TaskOutcome,
    ) -> Result<(), TaskSourceError>;
}

/// Runs one leased task.
#[async_trait::async_trait]
pub trait TaskHandler: Send + Sync {
    async fn run(&self, task: &LeasedTask) -> TaskOutcome;
}

/// How a worker takes tasks.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub executor: String,
    pub kinds: Vec<TaskKind>,
    pub lease: Duration,
    /// Pause between polls of an empty queue (`wake` cuts it short).
    pub idle_poll: Duration,
    /// Tasks run at once.
    pub concurrency: usize,
}

/// Takes tasks and runs them until the process ends. `wake` is notified when tasks were
/// queued, so an in-process worker does not wait for its next poll.
pub async fn run_worker(
    source: Arc<dyn TaskSource>,
    handler: Arc<dyn TaskHandler>,
    options: WorkerOptions,
    wake: Arc<tokio::sync::Notify>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(options.concurrency.max(1)));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        match source
            .lease(&options.kinds, &options.executor, options.lease)
            .await
        {
            Ok(Some(task)) => {
                let source = source.clone();
                let handler = handler.clone();
                let options = options.clone();
                tokio::spawn(async move {
                    run_one(source, handler, &options, task).await;
                    drop(permit);
                });
            }
            Ok(None) => {
                drop(permit);
                let _ = tokio::time::timeout(options.idle_poll, wake.notified()).await;
            }
            Err(error) => {
                drop(permit);
                tracing::warn!(%error, "cannot take a task");
                tokio::time::sleep(options.idle_poll.max(Duration::from_millis(500))).await;
            }
        }
    }
}

/// Runs one leased task to its end: renews the lease every third of it, then reports the
/// outcome (retrying the report a few times; past that the lease expires and the task runs again).
pub async fn run_one(
    source: Arc<dyn TaskSource>,
    handler: Arc<dyn TaskHandler>,
    options: &WorkerOptions,
    task: LeasedTask,
) {
    let renew_every = options.lease / 3;
    let work = handler.run(&task);
    tokio::pin!(work);
    let outcome = loop {
        tokio::select! {
            outcome = &mut work => break outcome,
            _ = tokio::time::sleep(renew_every) => {
                match source.heartbeat(&task, &options.executor, options.lease).await {
                    Ok(()) => {}
                    Err(TaskSourceError::LeaseLost(_)) => {
                        // Another executor has the task (or the run was cancelled): our step
                        // may still commit, which the other's step then finds already done.
                        tracing::warn!(task_id = task.task_id, "lease lost while running");
                    }
                    Err(error) => tracing::warn!(%error, "cannot renew a task lease"),
                }
            }
        }
    };
    for attempt in 0..5u32 {
        match source
            .finish(&task, &options.executor, outcome.clone())
            .await
        {
            Ok(()) => return,
            Err(TaskSourceError::LeaseLost(_)) => {
                tracing::warn!(
                    task_id = task.task_id,
                    "task finished after its lease was lost"
                );
                return;
            }
            Err(error) => {
                tracing::warn!(%error, attempt, "cannot report a task's outcome");
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
        }
    }
    // The lease expires and the task runs again; steps are idempotent.
}
