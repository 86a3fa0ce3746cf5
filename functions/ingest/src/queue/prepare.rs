//! Reading a group's messages into records ready to commit. NDJSON messages in a row with the
//! same event time are read as one body (the fast path of small messages); every other message
//! is read alone. When a run fails, its messages are read one by one, so that only the bad one
//! is rejected, with the reason naming its record and column.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use weir_function_runtime::messages::{Disposition, QueueMessage};
use weir_odf::{DataSchema, MergeStrategy, ReadStep, Transform};

use super::Member;
use crate::error::IngestError;
use crate::read::{MediaFormat, read_body};
use crate::records::{DatasetColumns, schema_with_event_time, with_event_time};
use crate::sink::CollectSink;

pub(super) struct Steps<'a> {
    pub read: &'a ReadStep,
    pub preprocess: Option<&'a Transform>,
    pub merge: &'a MergeStrategy,
    /// The dataset's schema, when it has one: every part is conformed to it.
    pub schema: Option<&'a DataSchema>,
    /// Event time of records that carry none and whose message names none.
    pub now: DateTime<Utc>,
}

/// Records of consecutive messages, all of one schema.
pub(super) struct Part {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub members: Vec<usize>,
}

/// The parts of `members` in order, and the messages that failed (rejected, or to retry).
pub(super) async fn parts(
    steps: &Steps<'_>,
    members: &[Member],
    messages: &[QueueMessage],
) -> (Vec<Part>, Vec<(usize, Disposition)>) {
    let mut parts = Vec::new();
    let mut failed = Vec::new();
    let mut start = 0;
    while start < members.len() {
        let first = &members[start].request;
        let mut end = start + 1;
        if first.format == MediaFormat::NdJson {
            while end < members.len()
                && members[end].request.format == MediaFormat::NdJson
                && members[end].request.event_time == first.event_time
            {
                end += 1;
            }
        }
        let run = &members[start..end];
        match read_run(steps, run, messages).await {
            Ok(part) => parts.push(part),
            Err(error) if run.len() == 1 || error.is_retryable() => {
                failed.extend(
                    run.iter()
                        .map(|m| (m.index, super::disposition_for(&error))),
                );
            }
            Err(_) => {
                for member in run {
                    match read_run(steps, std::slice::from_ref(member), messages).await {
                        Ok(part) => parts.push(part),
                        Err(error) => failed.push((member.index, super::disposition_for(&error))),
                    }
                }
            }
        }
        start = end;
    }
    (parts, failed)
}

/// Reads `run` (one message, or NDJSON messages with one event time) as one body.
async fn read_run(
    steps: &Steps<'_>,
    run: &[Member],
    messages: &[QueueMessage],
) -> Result<Part, IngestError> {
    let body = if run.len() == 1 {
        messages[run[0].index].body.clone()
    } else {
        let size = run.iter().map(|m| messages[m.index].body.len() + 1).sum();
        let mut joined = BytesMut::with_capacity(size);
        for member in run {
            joined.extend_from_slice(&messages[member.index].body);
            joined.extend_from_slice(b"\n");
        }
        joined.freeze()
    };
    let request = &run[0].request;
    let chunks = futures::stream::iter([Ok::<Bytes, IngestError>(body)]);
    let (schema, batches) = read_body(request.format, steps.read, chunks, CollectSink::default())
        .await
        .map_err(|error| describe(error, run.len()))?;
    let (schema, batches) = match steps.preprocess {
        Some(preprocess) => crate::preprocess::preprocess(preprocess, schema, batches).await?,
        None => (schema, batches),
    };
    let event_time = request.event_time.unwrap_or(steps.now);
    let batches =
        crate::error::each_numbered(&batches, |batch| with_event_time(batch, event_time))?;
    let mut schema = schema_with_event_time(&schema);
    let batches = match steps.schema {
        Some(existing) => {
            let keep_op = matches!(
                steps.merge,
                MergeStrategy::ChangelogStream(_) | MergeStrategy::UpsertStream(_)
            );
            let columns = DatasetColumns::new(existing, &schema, keep_op)?;
            let batches = crate::error::each_numbered(&batches, |batch| columns.conform(batch))?;
            schema = columns.schema().clone();
            batches
        }
        None => batches,
    };
    Ok(Part {
        schema,
        batches,
        members: run.iter().map(|m| m.index).collect(),
    })
}

/// An empty message is named as such rather than as an empty request body.
fn describe(error: IngestError, messages: usize) -> IngestError {
    match error {
        IngestError::EmptyBody if messages == 1 => {
            IngestError::BadValue("the message body holds no records".to_string())
        }
        other => other,
    }
}
