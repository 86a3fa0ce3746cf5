//! What flows do, over the two stores: configuring, pausing, triggering, reacting to input
//! commits, resolving finished tasks by the retry and stop policies, and the leader's
//! dispatch of due runs.

use std::sync::Arc;
use std::time::Duration;

use weir_tasks::{LeasedTask, TaskKind, TaskOutcome};

use crate::error::{FieldError, FlowError, FlowResult};
use crate::model::{
    CheckedConfig, FlowConfig, FlowKey, FlowType, NewDataRule, StopPolicy, Trigger, retry_delay,
};
use crate::repository::{FlowRepository, MergePlan, Resolution, RunFilter, TaskRepository};
use crate::run::{Cause, FlowBinding, FlowRun, RunOutcome, RunStatus, WaitReason};

/// What a flow is bound to, which decides the flow types it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Root,
    Derivative,
    System,
}

/// Flow types each target takes, and the message when one does not fit.
pub fn check_fits(flow_type: FlowType, target: Target) -> Result<(), FieldError> {
    let fits = match flow_type {
        FlowType::Transform => target == Target::Derivative,
        FlowType::Ingest | FlowType::Compaction => target == Target::Root,
        FlowType::Reset | FlowType::Webhook => target != Target::System,
        FlowType::Gc => target == Target::System,
    };
    if fits {
        return Ok(());
    }
    let what = match target {
        Target::Root => "a root dataset",
        Target::Derivative => "a derivative dataset",
        Target::System => "the system (no dataset)",
    };
    Err(FieldError::new(
        "flowType",
        format!("a {} flow does not fit {what}", flow_type.as_str()),
    ))
}

/// Whether a binding from `FlowService::effective` has a row in the store.
fn is_stored(binding: &FlowBinding) -> bool {
    binding.updated_at != 0
}

pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub struct FlowService {
    pub flows: Arc<dyn FlowRepository>,
    pub tasks: Arc<dyn TaskRepository>,
    /// Notified when runs may have become due (the scheduler wakes at once).
    pub scheduler_wake: Arc<tokio::sync::Notify>,
    /// Notified when tasks were queued (in-process workers wake at once).
    pub worker_wake: Arc<tokio::sync::Notify>,
    /// The system GC flow's config unless one is stored.
    pub default_gc: FlowConfig,
    /// Announce queued tasks to executors deployed apart (NATS, SQS), when configured.
    pub doorbells: Vec<Arc<dyn TaskDoorbell>>,
}

/// Tells executors outside this process that tasks of a kind were queued.
#[async_trait::async_trait]
pub trait TaskDoorbell: Send + Sync {
    async fn ring(&self, kind: FlowType) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
}

/// A flow as the API shows it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowView {
    #[serde(flatten)]
    pub key: FlowKey,
    #[serde(flatten)]
    pub binding: FlowBinding,
}

impl FlowService {
    pub fn new(flows: Arc<dyn FlowRepository>, tasks: Arc<dyn TaskRepository>) -> Self {
        Self {
            flows,
            tasks,
            scheduler_wake: Arc::new(tokio::sync::Notify::new()),
            worker_wake: Arc::new(tokio::sync::Notify::new()),
            default_gc: FlowConfig::default_gc(Duration::from_secs(24 * 3600)),
            doorbells: Vec::new(),
        }
    }

    /// The default config of a flow nobody configured, if it has one.
    pub fn default_config(&self, key: &FlowKey, target: Target) -> Option<FlowConfig> {
        match (key.flow_type, target) {
            (FlowType::Transform, Target::Derivative) => Some(FlowConfig::default_transform()),
            (FlowType::Gc, Target::System) => Some(self.default_gc.clone()),
            _ => None,
        }
    }

    /// The stored binding, else the default one (not stored until it runs; its `updated_at` is
    /// 0, see `is_stored`).
    pub async fn effective(
        &self,
        key: &FlowKey,
        target: Target,
    ) -> FlowResult<Option<FlowBinding>> {
        if let Some(binding) = self.flows.binding(key).await? {
            return Ok(Some(binding));
        }
        Ok(self.default_config(key, target).map(|config| FlowBinding {
            config,
            configured: false,
            paused: false,
            stop_reason: None,
            consecutive_failures: 0,
            updated_at: 0,
        }))
    }

    async fn checked(&self, key: &FlowKey, binding: &FlowBinding) -> FlowResult<CheckedConfig> {
        Ok(binding.config.clone().check(key.flow_type)?)
    }

