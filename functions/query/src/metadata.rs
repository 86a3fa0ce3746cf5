//! A dataset's current metadata summarized from its chain: the `/metadata` endpoint.

use serde_json::{Value, json};
use weir_dataset::Dataset;
use weir_odf::MetadataEvent;

use crate::error::QueryError;

pub async fn dataset_metadata(dataset: &Dataset, alias: &str) -> Result<Value, QueryError> {
    let chain = dataset
        .load_chain(None)
        .await
        .map_err(|error| QueryError::Internal(error.to_string()))?;
    let mut schema = Value::Null;
    let mut push_sources = serde_json::Map::new();
    let mut polling_source = Value::Null;
    let mut transform = Value::Null;
    let mut info = Value::Null;
    let mut license = Value::Null;
    let mut attachments = Value::Null;
    let mut vocab = Value::Null;
    let mut num_records = 0u64;
    for (_, block) in chain.blocks.iter().rev() {
        match &block.event {
            MetadataEvent::SetDataSchema(event) => schema = to_json(&event.schema),
            MetadataEvent::AddPushSource(event) => {
                push_sources.insert(event.source_name.clone(), to_json(event));
            }
            MetadataEvent::DisablePushSource(event) => {
                push_sources.remove(&event.source_name);
            }
            MetadataEvent::SetPollingSource(event) => polling_source = to_json(event),
            MetadataEvent::DisablePollingSource(_) => polling_source = Value::Null,
            MetadataEvent::SetTransform(event) => transform = to_json(event),
            MetadataEvent::SetInfo(event) => info = to_json(event),
            MetadataEvent::SetLicense(event) => license = to_json(event),
            MetadataEvent::SetAttachments(event) => attachments = to_json(event),
            MetadataEvent::SetVocab(event) => vocab = to_json(event),
            MetadataEvent::AddData(event) => {
                num_records += event
                    .new_data
                    .as_ref()
                    .map_or(0, |s| s.offset_interval.len())
            }
            MetadataEvent::ExecuteTransform(event) => {
                num_records += event
                    .new_data
                    .as_ref()
                    .map_or(0, |s| s.offset_interval.len())
            }
            MetadataEvent::Seed(_) => {}
        }
    }
    let inputs: Vec<String> = match &transform {
        Value::Object(object) => object
            .get("inputs")
            .and_then(Value::as_array)
            .map(|inputs| {
                inputs
                    .iter()
                    .filter_map(|input| {
                        input
                            .get("datasetRef")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let head = chain.blocks.first();
    Ok(json!({
        "id": dataset.id().to_string(),
        "alias": alias,
        "kind": chain.state.dataset_kind(),
        "head": head.map(|(hash, _)| hash.to_string()),
        "sequenceNumber": head.map(|(_, block)| block.sequence_number),
        "lastUpdated": head.map(|(_, block)| block.system_time),
        "watermark": chain.state.watermark(),
        "numRecords": num_records,
        "schema": schema,
        "pushSources": push_sources.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        "pollingSource": polling_source,
        "transform": transform,
        "info": info,
        "license": license,
        "attachments": attachments,
        "vocab": vocab,
        "lineage": {"inputs": inputs},
    }))
}

fn to_json(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}
