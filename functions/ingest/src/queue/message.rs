//! What a queue message asks for (`docs/protocols/ingest-messages.md`): the dataset it goes to,
//! the format of its body and the event time of records that carry none. The same names on
//! every transport: NATS headers, SQS message attributes, CloudEvents extension attributes.

use chrono::{DateTime, Utc};
use weir_function_runtime::messages::QueueMessage;

use crate::error::IngestError;
use crate::read::MediaFormat;

/// `<account>/<dataset>`: the dataset a message goes to (overrides the NATS subject).
pub const DATASET_ATTRIBUTE: &str = "odf-dataset";
/// The push source, when the dataset has several.
pub const SOURCE_ATTRIBUTE: &str = "odf-source";
/// RFC 3339 event time of records that carry none.
pub const EVENT_TIME_ATTRIBUTE: &str = "odf-event-time";
/// Media type of the body; NDJSON when absent.
pub const CONTENT_TYPE_ATTRIBUTE: &str = "content-type";
/// The producer's id of the message (SQS, CloudEvents): a redelivery or a resend with the same id
/// adds nothing. JetStream uses the stream sequence, and `Nats-Msg-Id` for the publisher's retries.
pub const MESSAGE_ID_ATTRIBUTE: &str = "odf-message-id";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    pub account: String,
    pub dataset: String,
    pub source: Option<String>,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.account, self.dataset)
    }
}

/// A message read as an ingest request.
#[derive(Debug, Clone)]
pub struct IngestMessage {
    pub target: Target,
    pub format: MediaFormat,
    pub event_time: Option<DateTime<Utc>>,
}

/// The first of `names` the message has (case-insensitive): CloudEvents extension attributes
/// spell the same names without dashes (`odfdataset`), and name the format `datacontenttype`.
fn attribute<'a>(message: &'a QueueMessage, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|name| {
        message
            .attributes
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    })
}

/// Whether the message names its dataset in an attribute.
pub fn names_a_dataset(message: &QueueMessage) -> bool {
    attribute(message, &[DATASET_ATTRIBUTE, "odfdataset"]).is_some()
}

/// Reads what a message asks for; `subject_prefix` is the NATS subject prefix
/// (`weir.ingest`), after which come `<account>.<dataset>[.<source>]`.
pub fn parse(message: &QueueMessage, subject_prefix: &str) -> Result<IngestMessage, IngestError> {
    let target = match attribute(message, &[DATASET_ATTRIBUTE, "odfdataset"]) {
        Some(named) => {
            let (account, dataset) = named.split_once('/').ok_or_else(|| {
                IngestError::BadValue(format!(
                    "`{DATASET_ATTRIBUTE}` is `{named}`: expected `<account>/<dataset>`"
                ))
            })?;
            Target {
                account: account.to_string(),
                dataset: dataset.to_string(),
                source: attribute(message, &[SOURCE_ATTRIBUTE, "odfsource"]).map(str::to_string),
            }
        }
        None => from_subject(message.subject.as_deref(), subject_prefix)?,
    };
    let format = match attribute(message, &[CONTENT_TYPE_ATTRIBUTE, "datacontenttype"]) {
        Some(content_type) => MediaFormat::from_content_type(content_type)?,
        None => MediaFormat::NdJson,
    };
    // A CloudEvent's `time` (when the occurrence happened) is its records' default event time.
    let named_time = attribute(message, &[EVENT_TIME_ATTRIBUTE, "odfeventtime"]).or_else(|| {
        (message.origin == "cloudevents")
            .then(|| attribute(message, &["time"]))
            .flatten()
    });
    let event_time = match named_time {
        None => None,
        Some(value) => Some(
            DateTime::parse_from_rfc3339(value)
                .map_err(|_| IngestError::BadEventTimeHeader(value.to_string()))?
                .with_timezone(&Utc),
        ),
    };
    Ok(IngestMessage {
        target,
        format,
        event_time,
    })
}

fn from_subject(subject: Option<&str>, prefix: &str) -> Result<Target, IngestError> {
    let missing = || {
        IngestError::BadValue(format!(
            "the message names no dataset: publish to `{prefix}.<account>.<dataset>` or set \
             `{DATASET_ATTRIBUTE}: <account>/<dataset>`"
        ))
    };
    let rest = subject
        .and_then(|subject| subject.strip_prefix(prefix))
        .and_then(|rest| rest.strip_prefix('.'))
        .ok_or_else(missing)?;
    let tokens: Vec<&str> = rest.split('.').collect();
    match tokens.as_slice() {
        [account, dataset] => Ok(Target {
            account: account.to_string(),
            dataset: dataset.to_string(),
            source: None,
        }),
        [account, dataset, source] => Ok(Target {
            account: account.to_string(),
            dataset: dataset.to_string(),
            source: Some(source.to_string()),
        }),
        _ => Err(IngestError::BadValue(format!(
            "subject `{}` has {} tokens after `{prefix}`: expected `<account>.<dataset>` or \
             `<account>.<dataset>.<source>` (a dataset name with dots goes in `{DATASET_ATTRIBUTE}`)",
            subject.unwrap_or_default(),
            tokens.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(subject: &str, attributes: &[(&str, &str)]) -> QueueMessage {
        QueueMessage {
            subject: Some(subject.to_string()),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..QueueMessage::default()
        }
    }

    #[test]
    fn the_subject_names_the_dataset_unless_an_attribute_does() {
        let parsed = parse(&message("weir.ingest.alice.trips", &[]), "weir.ingest").unwrap();
        assert_eq!(parsed.target.to_string(), "alice/trips");
        assert_eq!(parsed.format, MediaFormat::NdJson);
        let parsed = parse(&message("weir.ingest.alice.trips.gps", &[]), "weir.ingest").unwrap();
        assert_eq!(parsed.target.source.as_deref(), Some("gps"));
        let parsed = parse(
            &message(
                "other",
                &[("ODF-Dataset", "bob/my.data"), ("Content-Type", "text/csv")],
            ),
            "weir.ingest",
        )
        .unwrap();
        assert_eq!(parsed.target.to_string(), "bob/my.data");
        assert_eq!(parsed.format, MediaFormat::Csv);
    }

    #[test]
    fn a_message_without_a_target_or_with_bad_attributes_is_refused_with_the_reason() {
        let error = parse(&message("weir.ingest.alice", &[]), "weir.ingest").unwrap_err();
        assert!(error.to_string().contains("1 tokens"), "{error}");
        let error = parse(&message("elsewhere", &[]), "weir.ingest").unwrap_err();
        assert!(error.to_string().contains("names no dataset"), "{error}");
        let error = parse(&message("x", &[("odf-dataset", "nope")]), "weir.ingest").unwrap_err();
        assert!(error.to_string().contains("<account>/<dataset>"), "{error}");
        let bad_time = [("odf-dataset", "a/b"), ("odf-event-time", "yesterday")];
        assert!(parse(&message("x", &bad_time), "weir.ingest").is_err());
        let bad_type = [("odf-dataset", "a/b"), ("content-type", "image/png")];
        assert!(parse(&message("x", &bad_type), "weir.ingest").is_err());
    }
}
