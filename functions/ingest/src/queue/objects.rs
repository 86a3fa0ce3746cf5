//! S3 object notifications: a file dropped into a bucket prefix is ingested into the dataset a
//! configured rule names. The standard S3 event JSON is taken as SQS delivers it (the body),
//! inside an EventBridge envelope (`"source": "aws.s3"`, `"detail-type": "Object Created"`),
//! and through any transport (a CloudEvent's data). Each object streams through the same
//! bounded path as an HTTP push and is its own block, which records the object's identity
//! (bucket, key and version) so that a repeated notification adds nothing.

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use serde::Deserialize;
use serde_json::Value;
use weir_function_runtime::messages::{Disposition, QueueMessage};

use super::ids;
use super::{QueueIngest, disposition_for};
use crate::error::IngestError;
use crate::read::MediaFormat;
use crate::service::{Committer, SourceSteps, load_chain};
use crate::source::push_target;

/// Objects under `prefix` in `bucket` go to `dataset` (`<account>/<dataset>`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectRule {
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    pub dataset: String,
    #[serde(default)]
    pub source: Option<String>,
    /// The objects' media type; else told by the key's extension.
    #[serde(default)]
    pub content_type: Option<String>,
}

/// One created object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectCreated {
    pub bucket: String,
    pub key: String,
    /// What tells this upload from another of the same key: the sequencer, else the version
    /// or ETag.
    pub version: String,
    pub time: Option<DateTime<Utc>>,
}

/// The objects a message announces, when it is an S3 notification (`None` when it is not):
/// test events and events other than creations announce none.
pub fn parse_notification(body: &[u8]) -> Option<Vec<ObjectCreated>> {
    let event: Value = serde_json::from_slice(body).ok()?;
    if event["Event"] == "s3:TestEvent" {
        return Some(Vec::new());
    }
    if event["source"] == "aws.s3" {
        if event["detail-type"] != "Object Created" {
            return Some(Vec::new());
        }
        let detail = &event["detail"];
        return Some(vec![ObjectCreated {
            bucket: detail["bucket"]["name"].as_str()?.to_string(),
            key: detail["object"]["key"].as_str()?.to_string(),
            version: version(&detail["object"]),
            time: event["time"].as_str().and_then(parse_time),
        }]);
    }
    let records = event["Records"].as_array()?;
    if records.is_empty() || records.iter().any(|r| r["eventSource"] != "aws:s3") {
        return None;
    }
    Some(
        records
            .iter()
            .filter(|record| {
                record["eventName"]
                    .as_str()
                    .is_some_and(|name| name.starts_with("ObjectCreated"))
            })
            .filter_map(|record| {
                let s3 = &record["s3"];
                Some(ObjectCreated {
                    bucket: s3["bucket"]["name"].as_str()?.to_string(),
                    // Keys in S3 event notifications are URL-encoded, spaces as `+`.
                    key: decode_key(s3["object"]["key"].as_str()?),
                    version: version(&s3["object"]),
                    time: record["eventTime"].as_str().and_then(parse_time),
                })
            })
            .collect(),
    )
}

