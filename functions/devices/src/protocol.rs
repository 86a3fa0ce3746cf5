//! Kaa 1/KP data collection (`docs/protocols/devices.md`): the topic
//! `kp1/<appVersionName>/dcx/<endpointToken>/json[/<requestId>]`, a payload that is a JSON array
//! of samples, and the answers on `<topic>/status` and `<topic>/error`.

use serde::Serialize;
use serde_json::{Map, Value};

/// One data collection request, from MQTT or HTTP.
#[derive(Debug, Clone)]
pub struct DeviceRequest {
    pub version: String,
    pub token: String,
    /// Present for reliable requests: they are answered.
    pub request_id: Option<u64>,
    pub payload: bytes::Bytes,
    /// The broker delivered it before (MQTT DUP): it may be committed already.
    pub redelivered: bool,
}

/// Why a request failed, as Kaa answers it: `{"statusCode": N, "reasonPhrase": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub status_code: u16,
    pub reason_phrase: String,
}

impl Failure {
    pub fn new(status_code: u16, reason_phrase: impl Into<String>) -> Self {
        Self {
            status_code,
            reason_phrase: reason_phrase.into(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("failures serialize")
    }
}

/// What becomes of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Its samples are durable (or were before: a redelivery).
    Committed,
    /// It never will be: answer the failure.
    Failed(Failure),
    /// Not now (storage or control plane unreachable): try again, answer nothing yet.
    Retry(String),
}

/// The filters a bridge subscribes to (a request id is one more level).
pub const TOPIC_FILTERS: [&str; 2] = ["kp1/+/dcx/+/json", "kp1/+/dcx/+/json/+"];

/// A data collection topic's parts, or why it is not one. Answers on `…/status` and `…/error`
/// (the bridge's own replies, seen by a wildcard) are `None`.
pub fn parse_topic(topic: &str) -> Result<Option<(String, String, Option<u64>)>, String> {
    let levels: Vec<&str> = topic.split('/').collect();
    let request_id = match levels.as_slice() {
        ["kp1", _, "dcx", _, "json"] => None,
        ["kp1", _, "dcx", _, "json", id] => match id.parse::<u64>() {
            Ok(id) if id > 0 => Some(id),
            _ => return Err(format!("request id `{id}` is not a positive integer")),
        },
        ["kp1", _, "dcx", _, "json", _, "status" | "error"] => return Ok(None),
        _ => {
            return Err(
                "a data collection topic is `kp1/<appVersionName>/dcx/<endpointToken>/json[/<requestId>]`"
                    .to_string(),
            );
        }
    };
    if levels[1].is_empty() || levels[3].is_empty() {
        return Err("the application version and the token must not be empty".to_string());
    }
    Ok(Some((
        levels[1].to_string(),
        levels[3].to_string(),
        request_id,
    )))
}

/// The samples of a payload: a UTF-8 JSON array of at most `max_bytes`.
pub fn parse_samples(payload: &[u8], max_bytes: usize) -> Result<Vec<Value>, Failure> {
    if payload.len() > max_bytes {
        return Err(Failure::new(
            400,
            format!(
                "the payload of {} bytes is over the limit of {max_bytes} bytes",
                payload.len()
            ),
        ));
    }
    let text = std::str::from_utf8(payload).map_err(|error| {
        Failure::new(
            400,
            format!(
                "the payload is not UTF-8 (invalid byte at {})",
                error.valid_up_to()
            ),
        )
    })?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(samples)) => Ok(samples),
        Ok(other) => Err(Failure::new(
            400,
            format!(
                "the payload must be a JSON array of samples, not {}",
                kind_of(&other)
            ),
        )),
        Err(error) => Err(Failure::new(
            400,
            format!("the payload is not JSON: {error}"),
        )),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The column of the endpoint that sent a sample; a sample's own field of that name is replaced.
pub const ENDPOINT_COLUMN: &str = "endpoint_id";
/// The column ingest reads a record's event time from.
pub const EVENT_TIME_COLUMN: &str = "event_time";

/// The samples as NDJSON records: objects keep their fields, other values become `{"value": …}`;
/// each gets `endpoint_id`, and `event_time` from `pointer` where the sample has it (RFC 3339
/// text, or milliseconds since the epoch), else its own `event_time` field, else `now` (the
/// ingestion time, RFC 3339).
pub fn records(
    samples: Vec<Value>,
    endpoint_id: &str,
    pointer: Option<&str>,
    now: &str,
) -> Result<Vec<u8>, Failure> {
    let mut out = Vec::with_capacity(samples.len() * 64);
    for (index, sample) in samples.into_iter().enumerate() {
        let event_time = match pointer {
            Some(pointer) => match sample.pointer(pointer) {
                None | Some(Value::Null) => None,
                Some(Value::String(text)) => Some(Value::String(text.clone())),
                Some(Value::Number(number)) => {
                    let millis = number.as_i64().ok_or_else(|| {
                        Failure::new(
                            400,
                            format!(
                                "sample {index}: `{pointer}` is {number}, not whole milliseconds"
                            ),
                        )
                    })?;
                    let time =
                        chrono::DateTime::from_timestamp_millis(millis).ok_or_else(|| {
                            Failure::new(
                                400,
                                format!("sample {index}: `{pointer}` is out of range"),
                            )
                        })?;
                    Some(Value::String(time.to_rfc3339()))
                }
                Some(other) => {
                    return Err(Failure::new(
                        400,
                        format!(
                            "sample {index}: `{pointer}` is {}, not a time",
                            kind_of(other)
                        ),
                    ));
                }
            },
            None => None,
        };
        let mut record = match sample {
            Value::Object(fields) => fields,
            other => {
                let mut fields = Map::new();
                fields.insert("value".to_string(), other);
                fields
            }
        };
        record.insert(
            ENDPOINT_COLUMN.to_string(),
            Value::String(endpoint_id.to_string()),
        );
        match event_time {
            Some(event_time) => {
                record.insert(EVENT_TIME_COLUMN.to_string(), event_time);
            }
            None => {
                let own = record.get(EVENT_TIME_COLUMN);
                if own.is_none() || own == Some(&Value::Null) {
                    record.insert(
                        EVENT_TIME_COLUMN.to_string(),
                        Value::String(now.to_string()),
                    );
                }
            }
        }
        serde_json::to_writer(&mut out, &record).expect("records serialize");
        out.push(b'\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_name_version_token_and_request() {
        assert_eq!(
            parse_topic("kp1/lamp-v1/dcx/tok/json/7").unwrap(),
            Some(("lamp-v1".into(), "tok".into(), Some(7)))
        );
        assert_eq!(
            parse_topic("kp1/lamp-v1/dcx/tok/json").unwrap(),
            Some(("lamp-v1".into(), "tok".into(), None))
        );
        assert_eq!(
            parse_topic("kp1/lamp-v1/dcx/tok/json/7/status").unwrap(),
            None
        );
        assert!(parse_topic("kp1/lamp-v1/dcx/tok/json/0").is_err());
        assert!(parse_topic("kp1/lamp-v1/dcx/tok/json/x").is_err());
        assert!(parse_topic("kp1/lamp-v1/cmx/tok/json").is_err());
        assert!(parse_topic("kp1//dcx/tok/json").is_err());
    }

    #[test]
    fn payloads_must_be_utf8_json_arrays_within_the_limit() {
        assert_eq!(parse_samples(b"[1, {\"a\": 2}]", 100).unwrap().len(), 2);
        let not_array = parse_samples(b"{\"a\": 1}", 100).unwrap_err();
        assert!(
            not_array.reason_phrase.contains("not an object"),
            "{not_array:?}"
        );
        let not_utf8 = parse_samples(b"[\"\xff\"]", 100).unwrap_err();
        assert!(not_utf8.reason_phrase.contains("not UTF-8"), "{not_utf8:?}");
        let large = parse_samples(&[b' '; 101], 100).unwrap_err();
        assert!(large.reason_phrase.contains("over the limit"), "{large:?}");
        assert!(parse_samples(b"[1,", 100).is_err());
    }

    const NOW: &str = "2026-11-30T00:00:00+00:00";

    #[test]
    fn records_carry_the_endpoint_and_the_pointed_event_time() {
        let samples = vec![
            serde_json::json!({"t": 21.5, "ts": 1_700_000_000_000_i64, "endpoint_id": "spoofed"}),
            serde_json::json!({"t": 22.0, "meta": {"at": "2026-01-01T00:00:00Z"}}),
            serde_json::json!(5),
        ];
        let text =
            String::from_utf8(records(samples.clone(), "ep_1", Some("/ts"), NOW).unwrap()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["endpoint_id"], "ep_1");
        assert_eq!(lines[0]["event_time"], "2023-11-14T22:13:20+00:00");
        assert_eq!(lines[1]["event_time"], NOW);
        assert_eq!(lines[2]["value"], 5);
        let nested =
            String::from_utf8(records(samples, "ep_1", Some("/meta/at"), NOW).unwrap()).unwrap();
        assert!(
            nested
                .lines()
                .nth(1)
                .unwrap()
                .contains("2026-01-01T00:00:00Z")
        );
        let bad = records(
            vec![serde_json::json!({"ts": true})],
            "ep_1",
            Some("/ts"),
            NOW,
        )
        .unwrap_err();
        assert!(bad.reason_phrase.contains("sample 0"), "{bad:?}");
    }
}
