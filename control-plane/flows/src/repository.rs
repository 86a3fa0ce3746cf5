//! The two stores of flows: `FlowRepository` (configs, runs) and `TaskRepository` (the task
//! queue with priorities and leases). Every implementation runs the contract suite in
//! `tests/repository_contract.rs`. Each method is atomic: replicas serving the API and the
//! leader's scheduler call them concurrently.

use async_trait::async_trait;
use weir_tasks::{LeasedTask, TaskKind};

use crate::error::FlowResult;
use crate::model::{FlowConfig, FlowKey};
use crate::run::{Cause, FlowBinding, FlowRun, RunOutcome, WaitReason};

/// How a cause joins the flow's pending run, or starts one.
#[derive(Debug, Clone)]
pub struct MergePlan {
    pub cause: Cause,
    /// Due time of a new run; an existing waiting run becomes due at the earlier of both.
    pub due_at: i64,
    pub wait_reason: WaitReason,
    /// New input records the cause brings (buffering triggers count them).
    pub records: u64,
    /// A buffering trigger's threshold: once the pending run awaited this many records, it is
    /// due at `now`.
    pub due_at_records: Option<(u64, i64)>,
}

/// How a finished attempt resolves its run.
#[derive(Debug, Clone)]
pub enum Resolution {
    Succeeded(RunOutcome),
    /// Retry at `due_at`.
    Retry {
        due_at: i64,
        error: RunOutcome,
    },
    /// Failed for good; `stop` pauses the flow with that reason (its stop policy).
    Failed {
        outcome: RunOutcome,
        stop: Option<String>,
    },
}

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub dataset_id: Option<String>,
    pub flow_type: Option<TaskKind>,
    /// Only runs not finished.
    pub active_only: bool,
}

#[async_trait]
pub trait FlowRepository: Send + Sync {
    /// Stores a configured flow (replacing its config; pause state and failures stay).
    async fn put_config(&self, key: &FlowKey, config: &FlowConfig, now: i64) -> FlowResult<()>;
    /// Records a flow running on `config` as its default, unless it has a row already.
    async fn ensure_binding(&self, key: &FlowKey, config: &FlowConfig, now: i64) -> FlowResult<()>;
    /// Forgets the configuration: the flow is back to its default (or none).
    async fn delete_config(&self, key: &FlowKey) -> FlowResult<bool>;
    async fn binding(&self, key: &FlowKey) -> FlowResult<Option<FlowBinding>>;
    /// Every stored flow of `dataset_id` (all flows when `None`).
    async fn bindings(&self, dataset_id: Option<&str>) -> FlowResult<Vec<(FlowKey, FlowBinding)>>;
    /// Pauses (with an optional reason) or resumes; pausing aborts the waiting runs.
    async fn set_paused(
        &self,
        key: &FlowKey,
        paused: bool,
        reason: Option<&str>,
        now: i64,
    ) -> FlowResult<()>;

    /// Adds the cause to the flow's pending run (waiting, or queued and not started), or starts
    /// a waiting run with it. Returns the run.
    async fn merge_cause(&self, key: &FlowKey, plan: &MergePlan, now: i64) -> FlowResult<FlowRun>;
    /// When the next waiting or retrying run becomes due, if any has a due time.
    async fn next_due_at(&self) -> FlowResult<Option<i64>>;
    /// Waiting and retrying runs due at `now`, highest priority first.
    async fn due_runs(&self, now: i64, limit: i64) -> FlowResult<Vec<FlowRun>>;
    /// Queues a task for a due run, unless another run of its flow is active (the run then
    /// waits for it, throttled). Returns the task id when queued.
    async fn dispatch(
        &self,
        run_id: i64,
        params: &serde_json::Value,
        now: i64,
    ) -> FlowResult<Option<i64>>;
    async fn run(&self, run_id: i64) -> FlowResult<Option<FlowRun>>;
    /// Runs newest first, strictly before `before_run_id` when given.
    async fn runs(
        &self,
        filter: &RunFilter,
        before_run_id: Option<i64>,
        limit: i64,
    ) -> FlowResult<Vec<FlowRun>>;
    /// Aborts a run not finished; its task, if any, is withdrawn from its executor.
    async fn cancel_run(&self, run_id: i64, reason: &str, now: i64) -> FlowResult<FlowRun>;
}

#[async_trait]
pub trait TaskRepository: Send + Sync {
    /// Leases the queued task of one of `kinds` with the highest priority (oldest first within
    /// it) to `executor` until `now + ttl_millis`, and marks its run running.
    async fn lease(
        &self,
        kinds: &[TaskKind],
        executor: &str,
        now: i64,
        ttl_millis: i64,
    ) -> FlowResult<Option<LeasedTask>>;
    /// Extends a lease; `LeaseLost` unless `executor` holds it.
    async fn heartbeat(
        &self,
        task_id: i64,
        executor: &str,
        now: i64,
        ttl_millis: i64,
    ) -> FlowResult<i64>;
    /// The task while leased to `executor`; `LeaseLost` otherwise.
    async fn held_task(&self, task_id: i64, executor: &str) -> FlowResult<LeasedTask>;
    /// Ends a leased task and resolves its run, in one transaction; `LeaseLost` unless
    /// `executor` still holds it. Runs of the same flow throttled behind it become due.
    async fn finish(
        &self,
        task_id: i64,
        executor: &str,
        resolution: &Resolution,
        now: i64,
    ) -> FlowResult<FlowRun>;
    /// Queues again the tasks whose lease expired (their executor died). Returns how many.
    async fn requeue_expired(&self, now: i64) -> FlowResult<u64>;
    /// Queues again the tasks `executor` held (it restarted). Returns how many.
    async fn requeue_held_by(&self, executor: &str) -> FlowResult<u64>;
    /// Queued and leased task counts of `kinds` (all kinds when empty): what the engine
    /// provisioner scales on.
    async fn queue_depth(&self, kinds: &[TaskKind]) -> FlowResult<(u64, u64)>;
}
