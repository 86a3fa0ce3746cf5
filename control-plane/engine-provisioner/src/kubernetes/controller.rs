//! The `EnginePool` controller (kube-rs `Controller`: reconcile + error_policy).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::utils::Predicate;
use kube::runtime::{PredicateConfig, WatchStreamExt, predicates, reflector, watcher};
use kube::{Resource, ResourceExt};

use super::config::ProvisionerConfig;
use super::crd::{EnginePool, EnginePoolSpec, EnginePoolStatus, PoolCondition};
use super::workers::{DeploymentPool, deployment_name};
use super::{FINALIZER, POOL_LABEL};
use crate::demand::DemandSource;
use crate::error::ProvisionError;
use crate::pool::autoscale;
use crate::scale::{Decision, Memory, PoolPolicy, Reason};

pub struct Context {
    pub client: kube::Client,
    pub config: ProvisionerConfig,
    pub demand: Arc<dyn DemandSource>,
}

/// The policy of a pool, or why its spec cannot be one (no CEL on 1.20: checked here).
pub fn policy_of(spec: &EnginePoolSpec, config: &ProvisionerConfig) -> Result<PoolPolicy, String> {
    if spec.min_replicas < 0 || spec.max_replicas < 0 {
        return Err("minReplicas and maxReplicas must not be negative".to_string());
    }
    if spec.max_replicas < spec.min_replicas {
        return Err(format!(
            "maxReplicas ({}) is below minReplicas ({})",
            spec.max_replicas, spec.min_replicas
        ));
    }
    if !(1..=64).contains(&spec.concurrency) {
        return Err(format!(
            "concurrency must be 1 to 64, not {}",
            spec.concurrency
        ));
    }
    if spec.idle_seconds < 0 {
        return Err("idleSeconds must not be negative".to_string());
    }
    if spec.task_kinds.is_empty() {
        return Err("taskKinds must name at least one kind of task".to_string());
    }
    if spec.engine != "datafusion" {
        return Err(format!(
            "engine `{}` is not one this provisioner runs (datafusion)",
            spec.engine
        ));
    }
    Ok(PoolPolicy {
        min_replicas: spec.min_replicas as u32,
        max_replicas: spec.max_replicas as u32,
        concurrency: spec.concurrency as u32,
        idle: Duration::from_secs(spec.idle_seconds as u64),
        initial_backoff: Duration::from_secs(config.initial_backoff_seconds),
        max_backoff: Duration::from_secs(config.max_backoff_seconds.max(1)),
    })
}

fn rfc3339(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn millis(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.timestamp_millis())
}

/// What the policy remembered, from the pool's status.
pub fn memory_of(status: Option<&EnginePoolStatus>) -> Memory {
    let Some(status) = status else {
        return Memory::default();
    };
    Memory {
        last_busy_millis: status.last_busy_time.as_deref().and_then(millis),
        backoff_until_millis: status.backoff_until.as_deref().and_then(millis),
        backoff_millis: (status.backoff_seconds.max(0) as u64).saturating_mul(1000),
    }
}

/// Sets a condition, keeping its transition time when its status did not change.
fn set_condition(
    conditions: &mut Vec<PoolCondition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    now: &str,
) {
    let status = if status { "True" } else { "False" };
    match conditions
        .iter_mut()
        .find(|condition| condition.type_ == type_)
    {
        Some(condition) => {
            if condition.status != status {
                condition.last_transition_time = now.to_string();
            }
            condition.status = status.to_string();
            condition.reason = reason.to_string();
            condition.message = message;
        }
        None => conditions.push(PoolCondition {
            type_: type_.to_string(),
            status: status.to_string(),
            reason: reason.to_string(),
            message,
            last_transition_time: now.to_string(),
        }),
    }
}

async fn write_status(
    pool: &EnginePool,
    client: &kube::Client,
    status: &EnginePoolStatus,
) -> Result<(), ProvisionError> {
    let api: Api<EnginePool> =
        Api::namespaced(client.clone(), &pool.namespace().unwrap_or_default());
    api.patch_status(
        &pool.name_any(),
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "status": status })),
    )
    .await?;
    Ok(())
}

