//! The `EnginePool` custom resource (`weir.dev/v1alpha1`).
//!
//! Kubernetes 1.20 has no CEL, so the rules across fields (`maxReplicas >= minReplicas`) are
//! checked by the controller, which reports a broken pool in its `Ready` condition.

use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "weir.dev",
    version = "v1alpha1",
    kind = "EnginePool",
    namespaced,
    status = "EnginePoolStatus",
    shortname = "epool",
    printcolumn = r#"{"name":"Engine","type":"string","jsonPath":".spec.engine"}"#,
    printcolumn = r#"{"name":"Min","type":"integer","jsonPath":".spec.minReplicas"}"#,
    printcolumn = r#"{"name":"Max","type":"integer","jsonPath":".spec.maxReplicas"}"#,
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".status.replicas"}"#,
    printcolumn = r#"{"name":"Queued","type":"integer","jsonPath":".status.queuedTasks"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct EnginePoolSpec {
    /// The engine the workers run (`datafusion`: Weir's own, in the transform worker).
    pub engine: String,
    /// The worker image; the provisioner's default worker image when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The engine version, recorded on the workers (the image tag when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Workers kept without demand; 0 lets the pool scale to zero.
    #[serde(default)]
    #[schemars(range(min = 0, max = 1000))]
    pub min_replicas: i32,
    #[schemars(range(min = 0, max = 1000))]
    pub max_replicas: i32,
    /// Tasks one worker runs at once.
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1, max = 64))]
    pub concurrency: i32,
    /// Seconds the demand must stay below the workers before they are scaled down.
    #[serde(default = "default_idle_seconds")]
    #[schemars(range(min = 0, max = 86400))]
    pub idle_seconds: i64,
    /// The kinds of flow tasks this pool's workers take (`transform`, `reset`).
    #[serde(default = "default_task_kinds")]
    pub task_kinds: Vec<String>,
    /// CPU and memory of one worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

fn default_concurrency() -> i32 {
    2
}

fn default_idle_seconds() -> i64 {
    300
}

pub fn default_task_kinds() -> Vec<String> {
    vec!["transform".to_string(), "reset".to_string()]
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnginePoolStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Workers asked of the Deployment.
    #[serde(default)]
    pub replicas: i32,
    #[serde(default)]
    pub ready_replicas: i32,
    /// Workers the queue alone asks for.
    #[serde(default)]
    pub wanted_replicas: i32,
    #[serde(default)]
    pub queued_tasks: i64,
    #[serde(default)]
    pub leased_tasks: i64,
    /// Workers the namespace's ResourceQuota admits, when one applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<i32>,
    /// When the demand last needed every worker (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_busy_time: Option<String>,
    /// No scaling up before this (RFC 3339), while workers cannot be scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_until: Option<String>,
    #[serde(default)]
    pub backoff_seconds: i64,
    #[serde(default)]
    pub conditions: Vec<PoolCondition>,
}

/// `Ready` (workers as asked and the spec valid), `Scaling` (why the replicas are what they
/// are), `Unschedulable` (workers waiting for room).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolCondition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub reason: String,
    /// (Always written: a `default: ""` in the schema is read as null by Kubernetes 1.20.)
    pub message: String,
    pub last_transition_time: String,
}