fn version(object: &Value) -> String {
    ["sequencer", "versionId", "eTag", "etag"]
        .iter()
        .find_map(|name| object[*name].as_str())
        .unwrap_or_default()
        .to_string()
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

fn decode_key(key: &str) -> String {
    let plus_as_space = key.replace('+', " ");
    url::form_urlencoded::parse(format!("k={}", plus_as_space.replace(' ', "%20")).as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_else(|| key.to_string())
}

/// The media type of an object by its key's extension.
fn format_of(key: &str, rule: &ObjectRule) -> Result<MediaFormat, IngestError> {
    if let Some(content_type) = &rule.content_type {
        return MediaFormat::from_content_type(content_type);
    }
    let extension = key.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    Ok(match extension.as_deref() {
        Some("csv") => MediaFormat::Csv,
        Some("json") => MediaFormat::Json,
        Some("ndjson" | "jsonl") => MediaFormat::NdJson,
        Some("geojson") => MediaFormat::GeoJson,
        Some("parquet") => MediaFormat::Parquet,
        _ => {
            return Err(IngestError::UnsupportedMediaType(format!(
                "(object `{key}`: name a content_type in its rule, or use the extension .csv, \
                 .json, .ndjson, .jsonl, .geojson or .parquet)"
            )));
        }
    })
}

impl QueueIngest {
    /// Ingests every object a notification announces, in order; done when all are in.
    pub(super) async fn ingest_objects(
        &self,
        message: &QueueMessage,
        objects: Vec<ObjectCreated>,
    ) -> Disposition {
        let caller = message
            .caller
            .clone()
            .unwrap_or_else(|| self.caller.clone());
        for object in objects {
            match self.ingest_object(&caller, &object).await {
                Ok(()) => {}
                Err(disposition) => {
                    tracing::warn!(message_id = %message.message_id, bucket = %object.bucket,
                        key = %object.key, ?disposition, "object not ingested");
                    return disposition;
                }
            }
        }
        Disposition::Done
    }

    async fn ingest_object(
        &self,
        caller: &weir_function_runtime::Caller,
        object: &ObjectCreated,
    ) -> Result<(), Disposition> {
        let location = format!("s3://{}/{}", object.bucket, object.key);
        let rule = self
            .config
            .objects
            .iter()
            .filter(|rule| rule.bucket == object.bucket && object.key.starts_with(&rule.prefix))
            .max_by_key(|rule| rule.prefix.len())
            .ok_or_else(|| Disposition::Reject(format!("no object rule takes `{location}`")))?;
        let rejected = |error: IngestError| disposition_for(&error);
        let (account, name) = rule.dataset.split_once('/').ok_or_else(|| {
            Disposition::Reject(format!(
                "the rule's dataset `{}` is not `<account>/<dataset>`",
                rule.dataset
            ))
        })?;
        let dataset = self
            .context
            .resolve_for_writing(caller, account, name)
            .await
            .map_err(rejected)?;
        let chain = load_chain(&dataset).await.map_err(rejected)?;
        let push = push_target(&chain).map_err(rejected)?;
        let source = push
            .select(name, rule.source.as_deref())
            .map_err(rejected)?
            .clone();
        let origin = format!("s3/{}", object.bucket);
        let key = ids::digest_key(&format!("{location}@{}", object.version));
        let since = Utc::now() - chrono::Duration::seconds(self.config.dedup_window_seconds as i64);
        if !ids::already_committed(&chain, &origin, &[key], since).is_empty() {
            return Ok(());
        }
        let format = format_of(&object.key, rule).map_err(rejected)?;
        let store = crate::polling::files::s3_store(
            self.context.config.polling.s3.as_ref(),
            &object.bucket,
        )
        .map_err(|error| Disposition::Retry(format!("{location}: {error}")))?;
        let path = object_store::path::Path::from(object.key.as_str());
        let body = match store.get(&path).await {
            Ok(body) => body,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(Disposition::Reject(format!(
                    "object `{location}` is gone: it was removed before it could be ingested"
                )));
            }
            Err(error) => return Err(Disposition::Retry(format!("{location}: {error}"))),
        };
        let limit = self.context.config.max_body_bytes;
        let mut received = 0u64;
        let body = body
            .into_stream()
            .map_err(|error| IngestError::SourceUnavailable(Box::new(error)))
            .map(move |chunk| {
                let chunk = chunk?;
                received += chunk.len() as u64;
                if received > limit {
                    return Err(IngestError::TooLarge { limit });
                }
                Ok(chunk)
            });
        let steps = SourceSteps {
            read: source.read,
            preprocess: source.preprocess,
            merge: source.merge,
        };
        let committer = Committer {
            caller,
            idempotency: None,
            source_state: Some(ids::state_for(&origin, &[key])),
        };
        self.context
            .ingest_records(
                &dataset,
                (chain, push.schema),
                &steps,
                (format, object.time.unwrap_or_else(Utc::now)),
                body,
                committer,
            )
            .await
            .map(|_| ())
            .map_err(rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_in_sqs_and_eventbridge_shapes_name_their_objects() {
        let sqs =
            br#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1",
            "eventTime":"2024-05-01T10:00:00.000Z","eventName":"ObjectCreated:Put",
            "s3":{"bucket":{"name":"drop"},"object":{"key":"cities/new+file%281%29.csv","size":10,
            "eTag":"abc","sequencer":"0062E99A88DC407460"}}}]}"#;
        let objects = parse_notification(sqs).unwrap();
        assert_eq!(objects[0].bucket, "drop");
        assert_eq!(objects[0].key, "cities/new file(1).csv");
        assert_eq!(objects[0].version, "0062E99A88DC407460");
        let bridge = br#"{"version":"0","detail-type":"Object Created","source":"aws.s3",
            "time":"2024-05-01T10:00:00Z","detail":{"bucket":{"name":"drop"},
            "object":{"key":"cities/a.csv","etag":"e1"}}}"#;
        assert_eq!(parse_notification(bridge).unwrap()[0].version, "e1");
        assert_eq!(
            parse_notification(br#"{"Service":"Amazon S3","Event":"s3:TestEvent"}"#),
            Some(vec![])
        );
        assert_eq!(parse_notification(br#"{"city":"x"}"#), None);
        assert_eq!(parse_notification(b"not json"), None);
    }
}
