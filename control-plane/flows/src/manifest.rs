//! ODF `Flow` resources (`https://opendatafabric.org/schemas/flow/v1alpha1/Flow`): what a
//! manifest asks for, mapped onto Weir's flows. A `GarbageCollection` task over every dataset
//! becomes the system GC flow; an `Ingest` or `Compaction` task on one dataset becomes that
//! dataset's flow (a dataset polls its own `SetPollingSource`; compaction takes the spec's
//! `CompactionParams`); what Weir cannot honour is refused naming the field, never half applied.

use serde::Deserialize;

use crate::error::FieldError;
use crate::model::{CompactionTarget, FlowConfig, FlowKey, FlowType, StopPolicy, Trigger};

pub const FLOW_SCHEMA: &str = "https://opendatafabric.org/schemas/flow/v1alpha1/Flow";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowManifest {
    #[serde(rename = "$schema")]
    pub schema: String,
    pub headers: Headers,
    pub spec: FlowSpec,
}

#[derive(Debug, Deserialize)]
pub struct Headers {
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowSpec {
    pub target: serde_json::Value,
    pub triggers: Vec<serde_json::Value>,
    pub tasks: Vec<serde_json::Value>,
}

/// What applying a manifest stores.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedFlow {
    /// For a dataset's flow, `dataset_id` is empty until the caller resolves `dataset`.
    pub key: FlowKey,
    /// The dataset the flow is bound to, as the manifest names it (`name` or `account/name`).
    pub dataset: Option<String>,
    pub config: FlowConfig,
}

fn field(path: &str, message: impl Into<String>) -> FieldError {
    FieldError::new(path, message)
}

/// Whether the target selects every dataset (`Dataset:%`, or `{type: Dataset, name: '%'}`
/// without labels).
fn targets_every_dataset(target: &serde_json::Value) -> Result<bool, FieldError> {
    match target {
        serde_json::Value::String(text) => match text.split_once(':') {
            Some(("Dataset", pattern)) => Ok(pattern == "%"),
            _ => Err(field(
                "spec.target",
                format!("`{text}` is not `Dataset:<name pattern>`"),
            )),
        },
        serde_json::Value::Object(object) => {
            if object.get("type").and_then(|t| t.as_str()) != Some("Dataset") {
                return Err(field("spec.target.type", "only `Dataset` targets exist"));
            }
            let labels = object
                .get("labels")
                .and_then(|labels| labels.as_object())
                .is_some_and(|labels| !labels.is_empty());
            Ok(object.get("name").and_then(|n| n.as_str()) == Some("%") && !labels)
        }
        _ => Err(field(
            "spec.target",
            "expected `Dataset:<name pattern>` or a selector object",
        )),
    }
}

/// The one dataset a target names (`Dataset:NAME`, or `{type: Dataset, name: NAME}`).
fn single_dataset(target: &serde_json::Value, kind: &str) -> Result<String, FieldError> {
    let name = match target {
        serde_json::Value::String(text) => match text.split_once(':') {
            Some(("Dataset", name)) => Some(name),
            _ => None,
        },
        serde_json::Value::Object(object)
            if object.get("type").and_then(|t| t.as_str()) == Some("Dataset")
                && object.get("labels").is_none() =>
        {
            object.get("name").and_then(|name| name.as_str())
        }
        _ => None,
    };
    match name {
        Some(name) if !name.is_empty() && !name.contains(['%', '*', '?']) => Ok(name.to_string()),
        _ => Err(field(
            "spec.target",
            format!(
                "a {kind} flow targets one dataset: `Dataset:<name>` (one flow per dataset; \
                 patterns and labels are not supported)"
            ),
        )),
    }
}

fn trigger_of(triggers: &[serde_json::Value]) -> Result<Trigger, FieldError> {
    let [trigger] = triggers else {
        return Err(field(
            "spec.triggers",
            format!(
                "Weir runs a flow on exactly one trigger; got {}",
                triggers.len()
            ),
        ));
    };
    match trigger.get("kind").and_then(|k| k.as_str()) {
        Some("Schedule") => {
            let cron = trigger
                .get("cron")
                .and_then(|c| c.as_str())
                .ok_or_else(|| field("spec.triggers[0].cron", "a Schedule trigger needs `cron`"))?;
            Ok(Trigger::Schedule {
                every: None,
                cron: Some(cron.to_string()),
            })
        }
        Some(kind @ ("Event" | "Source" | "Dataset")) => Err(field(
            "spec.triggers[0].kind",
            format!("`{kind}` triggers do not fit this task; use a Schedule"),
        )),
        other => Err(field(
            "spec.triggers[0].kind",
            format!("unknown trigger kind {other:?}: expected Schedule, Event, Source or Dataset"),
        )),
    }
}

