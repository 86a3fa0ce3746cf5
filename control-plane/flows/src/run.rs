//! Flow runs as the history shows them: why a run waits, what caused it, how it ended.

use serde::{Deserialize, Serialize};

use crate::model::FlowKey;

/// Where a run is. `Queued` is shown as waiting (for an executor, as its wait reason says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RunStatus {
    Waiting,
    #[serde(rename = "waiting")]
    Queued,
    Running,
    Retrying,
    Finished,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Waiting => "waiting",
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Retrying => "retrying",
            RunStatus::Finished => "finished",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            RunStatus::Waiting,
            RunStatus::Queued,
            RunStatus::Running,
            RunStatus::Retrying,
            RunStatus::Finished,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// Why a waiting run does not run yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WaitReason {
    /// Its scheduled time has not come.
    Schedule,
    /// Another run of the same flow is running or retrying.
    Throttling,
    /// Waiting for enough new input records or the end of the batching interval.
    Batching,
    /// Queued for an executor to take it.
    Executor,
}

impl WaitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            WaitReason::Schedule => "schedule",
            WaitReason::Throttling => "throttling",
            WaitReason::Batching => "batching",
            WaitReason::Executor => "executor",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            WaitReason::Schedule,
            WaitReason::Throttling,
            WaitReason::Batching,
            WaitReason::Executor,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == text)
    }
}

/// Manual > reactive > schedule; FIFO within a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Priority {
    Schedule = 1,
    Reactive = 2,
    Manual = 3,
}

impl Priority {
    pub fn from_level(level: i64) -> Self {
        match level {
            3.. => Priority::Manual,
            2 => Priority::Reactive,
            _ => Priority::Schedule,
        }
    }
}

/// What made a run happen; a run merges every cause that arrived before it started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Cause {
    #[serde(rename_all = "camelCase")]
    Manual { account_id: String, at: i64 },
    #[serde(rename_all = "camelCase")]
    Schedule { at: i64 },
    /// An input committed a block with `records` new records.
    #[serde(rename_all = "camelCase")]
    InputCommitted {
        dataset_id: String,
        block_hash: String,
        records: u64,
        at: i64,
    },
}

impl Cause {
    pub fn priority(&self) -> Priority {
        match self {
            Cause::Manual { .. } => Priority::Manual,
            Cause::Schedule { .. } => Priority::Schedule,
            Cause::InputCommitted { .. } => Priority::Reactive,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum RunOutcome {
    #[serde(rename_all = "camelCase")]
    Success {
        changed: bool,
        details: serde_json::Value,
    },
    #[serde(rename_all = "camelCase")]
    Failed {
        error_kind: String,
        message: String,
        retryable: bool,
    },
    #[serde(rename_all = "camelCase")]
    Aborted { reason: String },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowRun {
    pub run_id: i64,
    #[serde(flatten)]
    pub key: FlowKey,
    pub status: RunStatus,
    pub wait_reason: Option<WaitReason>,
    /// When a waiting or retrying run becomes due (Unix ms); none while throttled.
    pub due_at: Option<i64>,
    pub outcome: Option<RunOutcome>,
    pub causes: Vec<Cause>,
    /// New input records counted towards a buffering trigger.
    pub records_awaited: u64,
    /// Attempts dispatched so far.
    pub attempt: u32,
    pub priority: Priority,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// The last attempt's error while retrying.
    pub last_error: Option<RunOutcome>,
}

/// A flow's configuration and control state as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowBinding {
    pub config: crate::model::FlowConfig,
    /// False for flows running on their defaults.
    pub configured: bool,
    pub paused: bool,
    /// Why the flow stopped by itself (its stop policy), until resumed.
    pub stop_reason: Option<String>,
    pub consecutive_failures: u32,
    pub updated_at: i64,
}