    /// Stores `config` after checking it; a schedule gets its next run.
    pub async fn configure(
        &self,
        key: &FlowKey,
        target: Target,
        config: FlowConfig,
    ) -> FlowResult<FlowView> {
        check_fits(key.flow_type, target)?;
        let checked = config.check(key.flow_type)?;
        let now = now_millis();
        self.flows.put_config(key, &checked.config, now).await?;
        let binding = self
            .flows
            .binding(key)
            .await?
            .ok_or_else(|| FlowError::NotFound("flow".to_string()))?;
        if !binding.paused {
            self.schedule_next(key, &checked, now).await?;
        }
        Ok(FlowView {
            key: key.clone(),
            binding,
        })
    }

    /// Queues the next scheduled run of a schedule flow.
    async fn schedule_next(
        &self,
        key: &FlowKey,
        checked: &CheckedConfig,
        now: i64,
    ) -> FlowResult<()> {
        let Some(schedule) = &checked.schedule else {
            return Ok(());
        };
        let due_at = schedule.next_after(now);
        if due_at == i64::MAX {
            return Ok(());
        }
        let plan = MergePlan {
            cause: Cause::Schedule { at: due_at },
            due_at,
            wait_reason: WaitReason::Schedule,
            records: 0,
            due_at_records: None,
        };
        self.flows.merge_cause(key, &plan, now).await?;
        self.scheduler_wake.notify_one();
        Ok(())
    }

    pub async fn pause(&self, key: &FlowKey, target: Target) -> FlowResult<()> {
        self.materialize(key, target).await?;
        self.flows.set_paused(key, true, None, now_millis()).await
    }

    pub async fn resume(&self, key: &FlowKey, target: Target) -> FlowResult<()> {
        let binding = self.materialize(key, target).await?;
        let now = now_millis();
        self.flows.set_paused(key, false, None, now).await?;
        let checked = self.checked(key, &binding).await?;
        self.schedule_next(key, &checked, now).await
    }

    /// Stores the effective binding so that pause state and failures have a row.
    async fn materialize(&self, key: &FlowKey, target: Target) -> FlowResult<FlowBinding> {
        check_fits(key.flow_type, target)?;
        let binding = self.effective(key, target).await?.ok_or_else(|| {
            FlowError::NotFound(format!(
                "no {} flow is configured for this dataset",
                key.flow_type.as_str()
            ))
        })?;
        if !is_stored(&binding) {
            self.flows
                .ensure_binding(key, &binding.config, now_millis())
                .await?;
        }
        Ok(binding)
    }

    /// Runs the flow now (merging into its pending run), even when paused or manual-only.
    pub async fn trigger_manual(
        &self,
        key: &FlowKey,
        target: Target,
        account_id: &str,
    ) -> FlowResult<FlowRun> {
        check_fits(key.flow_type, target)?;
        let binding = self.effective(key, target).await?;
        let config = binding.map(|binding| binding.config).unwrap_or(FlowConfig {
            trigger: Trigger::Manual,
            retry: None,
            stop: StopPolicy::Never,
            compaction: None,
        });
        let now = now_millis();
        self.flows.ensure_binding(key, &config, now).await?;
        let plan = MergePlan {
            cause: Cause::Manual {
                account_id: account_id.to_string(),
                at: now,
            },
            due_at: now,
            wait_reason: WaitReason::Executor,
            records: 0,
            due_at_records: None,
        };
        let run = self.flows.merge_cause(key, &plan, now).await?;
        self.scheduler_wake.notify_one();
        Ok(run)
    }

    /// An input of `derivative` committed a block of `records` new records.
    pub async fn input_committed(
        &self,
        derivative: &str,
        input: &str,
        block_hash: &str,
        records: u64,
    ) -> FlowResult<Option<FlowRun>> {
        let key = FlowKey::new(derivative, FlowType::Transform);
        let Some(binding) = self.effective(&key, Target::Derivative).await? else {
            return Ok(None);
        };
        if binding.paused {
            return Ok(None);
        }
        let Trigger::Reactive { for_new_data, .. } = &binding.config.trigger else {
            return Ok(None);
        };
        let checked = self.checked(&key, &binding).await?;
        let now = now_millis();
        let cause = Cause::InputCommitted {
            dataset_id: input.to_string(),
            block_hash: block_hash.to_string(),
            records,
            at: now,
        };
        let plan = match (for_new_data, checked.buffering) {
            (NewDataRule::Buffering { .. }, Some((min_records, interval))) => MergePlan {
                cause,
                due_at: now + interval.as_millis() as i64,
                wait_reason: WaitReason::Batching,
                records,
                due_at_records: Some((min_records, now)),
            },
            _ => MergePlan {
                cause,
                due_at: now,
                wait_reason: WaitReason::Executor,
                records,
                due_at_records: None,
            },
        };
        if !is_stored(&binding) {
            self.flows
                .ensure_binding(&key, &binding.config, now)
                .await?;
        }
        let run = self.flows.merge_cause(&key, &plan, now).await?;
        self.scheduler_wake.notify_one();
        Ok(Some(run))
    }