/// Checks a planned config, naming the manifest's field at fault (a trigger, or a task param).
fn check_as_manifest(config: &FlowConfig, flow_type: FlowType) -> Result<(), FieldError> {
    config
        .clone()
        .check(flow_type)
        .map(|_| ())
        .map_err(|error| FieldError {
            field: match error.field.strip_prefix("compaction.") {
                Some(param) => format!("spec.tasks[0].params.{param}"),
                None => format!(
                    "spec.triggers[0].{}",
                    error.field.trim_start_matches("trigger.")
                ),
            },
            message: error.message,
        })
}

/// Maps a manifest onto flows, or names the first field Weir cannot honour.
pub fn plan(manifest: &FlowManifest) -> Result<Vec<PlannedFlow>, FieldError> {
    if manifest.schema != FLOW_SCHEMA {
        return Err(field("$schema", format!("expected `{FLOW_SCHEMA}`")));
    }
    if manifest.headers.name.trim().is_empty() {
        return Err(field("headers.name", "must not be empty"));
    }
    let [task] = &manifest.spec.tasks[..] else {
        return Err(field(
            "spec.tasks",
            format!(
                "Weir runs one task per flow; got {}",
                manifest.spec.tasks.len()
            ),
        ));
    };
    let kind = task
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or_default();
    match kind {
        "GarbageCollection" => {
            if !targets_every_dataset(&manifest.spec.target)? {
                return Err(field(
                    "spec.target",
                    "garbage collection sweeps the whole node's storage: target `Dataset:%`",
                ));
            }
            let config = FlowConfig {
                trigger: trigger_of(&manifest.spec.triggers)?,
                retry: None,
                stop: StopPolicy::Never,
                compaction: None,
            };
            check_as_manifest(&config, FlowType::Gc)?;
            Ok(vec![PlannedFlow {
                key: FlowKey::system(FlowType::Gc),
                dataset: None,
                config,
            }])
        }
        "Ingest" | "Compaction" => {
            let flow_type = if kind == "Ingest" {
                FlowType::Ingest
            } else {
                FlowType::Compaction
            };
            let dataset = single_dataset(&manifest.spec.target, kind)?;
            if let Some(source) = task.get("source")
                && (flow_type != FlowType::Ingest || source.as_str() != Some(dataset.as_str()))
            {
                return Err(field(
                    "spec.tasks[0].source",
                    "a dataset polls its own `SetPollingSource`: name the target dataset (Source \
                     resources are not supported)",
                ));
            }
            if let Some(unknown) = task.as_object().and_then(|task| {
                task.keys()
                    .find(|key| !matches!(key.as_str(), "kind" | "source" | "params"))
            }) {
                return Err(field(
                    &format!("spec.tasks[0].{unknown}"),
                    format!("unknown field of a {kind} task"),
                ));
            }
            let compaction = match (flow_type, task.get("params")) {
                (FlowType::Compaction, Some(params)) => Some(
                    serde_json::from_value::<CompactionTarget>(params.clone()).map_err(
                        |error| {
                            field(
                                "spec.tasks[0].params",
                                format!("not CompactionParams: {error}"),
                            )
                        },
                    )?,
                ),
                _ => None,
            };
            let config = FlowConfig {
                trigger: trigger_of(&manifest.spec.triggers)?,
                retry: None,
                stop: StopPolicy::Never,
                compaction,
            };
            check_as_manifest(&config, flow_type)?;
            Ok(vec![PlannedFlow {
                key: FlowKey::new(String::new(), flow_type),
                dataset: Some(dataset),
                config,
            }])
        }
        "WebhookCall" => Err(field(
            "spec.tasks[0].kind",
            "WebhookCall flows are webhook subscriptions: POST /datasets/{account}/{name}/webhooks \
             {url, events} (the target's secret is made by Weir and shown once; WebhookTarget \
             resources are not read from manifests)",
        )),
        other => Err(field(
            "spec.tasks[0].kind",
            format!("unknown task kind `{other}`"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(yaml_like_json: serde_json::Value) -> FlowManifest {
        serde_json::from_value(yaml_like_json).unwrap()
    }

    fn gc(target: serde_json::Value, cron: &str) -> serde_json::Value {
        serde_json::json!({
            "$schema": FLOW_SCHEMA,
            "headers": {"name": "gc-datasets"},
            "spec": {"target": target, "triggers": [{"kind": "Schedule", "cron": cron}],
                     "tasks": [{"kind": "GarbageCollection"}]}
        })
    }

    fn ingest(target: serde_json::Value, task: serde_json::Value) -> serde_json::Value {
        let mut manifest = gc(target, "*/30 * * * *");
        manifest["spec"]["tasks"] = serde_json::json!([task]);
        manifest
    }

    #[test]
    fn the_spec_example_ingest_flow_is_its_dataset_ingest_flow() {
        let example = ingest(
            serde_json::json!("Dataset:ca.bankofcanada"),
            serde_json::json!({"kind": "Ingest", "source": "ca.bankofcanada",
                               "params": {"targetSliceRecords": 10000}}),
        );
        let planned = plan(&manifest(example)).unwrap();
        assert_eq!(planned[0].key.flow_type, FlowType::Ingest);
        assert_eq!(planned[0].dataset.as_deref(), Some("ca.bankofcanada"));
        let cases = [
            (
                ingest(
                    serde_json::json!("Dataset:%"),
                    serde_json::json!({"kind": "Ingest"}),
                ),
                "spec.target",
            ),
            (
                ingest(
                    serde_json::json!("Dataset:a"),
                    serde_json::json!({"kind": "Ingest", "source": "b"}),
                ),
                "spec.tasks[0].source",
            ),
            (
                ingest(
                    serde_json::json!("Dataset:a"),
                    serde_json::json!({"kind": "Ingest", "retries": 3}),
                ),
                "spec.tasks[0].retries",
            ),
        ];
        for (json, expected) in cases {
            assert_eq!(plan(&manifest(json)).unwrap_err().field, expected);
        }
    }

    #[test]
    fn compaction_of_one_dataset_takes_the_spec_params() {
        let flow = ingest(
            serde_json::json!("Dataset:sensor.temp"),
            serde_json::json!({"kind": "Compaction",
                               "params": {"maxSliceSize": "100MiB", "maxSliceRecords": 10000}}),
        );
        let planned = plan(&manifest(flow)).unwrap();
        assert_eq!(planned[0].key.flow_type, FlowType::Compaction);
        assert_eq!(
            planned[0].config.task_params()["maxSliceSize"],
            serde_json::json!(100 * 1024 * 1024)
        );
        let too_small = ingest(
            serde_json::json!("Dataset:sensor.temp"),
            serde_json::json!({"kind": "Compaction", "params": {"maxSliceSize": "1KiB"}}),
        );
        assert_eq!(
            plan(&manifest(too_small)).unwrap_err().field,
            "spec.tasks[0].params.maxSliceSize"
        );
    }

    #[test]
    fn garbage_collection_of_every_dataset_is_the_system_gc_flow() {
        let planned = plan(&manifest(gc(serde_json::json!("Dataset:%"), "@daily"))).unwrap();
        assert_eq!(planned.len(), 1);
        assert_eq!(planned[0].key, FlowKey::system(FlowType::Gc));
        assert_eq!(
            planned[0].config.trigger,
            Trigger::Schedule {
                every: None,
                cron: Some("@daily".to_string())
            }
        );
        let selector = serde_json::json!({"type": "Dataset", "name": "%"});
        assert!(plan(&manifest(gc(selector, "0 3 * * *"))).is_ok());
    }

    #[test]
    fn what_cannot_be_honoured_is_named() {
        let cases = [
            (
                gc(serde_json::json!("Dataset:sensor.%"), "@daily"),
                "spec.target",
            ),
            (
                gc(serde_json::json!("Dataset:%"), "99 * * * *"),
                "spec.triggers[0].cron",
            ),
            (gc(serde_json::json!("Account:x"), "@daily"), "spec.target"),
        ];
        for (json, expected) in cases {
            assert_eq!(plan(&manifest(json)).unwrap_err().field, expected);
        }
        // The spec's flow-compact example targets every root by label, on an event.
        let mut compact = gc(
            serde_json::json!({"type": "Dataset", "name": "%", "labels": {"kind": "Root"}}),
            "@daily",
        );
        compact["spec"]["tasks"] = serde_json::json!([{"kind": "Compaction"}]);
        assert_eq!(plan(&manifest(compact)).unwrap_err().field, "spec.target");
        let mut event = gc(serde_json::json!("Dataset:%"), "@daily");
        event["spec"]["triggers"] =
            serde_json::json!([{"kind": "Event", "events": {"type": "dataset.ref.updated"}}]);
        assert_eq!(
            plan(&manifest(event)).unwrap_err().field,
            "spec.triggers[0].kind"
        );
        let mut schema = gc(serde_json::json!("Dataset:%"), "@daily");
        schema["$schema"] = serde_json::json!("https://example.com/Other");
        assert_eq!(plan(&manifest(schema)).unwrap_err().field, "$schema");
    }
}
