//! A flow's configuration as users write it (REST, GraphQL): its trigger, retry and stop
//! policies, and the checks that name the field at fault.

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use weir_tasks::TaskKind as FlowType;

use crate::cron::Cron;
use crate::duration::{format_duration, parse_duration};
use crate::error::FieldError;

/// A flow: one dataset (or the system, for GC) and one type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowKey {
    /// `did:odf:...`, or empty for system flows.
    pub dataset_id: String,
    pub flow_type: FlowType,
}

impl FlowKey {
    pub fn new(dataset_id: impl Into<String>, flow_type: FlowType) -> Self {
        Self {
            dataset_id: dataset_id.into(),
            flow_type,
        }
    }

    pub fn system(flow_type: FlowType) -> Self {
        Self::new("", flow_type)
    }
}

/// What the user configures for a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlowConfig {
    pub trigger: Trigger,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    #[serde(default)]
    pub stop: StopPolicy,
    /// Target slice size of a compaction flow (the spec's `CompactionParams`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compaction: Option<CompactionTarget>,
}

/// How large the slices a compaction merges into may get; defaults 256MiB and 10,000,000.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompactionTarget {
    /// A byte size such as `100MiB` (B, KiB, MiB, GiB, KB, MB, GB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_slice_size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_slice_records: Option<u64>,
}

pub const MIN_SLICE_SIZE: u64 = 1 << 20;
pub const MAX_SLICE_SIZE: u64 = 16 << 30;
pub const MAX_SLICE_RECORDS: u64 = 1_000_000_000;

/// Parses a byte size: a whole number and a unit (`B`, `KiB`, `MiB`, `GiB`, `KB`, `MB`, `GB`).
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a byte size such as `100MiB`"))?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown unit `{other}`: use B, KiB, MiB, GiB, KB, MB or GB"
            ));
        }
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("`{text}` is too large"))
}