    pub async fn cancel(&self, run_id: i64, account_id: &str) -> FlowResult<FlowRun> {
        self.flows
            .cancel_run(run_id, &format!("cancelled by {account_id}"), now_millis())
            .await
    }

    /// Leases a task to an executor.
    pub async fn lease(
        &self,
        kinds: &[TaskKind],
        executor: &str,
        lease: Duration,
    ) -> FlowResult<Option<LeasedTask>> {
        self.tasks
            .lease(kinds, executor, now_millis(), lease.as_millis() as i64)
            .await
    }

    /// Queued and leased tasks of `kinds` (all when empty).
    pub async fn queue_depth(&self, kinds: &[TaskKind]) -> FlowResult<(u64, u64)> {
        self.tasks.queue_depth(kinds).await
    }

    pub async fn heartbeat(
        &self,
        task_id: i64,
        executor: &str,
        lease: Duration,
    ) -> FlowResult<i64> {
        self.tasks
            .heartbeat(task_id, executor, now_millis(), lease.as_millis() as i64)
            .await
    }

    /// Resolves the run of a finished task: success; a retry when the error is retryable and
    /// attempts remain; else failure, pausing the flow when its stop policy says so. A schedule
    /// flow then gets its next run.
    pub async fn finish(
        &self,
        task_id: i64,
        executor: &str,
        outcome: TaskOutcome,
    ) -> FlowResult<FlowRun> {
        let held = self.tasks.held_task(task_id, executor).await?;
        let key = FlowKey::new(held.dataset_id.clone(), held.kind);
        let binding = self.flows.binding(&key).await?;
        let checked = match &binding {
            Some(binding) => binding.config.clone().check(key.flow_type).ok(),
            None => None,
        };
        let now = now_millis();
        let resolution = match outcome {
            TaskOutcome::Success { changed, details } => {
                Resolution::Succeeded(RunOutcome::Success { changed, details })
            }
            TaskOutcome::Failed {
                error_kind,
                message,
                retryable,
            } => {
                let error = RunOutcome::Failed {
                    error_kind,
                    message: message.clone(),
                    retryable,
                };
                let retry = checked.as_ref().and_then(|checked| checked.retry);
                match retry {
                    Some((max_attempts, min_delay, backoff))
                        if retryable && held.attempt < max_attempts =>
                    {
                        let delay = retry_delay(min_delay, backoff, held.attempt);
                        Resolution::Retry {
                            due_at: now + delay.as_millis() as i64,
                            error,
                        }
                    }
                    _ => {
                        let failures = binding
                            .as_ref()
                            .map(|binding| binding.consecutive_failures + 1)
                            .unwrap_or(1);
                        let stop = match checked.as_ref().map(|checked| &checked.config.stop) {
                            Some(StopPolicy::AfterConsecutiveFailures { failures: limit })
                                if failures >= *limit =>
                            {
                                Some(format!(
                                    "stopped after {failures} failed runs in a row; the last: {message}"
                                ))
                            }
                            _ => None,
                        };
                        Resolution::Failed {
                            outcome: error,
                            stop,
                        }
                    }
                }
            }
        };
        let run = self
            .tasks
            .finish(task_id, executor, &resolution, now)
            .await?;
        if run.status == RunStatus::Finished
            && let Some(checked) = &checked
            && let Some(binding) = self.flows.binding(&key).await?
            && !binding.paused
        {
            self.schedule_next(&key, checked, now).await?;
        }
        self.scheduler_wake.notify_one();
        Ok(run)
    }

