//! The push ingest pipeline: resolve, read, preprocess, merge, write the slice, commit.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, RecordBatch, TimestampMillisecondArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use datafusion::prelude::SessionContext;
use futures::{Stream, StreamExt};
use serde::Serialize;
use weir_dataset::slices::{
    EVENT_TIME_COLUMN, OFFSET_COLUMN, OPERATION_TYPE_COLUMN, SYSTEM_TIME_COLUMN, prepare_slice,
};
use weir_dataset::{ChainSnapshot, CommitError, Dataset, DatasetStore};
use weir_odf::{
    AccountName, AddData, DataSlice, DatasetName, ExtraAttributes, MergeStrategy, MetadataEvent,
    Multihash, OffsetInterval, SetDataSchema,
};

use weir_function_runtime::{
    AccessDecision, AccessPolicy, Caller, CommitNotifier, DatasetAction, OpenAccess,
};

use crate::config::IngestConfig;
use crate::error::IngestError;
use crate::merge::{MergeInput, merge};
use crate::read::{MediaFormat, RecordsReader, conform};
use crate::source::{IDEMPOTENCY_KEY_ATTRIBUTE, find_previous_ingest, push_target};

/// Everything the ingest function builds once per cold start.
pub struct IngestContext {
    pub store: DatasetStore,
    pub config: IngestConfig,
    /// Who may write where; `OpenAccess` when the function runs without a control plane.
    pub access: Arc<dyn AccessPolicy>,
    /// Told about every commit (the control plane indexes it); none when running alone.
    pub notifier: Option<Arc<dyn CommitNotifier>>,
}

impl IngestContext {
    /// A context without a control plane: everyone may write, nobody is notified.
    pub fn standalone(store: DatasetStore, config: IngestConfig) -> Self {
        Self {
            store,
            config,
            access: Arc::new(OpenAccess),
            notifier: None,
        }
    }
}

pub struct IngestRequest {
    pub caller: Caller,
    pub account: String,
    pub dataset: String,
    pub source_name: Option<String>,
    pub format: MediaFormat,
    /// Event time for records that carry none (`odf-event-time` header).
    pub event_time: Option<DateTime<Utc>>,
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct IngestResponse {
    pub old_head: Option<Multihash>,
    pub new_head: Option<Multihash>,
    pub num_records: u64,
    pub offset_interval: Option<OffsetInterval>,
}

impl IngestContext {
    async fn resolve(&self, request: &IngestRequest) -> Result<Dataset, IngestError> {
        let not_found =
            || IngestError::DatasetNotFound(format!("{}/{}", request.account, request.dataset));
        let account: AccountName = request.account.parse().map_err(|_| not_found())?;
        let name: DatasetName = request.dataset.parse().map_err(|_| not_found())?;
        let id = self
            .store
            .resolve_alias(&account, &name)
            .await?
            .ok_or_else(not_found)?;
        let decision = self
            .access
            .decide(&request.caller, &id.to_did_string(), DatasetAction::Write)
            .await
            .map_err(IngestError::Access)?;
        match decision {
            AccessDecision::Allowed => Ok(self.store.dataset(&id)),
            AccessDecision::Hidden => Err(not_found()),
            AccessDecision::Forbidden => Err(IngestError::Forbidden(format!(
                "pushing to `{}/{}` needs the editor role",
                request.account, request.dataset
            ))),
        }
    }

    /// Runs one push request. The body stream yields chunks as they arrive.
    pub async fn ingest<S>(
        &self,
        request: IngestRequest,
        body: S,
    ) -> Result<IngestResponse, IngestError>
    where
        S: Stream<Item = Result<Bytes, IngestError>> + Send,
    {
        let dataset = self.resolve(&request).await?;
        let mut chain = load_chain(&dataset).await?;
        if let Some(previous) = request
            .idempotency_key
            .as_deref()
            .and_then(|key| find_previous_ingest(&chain, key))
        {
            return Ok(replayed(previous));
        }
        let target = push_target(&chain)?;
        let source = target
            .select(&request.dataset, request.source_name.as_deref())?
            .clone();

        let mut reader = RecordsReader::new(request.format, &source.read)?;
        let mut body = std::pin::pin!(body);
        let mut received = 0usize;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            received += chunk.len();
            reader.push(&chunk)?;
        }
        if received == 0 {
            return Err(IngestError::EmptyBody);
        }
        let (mut schema, mut batches) = reader.finish()?;
        if let Some(preprocess) = &source.preprocess {
            (schema, batches) = crate::preprocess::preprocess(preprocess, schema, batches).await?;
        }
        let default_event_time = request.event_time.unwrap_or_else(Utc::now);
        let (schema, batches) = with_event_time(&schema, batches, default_event_time)?;
        let keep_op = matches!(
            source.merge,
            MergeStrategy::ChangelogStream(_) | MergeStrategy::UpsertStream(_)
        );