impl CompactionTarget {
    /// The task parameters in bytes and records, checked against the bounds.
    fn check(&self) -> Result<serde_json::Value, FieldError> {
        let mut params = serde_json::Map::new();
        if let Some(size) = &self.max_slice_size {
            let field = "compaction.maxSliceSize";
            let bytes = parse_byte_size(size).map_err(|message| FieldError::new(field, message))?;
            if !(MIN_SLICE_SIZE..=MAX_SLICE_SIZE).contains(&bytes) {
                return Err(FieldError::new(field, "must be between 1MiB and 16GiB"));
            }
            params.insert("maxSliceSize".to_string(), bytes.into());
        }
        if let Some(records) = self.max_slice_records {
            if !(1..=MAX_SLICE_RECORDS).contains(&records) {
                return Err(FieldError::new(
                    "compaction.maxSliceRecords",
                    format!("must be between 1 and {MAX_SLICE_RECORDS}"),
                ));
            }
            params.insert("maxSliceRecords".to_string(), records.into());
        }
        Ok(serde_json::Value::Object(params))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum Trigger {
    /// Runs every `every` (a duration such as `30s`, `10min`, `1h`), or at the times of `cron`.
    Schedule {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        every: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cron: Option<String>,
    },
    /// Runs when an input commits new data (transform flows).
    #[serde(rename_all = "camelCase")]
    Reactive {
        #[serde(default)]
        for_new_data: NewDataRule,
        #[serde(default)]
        for_breaking_change: BreakingChangeRule,
    },
    /// Runs only when triggered by hand.
    Manual,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum NewDataRule {
    #[default]
    Immediate,
    /// Waits for `min_records_to_await` new input records, but no longer than
    /// `max_batching_interval` after the first.
    #[serde(rename_all = "camelCase")]
    Buffering {
        min_records_to_await: u64,
        max_batching_interval: String,
    },
}

/// What a derivative does when an input was reset or compacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BreakingChangeRule {
    /// Resets itself and computes again from the inputs.
    #[default]
    Recover,
    /// Stays as it is; its steps fail until someone resets it.
    NoAction,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Wait before the first retry (`5s`); the backoff grows it.
    pub min_delay: String,
    #[serde(default)]
    pub backoff: Backoff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Backoff {
    Fixed,
    Linear,
    #[default]
    Exponential,
    ExponentialWithJitter,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum StopPolicy {
    /// Pauses the flow after this many failed runs in a row.
    #[serde(rename_all = "camelCase")]
    AfterConsecutiveFailures { failures: u32 },
    #[default]
    Never,
}

pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
pub const MAX_INTERVAL: Duration = Duration::from_secs(366 * 24 * 3600);
pub const MAX_BATCHING_INTERVAL: Duration = Duration::from_secs(7 * 24 * 3600);
pub const MAX_RECORDS_TO_AWAIT: u64 = 1_000_000_000;
pub const MAX_ATTEMPTS: u32 = 20;
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(24 * 3600);
pub const MAX_STOP_FAILURES: u32 = 1000;

/// A flow config whose durations and cron are parsed.
#[derive(Debug, Clone)]
pub struct CheckedConfig {
    pub config: FlowConfig,
    pub schedule: Option<Schedule>,
    pub buffering: Option<(u64, Duration)>,
    pub retry: Option<(u32, Duration, Backoff)>,
}

#[derive(Debug, Clone)]
pub enum Schedule {
    Every(Duration),
    Cron(Box<Cron>),
}

impl Schedule {
    /// The first time after `after_millis` (Unix milliseconds) the schedule fires.
    pub fn next_after(&self, after_millis: i64) -> i64 {
        match self {
            Schedule::Every(every) => after_millis + every.as_millis() as i64,
            Schedule::Cron(cron) => cron.next_after(after_millis),
        }
    }
}

fn bounded(field: &str, text: &str, min: Duration, max: Duration) -> Result<Duration, FieldError> {
    let value = parse_duration(text).map_err(|message| FieldError::new(field, message))?;
    if value < min || value > max {
        return Err(FieldError::new(
            field,
            format!(
                "must be between {} and {}, got `{text}`",
                format_duration(min),
                format_duration(max)
            ),
        ));
    }
    Ok(value)
}

impl FlowConfig {
    /// Checks every field against its bounds and that the trigger fits `flow_type`.
    pub fn check(self, flow_type: FlowType) -> Result<CheckedConfig, FieldError> {
        let mut schedule = None;
        let mut buffering = None;
        match &self.trigger {
            Trigger::Schedule { every, cron } => {
                schedule = Some(match (every, cron) {
                    (Some(every), None) => Schedule::Every(bounded(
                        "trigger.every",
                        every,
                        MIN_INTERVAL,
                        MAX_INTERVAL,
                    )?),
                    (None, Some(cron)) => Schedule::Cron(Box::new(
                        Cron::parse(cron)
                            .map_err(|message| FieldError::new("trigger.cron", message))?,
                    )),
                    _ => {
                        return Err(FieldError::new(
                            "trigger",
                            "a schedule takes exactly one of `every` and `cron`",
                        ));
                    }
                });
            }
            Trigger::Reactive { for_new_data, .. } => {
                if flow_type != FlowType::Transform {
                    return Err(FieldError::new(
                        "trigger.kind",
                        format!(
                            "a reactive trigger fires on new input data and fits only transform flows, not {}",
                            flow_type.as_str()
                        ),
                    ));
                }
                if let NewDataRule::Buffering {
                    min_records_to_await,
                    max_batching_interval,
                } = for_new_data
                {
                    if !(1..=MAX_RECORDS_TO_AWAIT).contains(min_records_to_await) {
                        return Err(FieldError::new(
                            "trigger.forNewData.minRecordsToAwait",
                            format!("must be between 1 and {MAX_RECORDS_TO_AWAIT}"),
                        ));
                    }
                    let interval = bounded(
                        "trigger.forNewData.maxBatchingInterval",
                        max_batching_interval,
                        MIN_INTERVAL,
                        MAX_BATCHING_INTERVAL,
                    )?;
                    buffering = Some((*min_records_to_await, interval));
                }
            }
            Trigger::Manual => {}
        }
        let retry = match &self.retry {
            None => None,
            Some(policy) => {
                if !(1..=MAX_ATTEMPTS).contains(&policy.max_attempts) {
                    return Err(FieldError::new(
                        "retry.maxAttempts",
                        format!("must be between 1 and {MAX_ATTEMPTS}"),
                    ));
                }
                let delay = bounded(
                    "retry.minDelay",
                    &policy.min_delay,
                    Duration::ZERO,
                    MAX_RETRY_DELAY,
                )?;
                Some((policy.max_attempts, delay, policy.backoff))
            }
        };
        match (&self.compaction, flow_type) {
            (Some(target), FlowType::Compaction) => {
                target.check()?;
            }
            (Some(_), _) => {
                return Err(FieldError::new(
                    "compaction",
                    format!("fits only compaction flows, not {}", flow_type.as_str()),
                ));
            }
            (None, _) => {}
        }
        if let StopPolicy::AfterConsecutiveFailures { failures } = self.stop
            && !(1..=MAX_STOP_FAILURES).contains(&failures)
        {
            return Err(FieldError::new(
                "stop.failures",
                format!("must be between 1 and {MAX_STOP_FAILURES}"),
            ));
        }
        Ok(CheckedConfig {
            config: self,
            schedule,
            buffering,
            retry,
        })
    }

    /// What the executor of a run's task is told: for transforms, whether to recover from a
    /// breaking change of an input; for compactions, the target slice size.
    pub fn task_params(&self) -> serde_json::Value {
        let on_breaking_change = match &self.trigger {
            Trigger::Reactive {
                for_breaking_change: BreakingChangeRule::NoAction,
                ..
            } => "noAction",
            _ => "recover",
        };
        let mut params = serde_json::json!({ "onBreakingChange": on_breaking_change });
        if let Some(Ok(serde_json::Value::Object(target))) =
            self.compaction.as_ref().map(CompactionTarget::check)
        {
            for (key, value) in target {
                params[key] = value;
            }
        }
        params
    }

    /// What a derivative without a configured transform flow does: compute after every input
    /// commit, recover from breaking changes, retry transient failures three times.
    /// A dataset's webhook flow, stored when its first delivery is queued: runs when an event
    /// queued deliveries, retries a failed round with growing waits (subscriptions disable
    /// themselves after their own failure count).
    pub fn default_webhook() -> Self {
        Self {
            trigger: Trigger::Manual,
            retry: Some(RetryPolicy {
                max_attempts: 8,
                min_delay: "1s".to_string(),
                backoff: Backoff::ExponentialWithJitter,
            }),
            stop: StopPolicy::Never,
            compaction: None,
        }
    }

    pub fn default_transform() -> Self {
        Self {
            trigger: Trigger::Reactive {
                for_new_data: NewDataRule::Immediate,
                for_breaking_change: BreakingChangeRule::Recover,
            },
            retry: Some(RetryPolicy {
                max_attempts: 3,
                min_delay: "1s".to_string(),
                backoff: Backoff::Exponential,
            }),
            stop: StopPolicy::Never,
            compaction: None,
        }
    }

    /// The system GC flow unless configured: every `every` (the control plane's
    /// `sweep_interval_seconds`).
    pub fn default_gc(every: Duration) -> Self {
        Self {
            trigger: Trigger::Schedule {
                every: Some(format!("{}s", every.as_secs().max(1))),
                cron: None,
            },
            retry: None,
            stop: StopPolicy::Never,
            compaction: None,
        }
    }
}

/// The wait before retry number `retry` (1 for the first retry).
pub fn retry_delay(min_delay: Duration, backoff: Backoff, retry: u32) -> Duration {
    let retry = retry.max(1);
    let delay = match backoff {
        Backoff::Fixed => min_delay,
        Backoff::Linear => min_delay.saturating_mul(retry),
        Backoff::Exponential | Backoff::ExponentialWithJitter => {
            min_delay.saturating_mul(1u32 << (retry - 1).min(16))
        }
    };
    let delay = delay.min(MAX_RETRY_DELAY);
    if backoff == Backoff::ExponentialWithJitter {
        // Full jitter between half the delay and the delay.
        let half = delay / 2;
        half + half.mul_f64(rand::random::<f64>())
    } else {
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoffs_grow_as_named() {
        let second = Duration::from_secs(1);
        assert_eq!(retry_delay(second, Backoff::Fixed, 3), second);
        assert_eq!(retry_delay(second, Backoff::Linear, 3), second * 3);
        assert_eq!(retry_delay(second, Backoff::Exponential, 3), second * 4);
        for _ in 0..100 {
            let jittered = retry_delay(second, Backoff::ExponentialWithJitter, 3);
            assert!(
                jittered >= second * 2 && jittered <= second * 4,
                "{jittered:?}"
            );
        }
        assert_eq!(
            retry_delay(Duration::from_secs(3600), Backoff::Exponential, 20),
            MAX_RETRY_DELAY
        );
    }

    #[test]
    fn out_of_range_fields_are_named() {
        let config =
            |json: serde_json::Value| -> FlowConfig { serde_json::from_value(json).unwrap() };
        let cases = [
            (
                serde_json::json!({"trigger": {"kind": "schedule", "every": "0s"}}),
                "trigger.every",
            ),
            (
                serde_json::json!({"trigger": {"kind": "schedule", "cron": "61 * * * *"}}),
                "trigger.cron",
            ),
            (
                serde_json::json!({"trigger": {"kind": "schedule"}}),
                "trigger",
            ),
            (
                serde_json::json!({"trigger": {"kind": "manual"}, "retry": {"maxAttempts": 0, "minDelay": "1s"}}),
                "retry.maxAttempts",
            ),
            (
                serde_json::json!({"trigger": {"kind": "manual"}, "retry": {"maxAttempts": 2, "minDelay": "2d"}}),
                "retry.minDelay",
            ),
            (
                serde_json::json!({"trigger": {"kind": "manual"}, "stop": {"kind": "afterConsecutiveFailures", "failures": 0}}),
                "stop.failures",
            ),
            (
                serde_json::json!({"trigger": {"kind": "reactive", "forNewData": {"kind": "buffering", "minRecordsToAwait": 0, "maxBatchingInterval": "1min"}}}),
                "trigger.forNewData.minRecordsToAwait",
            ),
        ];
        for (json, field) in cases {
            let error = config(json.clone()).check(FlowType::Transform).unwrap_err();
            assert_eq!(error.field, field, "{json}: {error}");
        }
        let reactive = config(serde_json::json!({"trigger": {"kind": "reactive"}}));
        assert_eq!(
            reactive.check(FlowType::Compaction).unwrap_err().field,
            "trigger.kind"
        );
    }

    #[test]
    fn compaction_targets_are_checked_and_fit_only_compaction_flows() {
        let config = |compaction: serde_json::Value| -> FlowConfig {
            serde_json::from_value(serde_json::json!({
                "trigger": {"kind": "schedule", "cron": "@daily"},
                "compaction": compaction,
            }))
            .unwrap()
        };
        let good = config(serde_json::json!({"maxSliceSize": "64MiB", "maxSliceRecords": 5000}));
        let checked = good.clone().check(FlowType::Compaction).unwrap();
        assert_eq!(
            checked.config.task_params()["maxSliceSize"],
            serde_json::json!(64 << 20)
        );
        assert_eq!(
            good.check(FlowType::Ingest).unwrap_err().field,
            "compaction"
        );
        for (bad, field) in [
            (
                serde_json::json!({"maxSliceSize": "lots"}),
                "compaction.maxSliceSize",
            ),
            (
                serde_json::json!({"maxSliceSize": "64 parsecs"}),
                "compaction.maxSliceSize",
            ),
            (
                serde_json::json!({"maxSliceSize": "17GiB"}),
                "compaction.maxSliceSize",
            ),
            (
                serde_json::json!({"maxSliceSize": "99999999999999999999GiB"}),
                "compaction.maxSliceSize",
            ),
            (
                serde_json::json!({"maxSliceRecords": 0}),
                "compaction.maxSliceRecords",
            ),
        ] {
            assert_eq!(
                config(bad).check(FlowType::Compaction).unwrap_err().field,
                field
            );
        }
        assert_eq!(parse_byte_size("100MB"), Ok(100_000_000));
        assert_eq!(parse_byte_size("2048"), Ok(2048));
    }
}