    /// On the leader: re-queues tasks of dead executors (when `requeue_expired`), then queues a
    /// task for every due run.
    /// Returns how many tasks were queued.
    pub async fn dispatch_due(&self, limit: i64, requeue_expired: bool) -> FlowResult<usize> {
        let now = now_millis();
        let requeued = match requeue_expired {
            true => self.tasks.requeue_expired(now).await?,
            false => 0,
        };
        let mut queued = 0;
        let mut kinds = Vec::new();
        for run in self.flows.due_runs(now, limit).await? {
            let params = match self.flows.binding(&run.key).await? {
                Some(binding) => binding.config.task_params(),
                None => FlowConfig::default_transform().task_params(),
            };
            if self
                .flows
                .dispatch(run.run_id, &params, now)
                .await?
                .is_some()
            {
                queued += 1;
                if !kinds.contains(&run.key.flow_type) {
                    kinds.push(run.key.flow_type);
                }
            }
        }
        if requeued > 0 {
            kinds = FlowType::ALL.to_vec();
        }
        // Announced beside dispatch: a slow announcement (an SQS round trip) must not hold up
        // the next due runs. The tasks are queued already; executors also poll.
        if !kinds.is_empty() && !self.doorbells.is_empty() {
            let doorbells = self.doorbells.clone();
            tokio::spawn(async move {
                for doorbell in &doorbells {
                    for kind in kinds.iter().copied() {
                        if let Err(error) = doorbell.ring(kind).await {
                            tracing::warn!(%error, kind = kind.as_str(), "cannot announce queued tasks");
                        }
                    }
                }
            });
        }
        if queued > 0 || requeued > 0 {
            // Wakes the idle workers, and keeps a wake for one that is between two polls.
            self.worker_wake.notify_waiters();
            self.worker_wake.notify_one();
        }
        Ok(queued)
    }

    /// On a new leader: every stored schedule flow has its next run, and the system GC flow
    /// exists.
    pub async fn ensure_schedules(&self) -> FlowResult<()> {
        let now = now_millis();
        let gc = FlowKey::system(FlowType::Gc);
        self.flows
            .ensure_binding(&gc, &self.default_gc, now)
            .await?;
        for (key, binding) in self.flows.bindings(None).await? {
            if binding.paused || !matches!(binding.config.trigger, Trigger::Schedule { .. }) {
                continue;
            }
            let filter = RunFilter {
                dataset_id: Some(key.dataset_id.clone()),
                flow_type: Some(key.flow_type),
                active_only: true,
            };
            if self.flows.runs(&filter, None, 1).await?.is_empty()
                && let Ok(checked) = binding.config.clone().check(key.flow_type)
            {
                self.schedule_next(&key, &checked, now).await?;
            }
        }
        Ok(())
    }
}

/// The leader's loop: dispatches due runs, then sleeps until the next run is due, it is woken
/// (a cause arrived, a task finished), or `tick` passed (expired leases, other replicas' API
/// calls). `is_leader` is asked on every round, so a replica that loses the lease stops at once.
pub async fn run_scheduler(
    service: Arc<FlowService>,
    is_leader: impl Fn() -> bool + Send + 'static,
    tick: Duration,
) {
    let mut was_leader = false;
    let mut last_requeue: Option<std::time::Instant> = None;
    loop {
        let leader = is_leader();
        if leader && !was_leader {
            // Restoring schedules reads every binding: it runs beside dispatch, not before it.
            was_leader = true;
            let restoring = service.clone();
            tokio::spawn(async move {
                for attempt in 0..10u32 {
                    match restoring.ensure_schedules().await {
                        Ok(()) => return,
                        Err(error) => {
                            tracing::warn!(%error, attempt, "cannot restore flow schedules")
                        }
                    }
                    tokio::time::sleep(Duration::from_secs(1 << attempt.min(5))).await;
                }
            });
        }
        if !leader {
            was_leader = false;
        }
        if leader {
            // Expired leases are looked for at most every 100 ms, not on every wake.
            let requeue = last_requeue.is_none_or(|at| at.elapsed() >= Duration::from_millis(100));
            if requeue {
                last_requeue = Some(std::time::Instant::now());
            }
            loop {
                match service.dispatch_due(500, requeue).await {
                    Ok(500..) => continue,
                    Ok(_) => break,
                    Err(error) => {
                        tracing::warn!(%error, "flow dispatch failed");
                        break;
                    }
                }
            }
        }
        let mut wait = tick;
        if leader {
            match service.flows.next_due_at().await {
                Ok(Some(due)) => {
                    let until = (due - now_millis()).max(0) as u64;
                    wait = wait.min(Duration::from_millis(until));
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "cannot read the next due run"),
            }
        }
        let _ = tokio::time::timeout(wait, service.scheduler_wake.notified()).await;
    }
}