        for attempt in 1..=self.config.max_commit_attempts {
            // Block times never go backwards, even when another writer's clock ran ahead.
            let system_time = chain
                .state
                .head_system_time()
                .map_or_else(Utc::now, |head| head.max(Utc::now()));
            let target = push_target(&chain)?;
            let (schema, batches) = match &target.schema {
                Some(existing) => conform_to_dataset(existing, &schema, &batches, keep_op)?,
                None => (schema.clone(), batches.clone()),
            };
            let previous = match (&chain.head, chain.state.last_offset()) {
                (Some(head), Some(_)) => {
                    let session = SessionContext::new();
                    let table = weir_dataset::table::dataset_table(
                        &session,
                        &self.store,
                        &dataset,
                        Some(&head.hash),
                    )
                    .await
                    .map_err(|error| IngestError::Internal(error.to_string()))?;
                    Some(table)
                }
                _ => None,
            };
            let merged = merge(MergeInput {
                strategy: &source.merge,
                schema,
                batches,
                previous,
            })
            .await?;
            let start_offset = chain.state.last_offset().map_or(0, |offset| offset + 1);
            let Some(slice) =
                prepare_slice(&merged, start_offset, system_time, Some(default_event_time))?
            else {
                return Ok(IngestResponse {
                    old_head: chain.head.as_ref().map(|head| head.hash),
                    new_head: chain.head.as_ref().map(|head| head.hash),
                    num_records: 0,
                    offset_interval: None,
                });
            };
            let mut events = Vec::with_capacity(2);
            match &target.schema {
                None => {
                    let schema = weir_dataset::schema::schema_from_arrow(&slice.schema)
                        .map_err(|error| IngestError::BadValue(error.to_string()))?;
                    events.push(MetadataEvent::SetDataSchema(SetDataSchema {
                        raw_arrow_schema: None,
                        schema: Some(schema),
                    }));
                }
                Some(existing) => check_same_schema(existing, &slice.schema)?,
            }
            dataset.put_data(slice.bytes.clone()).await?;
            let watermark = match (chain.state.watermark(), slice.max_event_time) {
                (Some(previous), Some(new)) => Some(previous.max(new)),
                (previous, new) => previous.or(new),
            };
            let extra = request.idempotency_key.as_ref().map(|key| {
                let mut attributes = ExtraAttributes::default();
                attributes.0.insert(
                    IDEMPOTENCY_KEY_ATTRIBUTE.to_string(),
                    serde_json::Value::String(key.clone()),
                );
                attributes
            });
            events.push(MetadataEvent::AddData(AddData {
                prev_checkpoint: chain.state.last_checkpoint().copied(),
                prev_offset: chain.state.last_offset(),
                new_data: Some(DataSlice {
                    logical_hash: slice.logical_hash,
                    physical_hash: slice.physical_hash,
                    offset_interval: slice.offset_interval.clone(),
                    size: slice.bytes.len() as u64,
                }),
                new_checkpoint: None,
                new_watermark: watermark,
                new_source_state: None,
                extra,
            }));
            match dataset
                .commit_many(chain.head.as_ref(), &chain.state, events, system_time)
                .await
            {
                Ok(result) => {
                    if let Some(notifier) = &self.notifier {
                        let sequence_number = result
                            .blocks
                            .last()
                            .map(|(_, block)| block.sequence_number)
                            .unwrap_or_default();
                        notifier
                            .block_committed(
                                &request.caller,
                                &dataset.id().to_did_string(),
                                &result.new_head.to_string(),
                                sequence_number,
                            )
                            .await;
                    }
                    tracing::info!(
                        dataset_id = %dataset.id(),
                        new_head = %result.new_head,
                        records = slice.offset_interval.len(),
                        attempt,
                        "ingested"
                    );
                    return Ok(IngestResponse {
                        old_head: result.old_head,
                        new_head: Some(result.new_head),
                        num_records: slice.offset_interval.len(),
                        offset_interval: Some(slice.offset_interval),
                    });
                }
                Err(CommitError::Conflict { .. }) => {
                    tracing::debug!(dataset_id = %dataset.id(), attempt, "lost commit race, retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                    chain = load_chain(&dataset).await?;
                    if let Some(previous) = request
                        .idempotency_key
                        .as_deref()
                        .and_then(|key| find_previous_ingest(&chain, key))
                    {
                        return Ok(replayed(previous));
                    }
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(IngestError::TooManyConflicts {
            attempts: self.config.max_commit_attempts,
        })
    }
}

async fn load_chain(dataset: &Dataset) -> Result<ChainSnapshot, IngestError> {
    dataset.load_chain(None).await.map_err(IngestError::from)
}

fn replayed(previous: crate::source::PreviousIngest) -> IngestResponse {
    IngestResponse {
        old_head: previous.old_head,
        new_head: Some(previous.new_head),
        num_records: previous
            .offset_interval
            .as_ref()
            .map_or(0, OffsetInterval::len),
        offset_interval: previous.offset_interval,
    }
}

fn backoff(attempt: u32) -> Duration {
    let jitter =
        u64::from(std::process::id() % 7) + u64::from(Utc::now().timestamp_subsec_millis() % 13);
    Duration::from_millis(5 * u64::from(attempt) + jitter)
}

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// Ensures an `event_time` column (ms, UTC): cast when present, `default` when absent.
fn with_event_time(
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
    default: DateTime<Utc>,
) -> Result<(SchemaRef, Vec<RecordBatch>), IngestError> {
    for reserved in [OFFSET_COLUMN, SYSTEM_TIME_COLUMN] {
        if schema.field_with_name(reserved).is_ok() {
            return Err(IngestError::BadValue(format!(
                "column `{reserved}` is reserved for the system"
            )));
        }
    }
    let mut fields: Vec<Arc<Field>> = vec![Arc::new(Field::new(
        EVENT_TIME_COLUMN,
        timestamp_type(),
        false,
    ))];
    fields.extend(
        schema
            .fields()
            .iter()
            .filter(|f| f.name() != EVENT_TIME_COLUMN)
            .cloned(),
    );
    let new_schema = Arc::new(Schema::new(fields));
    let mut out = Vec::with_capacity(batches.len());
    for batch in batches {
        let event_time: ArrayRef = match batch.column_by_name(EVENT_TIME_COLUMN) {
            Some(column) => {
                let cast = cast(column, &timestamp_type()).map_err(|error| {
                    IngestError::BadValue(format!("column `{EVENT_TIME_COLUMN}`: {error}"))
                })?;
                if cast.null_count() > column.null_count() {
                    return Err(IngestError::BadValue(format!(
                        "column `{EVENT_TIME_COLUMN}`: values are not timestamps"
                    )));
                }
                if cast.null_count() > 0 {
                    return Err(IngestError::BadValue(format!(
                        "column `{EVENT_TIME_COLUMN}` must not contain nulls"
                    )));
                }
                cast
            }
            None => Arc::new(
                TimestampMillisecondArray::from_value(default.timestamp_millis(), batch.num_rows())
                    .with_timezone("UTC"),
            ),
        };
        let mut columns = vec![event_time];
        for field in schema
            .fields()
            .iter()
            .filter(|f| f.name() != EVENT_TIME_COLUMN)
        {
            columns.push(
                batch
                    .column_by_name(field.name())
                    .expect("field of the batch schema")
                    .clone(),
            );
        }
        out.push(
            RecordBatch::try_new(new_schema.clone(), columns)
                .map_err(|error| IngestError::BadValue(error.to_string()))?,
        );
    }
    Ok((new_schema, out))
}

/// Casts new records to the dataset's columns (minus system columns), naming misfits.
fn conform_to_dataset(
    existing: &weir_odf::DataSchema,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    keep_op: bool,
) -> Result<(SchemaRef, Vec<RecordBatch>), IngestError> {
    let arrow = weir_dataset::schema::schema_to_arrow(existing)
        .map_err(|error| IngestError::Internal(error.to_string()))?;
    let mut fields: Vec<Arc<Field>> = Vec::new();
    if keep_op && let Ok(op) = schema.field_with_name(OPERATION_TYPE_COLUMN) {
        fields.push(Arc::new(op.clone()));
    }
    for field in arrow.fields() {
        if matches!(
            field.name().as_str(),
            OFFSET_COLUMN | OPERATION_TYPE_COLUMN | SYSTEM_TIME_COLUMN
        ) {
            continue;
        }
        fields.push(field.clone());
    }
    for field in schema.fields() {
        let known = field.name() == OPERATION_TYPE_COLUMN
            || fields.iter().any(|f| f.name() == field.name());
        if !known {
            return Err(IngestError::BadValue(format!(
                "column `{}` is not in the dataset schema",
                field.name()
            )));
        }
    }
    let target = Arc::new(Schema::new(fields));
    let conformed = batches
        .iter()
        .map(|batch| conform(batch, &target))
        .collect::<Result<Vec<_>, _>>()?;
    let schema = conformed.first().map(|b| b.schema()).unwrap_or(target);
    Ok((schema, conformed))
}

/// The new slice must have exactly the dataset's columns and types.
fn check_same_schema(existing: &weir_odf::DataSchema, slice: &Schema) -> Result<(), IngestError> {
    let arrow = weir_dataset::schema::schema_to_arrow(existing)
        .map_err(|error| IngestError::Internal(error.to_string()))?;
    let describe = |schema: &Schema| {
        schema
            .fields()
            .iter()
            .map(|f| format!("{}: {}", f.name(), f.data_type()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let same = arrow.fields().len() == slice.fields().len()
        && arrow
            .fields()
            .iter()
            .zip(slice.fields())
            .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
    if !same {
        return Err(IngestError::BadValue(format!(
            "records do not match the dataset schema: expected [{}], got [{}]",
            describe(&arrow),
            describe(slice)
        )));
    }
    Ok(())
}