async fn apply(pool: Arc<EnginePool>, ctx: &Context) -> Result<Action, ProvisionError> {
    let now = chrono::Utc::now().timestamp_millis();
    let now_text = rfc3339(now);
    let mut status = pool.status.clone().unwrap_or_default();
    status.observed_generation = pool.meta().generation;
    let policy = match policy_of(&pool.spec, &ctx.config) {
        Ok(policy) => policy,
        Err(message) => {
            tracing::warn!(pool = %pool.name_any(), %message, "invalid engine pool");
            set_condition(
                &mut status.conditions,
                "Ready",
                false,
                "InvalidSpec",
                message,
                &now_text,
            );
            write_status(&pool, &ctx.client, &status).await?;
            return Ok(Action::await_change());
        }
    };
    let workers = DeploymentPool {
        pool: (*pool).clone(),
        template: ctx.config.worker.clone(),
        client: ctx.client.clone(),
    };
    let memory = memory_of(pool.status.as_ref());
    let round = autoscale(
        &workers,
        ctx.demand.as_ref(),
        &pool.spec.task_kinds,
        &policy,
        memory,
        now,
    )
    .await?;
    let (decision, observed, demand) = (round.decision, round.observed, round.demand);
    if decision.replicas != observed.replicas {
        tracing::info!(
            pool = %pool.name_any(), from = observed.replicas, to = decision.replicas,
            queued = demand.queued, leased = demand.leased, reason = decision.reason.as_str(),
            "scaled engine workers"
        );
    }
    let Decision {
        replicas,
        wanted,
        reason,
        memory,
    } = decision;
    status.replicas = replicas as i32;
    status.ready_replicas = observed.ready as i32;
    status.wanted_replicas = wanted.min(i32::MAX as u32) as i32;
    status.queued_tasks = demand.queued.min(i64::MAX as u64) as i64;
    status.leased_tasks = demand.leased.min(i64::MAX as u64) as i64;
    status.capacity = round
        .capacity
        .map(|capacity| capacity.min(i32::MAX as u32) as i32);
    status.last_busy_time = memory.last_busy_millis.map(rfc3339);
    status.backoff_until = memory.backoff_until_millis.map(rfc3339);
    status.backoff_seconds = (memory.backoff_millis / 1000) as i64;
    let ready = observed.ready >= replicas.min(observed.replicas) && observed.replicas == replicas;
    set_condition(
        &mut status.conditions,
        "Ready",
        ready,
        if ready {
            "WorkersReady"
        } else {
            "WorkersStarting"
        },
        format!("{} of {} workers ready", observed.ready, replicas),
        &now_text,
    );
    set_condition(
        &mut status.conditions,
        "Scaling",
        !matches!(reason, Reason::Steady),
        reason.as_str(),
        format!(
            "{} queued and {} running tasks want {wanted} workers; {replicas} asked",
            demand.queued, demand.leased
        ),
        &now_text,
    );
    set_condition(
        &mut status.conditions,
        "Unschedulable",
        observed.unschedulable > 0,
        if observed.unschedulable > 0 {
            "PodsUnschedulable"
        } else {
            "AllScheduled"
        },
        format!("{} workers cannot be scheduled", observed.unschedulable),
        &now_text,
    );
    write_status(&pool, &ctx.client, &status).await?;
    Ok(Action::requeue(Duration::from_secs(
        ctx.config.poll_seconds.max(1),
    )))
}

/// A deleted pool: its Deployment goes (and with it, by the garbage collector, its pods).
async fn cleanup(pool: Arc<EnginePool>, ctx: &Context) -> Result<Action, ProvisionError> {
    let deployments: Api<Deployment> =
        Api::namespaced(ctx.client.clone(), &pool.namespace().unwrap_or_default());
    match deployments
        .delete(&deployment_name(&pool), &DeleteParams::background())
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(error) => return Err(error.into()),
    }
    tracing::info!(pool = %pool.name_any(), "engine pool deleted; its workers are removed");
    Ok(Action::await_change())
}

pub async fn reconcile(pool: Arc<EnginePool>, ctx: Arc<Context>) -> Result<Action, ProvisionError> {
    let api: Api<EnginePool> =
        Api::namespaced(ctx.client.clone(), &pool.namespace().unwrap_or_default());
    finalizer(&api, FINALIZER, pool, |event| async {
        match event {
            Event::Apply(pool) => apply(pool, &ctx).await,
            Event::Cleanup(pool) => cleanup(pool, &ctx).await,
        }
    })
    .await
    .map_err(|error| ProvisionError::Finalizer(Box::new(error)))
}

pub fn error_policy(pool: Arc<EnginePool>, error: &ProvisionError, _ctx: Arc<Context>) -> Action {
    tracing::warn!(pool = %pool.name_any(), %error, retryable = error.is_retryable(), "engine pool round failed");
    if error.is_retryable() {
        Action::requeue(Duration::from_secs(5))
    } else {
        Action::requeue(Duration::from_secs(60))
    }
}

/// Runs the controller over the pools of `namespace` until the stream ends.
pub async fn run_controller(ctx: Arc<Context>, namespace: &str) {
    let pools: Api<EnginePool> = Api::namespaced(ctx.client.clone(), namespace);
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), namespace);
    // Our own status writes must not wake the pool again (lastBusyTime moves every round): only
    // changes of the spec (generation, deletion) and of the finalizers do; the rounds in
    // between come from the requeue and from the owned Deployments.
    let (reader, writer) = reflector::store();
    let trigger = watcher(pools, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(
            predicates::generation.combine(predicates::finalizers),
            PredicateConfig::default(),
        );
    let mut controller = Controller::for_stream(trigger, reader)
        .owns(deployments, watcher::Config::default().labels(POOL_LABEL));
    if let Some(doorbell) = &ctx.config.doorbell {
        // A queued task wakes every pool at once (a round costs one depth request per pool).
        controller = controller.reconcile_all_on(weir_function_runtime::announcements::watch(
            doorbell.clone(),
        ));
    }
    controller
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "reconcile");
            }
        })
        .await;
}
