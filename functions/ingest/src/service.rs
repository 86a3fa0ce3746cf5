//! The push ingest pipeline: resolve, read, preprocess, merge, write the slice, commit.
//!
//! Append and changelog pushes without a preprocess step are written to the slice while the
//! body arrives (`sink::SliceSink`); other strategies collect the records and merge them with
//! the dataset's history before writing.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use datafusion::prelude::SessionContext;
use futures::Stream;
use serde::Serialize;
use weir_dataset::slices::{
    OFFSET_COLUMN, PreparedSlice, SYSTEM_TIME_COLUMN, SliceData, prepare_slice, read_slice,
};
use weir_dataset::{
    ChainSnapshot, CommitListener, CommitPipeline, CommitResult, CommitWriter, Dataset,
    DatasetStore, Prepared,
};
use weir_odf::{
    AccountName, AddData, DataSchema, DatasetId, DatasetName, MergeStrategy, MetadataEvent,
    Multihash, OffsetInterval, ReadStep, SetDataSchema, SourceState, Transform,
};

use weir_function_runtime::{
    AccessDecision, AccessPolicy, Caller, CommitNotifier, DatasetAction, OpenAccess,
};

use crate::config::IngestConfig;
use crate::error::IngestError;
use crate::idempotency::Idempotency;
use crate::merge::{MergeInput, merge, merges_per_batch};
use crate::read::{MediaFormat, read_body};
use crate::records::{DatasetColumns, check_same_schema, schema_with_event_time, with_event_time};
use crate::sink::{CollectSink, SlicePlacement, SliceSink};
use crate::source::{find_previous_ingest, push_target};

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

/// What a source's records go through: a push source's or a polling source's steps.
pub(crate) struct SourceSteps {
    pub read: ReadStep,
    pub preprocess: Option<Transform>,
    pub merge: MergeStrategy,
}

/// Who commits, and what the block records besides the data: the push's idempotency key, or
/// the polling source's new state (a block holding that state means the data is in already).
pub(crate) struct Committer<'a> {
    pub caller: &'a Caller,
    pub idempotency: Option<&'a Idempotency>,
    pub source_state: Option<SourceState>,
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
        self.resolve_for_writing(&request.caller, &request.account, &request.dataset)
            .await
    }

    /// The one "resolve and authorize" step of every ingest: the dataset `account/dataset` if
    /// `caller` may write it; a dataset the caller may not see is not found.
    pub(crate) async fn resolve_for_writing(
        &self,
        caller: &Caller,
        account: &str,
        dataset: &str,
    ) -> Result<Dataset, IngestError> {
        let not_found = || IngestError::DatasetNotFound(format!("{account}/{dataset}"));
        let account_name: AccountName = account.parse().map_err(|_| not_found())?;
        let name: DatasetName = dataset.parse().map_err(|_| not_found())?;
        let id = self
            .store
            .resolve_alias(&account_name, &name)
            .await?
            .ok_or_else(not_found)?;
        let decision = self
            .access
            .decide(caller, &id.to_did_string(), DatasetAction::Write)
            .await
            .map_err(IngestError::Access)?;
        match decision {
            AccessDecision::Allowed => Ok(self.store.dataset(&id)),
            AccessDecision::Hidden => Err(not_found()),
            AccessDecision::Forbidden => Err(IngestError::Forbidden(format!(
                "pushing to `{account}/{dataset}` needs the editor role"
            ))),
        }
    }

    /// Commits records that were read already (with `event_time`), merged as `merge` says, after
    /// the chain's head: queue ingest's micro-batches.
    pub(crate) async fn commit_records(
        &self,
        dataset: &Dataset,
        chain: ChainSnapshot,
        merge: &MergeStrategy,
        (schema, batches): (SchemaRef, Vec<RecordBatch>),
        committer: Committer<'_>,
    ) -> Result<IngestResponse, IngestError> {
        let input = MergeInputRecords::Read { schema, batches };
        self.commit_with_retries(dataset, committer, merge, chain, input, None)
            .await
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
        let chain = load_chain(&dataset).await?;
        let idempotency = Idempotency::of(&request);
        let body = Idempotency::tap(idempotency.as_ref(), body);
        if let Some(idempotency) = &idempotency
            && let Some(previous) =
                find_previous_ingest(&chain, &idempotency.key, &idempotency.scope)
        {
            // The same key again: the same request is answered as the first time.
            crate::idempotency::drain(body).await?;
            return idempotency.replay(previous);
        }
        let target = push_target(&chain)?;
        let source = target
            .select(&request.dataset, request.source_name.as_deref())?
            .clone();
        let steps = SourceSteps {
            read: source.read,
            preprocess: source.preprocess,
            merge: source.merge,
        };
        let committer = Committer {
            caller: &request.caller,
            idempotency: idempotency.as_ref(),
            source_state: None,
        };
        let default_event_time = request.event_time.unwrap_or_else(Utc::now);
        self.ingest_records(
            &dataset,
            (chain, target.schema),
            &steps,
            (request.format, default_event_time),
            body,
            committer,
        )
        .await
    }

    /// Reads a body as `steps` say, merges its records and commits them after the chain's head
    /// (push and polling ingest alike). `schema` is the dataset's schema in `chain`, if set;
    /// `default_event_time` goes to records that carry none.
    pub(crate) async fn ingest_records<S>(
        &self,
        dataset: &Dataset,
        (chain, schema): (ChainSnapshot, Option<DataSchema>),
        steps: &SourceSteps,
        (format, default_event_time): (MediaFormat, DateTime<Utc>),
        body: S,
        committer: Committer<'_>,
    ) -> Result<IngestResponse, IngestError>
    where
        S: Stream<Item = Result<Bytes, IngestError>> + Send,
    {
        let streamed = steps.preprocess.is_none() && merges_per_batch(&steps.merge);

        // Records either become a slice while the body arrives, placed after the head loaded
        // above, or are collected for the merge against the dataset's history.
        let (input, written) = if streamed {
            let placement = placement_after(&chain);
            let sink = SliceSink::new(
                steps.merge.clone(),
                schema,
                default_event_time,
                placement,
                dataset.slice_upload_target(),
            );
            let (_, slice) = read_body(format, &steps.read, body, sink).await?;
            let Some(slice) = slice else {
                return Ok(unchanged(&chain));
            };
            (MergeInputRecords::InSlice, Some((slice, placement)))
        } else {
            let (schema, batches) =
                read_body(format, &steps.read, body, CollectSink::default()).await?;
            let (schema, batches) = match &steps.preprocess {
                Some(preprocess) => {
                    crate::preprocess::preprocess(preprocess, schema, batches).await?
                }
                None => (schema, batches),
            };
            let batches = crate::error::each_numbered(&batches, |batch| {
                with_event_time(batch, default_event_time)
            })?;
            let schema = schema_with_event_time(&schema);
            (MergeInputRecords::Read { schema, batches }, None)
        };

        // A large streamed slice waits in a staging object; unless a commit stores it, it goes.
        let staged = match &written {
            Some((slice, _)) => slice.data.clone(),
            None => SliceData::Stored,
        };
        let outcome = self
            .commit_with_retries(dataset, committer, &steps.merge, chain, input, written)
            .await;
        // Removing what a commit already moved is a no-op.
        if outcome.is_err()
            && let Err(error) = dataset.discard_staged(&staged).await
        {
            tracing::warn!(dataset_id = %dataset.id(), %error, "removing a staged slice failed");
        }
        outcome
    }

    /// Stores the slice and commits it after the chain's head through the shared pipeline; a
    /// lost race places the records again after the new head.
    async fn commit_with_retries(
        &self,
        dataset: &Dataset,
        committer: Committer<'_>,
        strategy: &MergeStrategy,
        chain: ChainSnapshot,
        input: MergeInputRecords,
        written: Option<(PreparedSlice, SlicePlacement)>,
    ) -> Result<IngestResponse, IngestError> {
        let mut pipeline = CommitPipeline::new(self.config.max_commit_attempts);
        if let Some(notifier) = &self.notifier {
            pipeline = pipeline.with_listener(Arc::new(NotifyAs {
                notifier: notifier.clone(),
                caller: committer.caller.clone(),
            }));
        }
        let mut writer = PushWriter {
            context: self,
            idempotency: committer.idempotency,
            source_state: committer.source_state,
            strategy,
            input,
            written,
        };
        pipeline.commit(dataset, chain, &mut writer).await
    }

    /// Conforms records to the dataset, merges them with its history and writes the slice that
    /// follows the chain's head; `None` when the merge leaves nothing to add.
    async fn merge_into_slice(
        &self,
        dataset: &Dataset,
        chain: &ChainSnapshot,
        dataset_schema: Option<&DataSchema>,
        strategy: &MergeStrategy,
        (schema, batches): (SchemaRef, Vec<RecordBatch>),
        placement: SlicePlacement,
    ) -> Result<Option<PreparedSlice>, IngestError> {
        let keep_op = matches!(
            strategy,
            MergeStrategy::ChangelogStream(_) | MergeStrategy::UpsertStream(_)
        );
        let (schema, batches) = match dataset_schema {
            Some(existing) => {
                let columns = DatasetColumns::new(existing, &schema, keep_op)?;
                let batches =
                    crate::error::each_numbered(&batches, |batch| columns.conform(batch))?;
                (columns.schema().clone(), batches)
            }
            None => (schema, batches),
        };
        // Strategies that take each record on its own never look at the history.
        let previous = match (&chain.head, chain.state.last_offset()) {
            _ if merges_per_batch(strategy) => None,
            (Some(head), Some(_)) => {
                let session = SessionContext::new();
                let table = weir_dataset::table::dataset_table(
                    &session,
                    &self.store,
                    dataset,
                    Some(&head.hash),
                )
                .await
                .map_err(|error| IngestError::Internal(error.to_string()))?;
                Some(table)
            }
            _ => None,
        };
        let merged = merge(MergeInput {
            strategy,
            schema,
            batches,
            previous,
        })
        .await?;
        let slice = tokio::task::spawn_blocking(move || {
            prepare_slice(&merged, placement.start_offset, placement.system_time, None)
        })
        .await
        .map_err(|error| IngestError::Internal(format!("writing the slice failed: {error}")))??;
        Ok(slice)
    }
}

/// A push's side of the commit pipeline.
struct PushWriter<'a> {
    context: &'a IngestContext,
    idempotency: Option<&'a Idempotency>,
    source_state: Option<SourceState>,
    strategy: &'a MergeStrategy,
    input: MergeInputRecords,
    /// The slice written while the body arrived, or by an attempt that lost a race.
    written: Option<(PreparedSlice, SlicePlacement)>,
}

#[async_trait::async_trait]
impl CommitWriter for PushWriter<'_> {
    type Staged = (PreparedSlice, SlicePlacement);
    type Output = IngestResponse;
    type Error = IngestError;

    fn already_committed(
        &self,
        chain: &ChainSnapshot,
    ) -> Result<Option<IngestResponse>, IngestError> {
        if let Some(state) = &self.source_state
            && crate::source::latest_source_state(chain, &state.source_name) == Some(state)
        {
            return Ok(Some(unchanged(chain)));
        }
        match self.idempotency {
            Some(idempotency) => {
                match find_previous_ingest(chain, &idempotency.key, &idempotency.scope) {
                    Some(previous) => idempotency.replay(previous).map(Some),
                    None => Ok(None),
                }
            }
            None => Ok(None),
        }
    }

    async fn prepare(
        &mut self,
        dataset: &Dataset,
        chain: &ChainSnapshot,
    ) -> Result<Option<Prepared<(PreparedSlice, SlicePlacement)>>, IngestError> {
        let target = push_target(chain)?;
        let (mut slice, placement) = match self.written.take() {
            Some((slice, at)) if fits(&at, chain) => (slice, at),
            stale => {
                // First attempt of a collected request, or a concurrent commit moved the head:
                // offsets and system time are assigned again after the new head.
                let (schema, batches) = match (&self.input, &stale) {
                    (MergeInputRecords::Read { schema, batches }, _) => {
                        (schema.clone(), batches.clone())
                    }
                    (MergeInputRecords::InSlice, Some((slice, _))) => {
                        records_of_slice(dataset, slice).await?
                    }
                    (MergeInputRecords::InSlice, None) => {
                        return Err(IngestError::Internal(
                            "streamed records were lost before the commit".to_string(),
                        ));
                    }
                };
                drop(stale);
                let placement = placement_after(chain);
                let Some(slice) = self
                    .context
                    .merge_into_slice(
                        dataset,
                        chain,
                        target.schema.as_ref(),
                        self.strategy,
                        (schema, batches),
                        placement,
                    )
                    .await?
                else {
                    return Ok(None);
                };
                (slice, placement)
            }
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
        dataset.put_slice(&mut slice).await?;
        let watermark = chain.advanced_watermark(slice.max_event_time);
        events.push(MetadataEvent::AddData(AddData {
            prev_checkpoint: chain.state.last_checkpoint().copied(),
            prev_offset: chain.state.last_offset(),
            new_data: Some(slice.data_slice()),
            new_checkpoint: None,
            new_watermark: watermark,
            new_source_state: self.source_state.clone(),
            extra: self.idempotency.map(Idempotency::extra),
        }));
        Ok(Some(Prepared {
            events,
            system_time: placement.system_time,
            staged: (slice, placement),
        }))
    }

    fn committed(
        &mut self,
        result: &CommitResult,
        (slice, _): (PreparedSlice, SlicePlacement),
    ) -> IngestResponse {
        tracing::info!(
            new_head = %result.new_head,
            records = slice.offset_interval.len(),
            "ingested"
        );
        IngestResponse {
            old_head: result.old_head,
            new_head: Some(result.new_head),
            num_records: slice.offset_interval.len(),
            offset_interval: Some(slice.offset_interval.clone()),
        }
    }

    fn unchanged(&mut self, chain: &ChainSnapshot) -> IngestResponse {
        unchanged(chain)
    }

    /// The slice is kept: if the new head leaves its place free it is committed as it is,
    /// otherwise its records are placed again.
    fn lost_race(&mut self, staged: (PreparedSlice, SlicePlacement)) {
        self.written = Some(staged);
    }
}

/// Tells the control plane about a push's commit, as the pusher.
struct NotifyAs {
    notifier: Arc<dyn CommitNotifier>,
    caller: Caller,
}

#[async_trait::async_trait]
impl CommitListener for NotifyAs {
    async fn committed(&self, dataset: &DatasetId, result: &CommitResult) {
        let sequence_number = result
            .blocks
            .last()
            .map(|(_, block)| block.sequence_number)
            .unwrap_or_default();
        self.notifier
            .block_committed(
                &self.caller,
                &dataset.to_did_string(),
                &result.new_head.to_string(),
                sequence_number,
            )
            .await;
    }
}

/// Where a request's records are kept until the commit.
enum MergeInputRecords {
    /// Read (and preprocessed) records with `event_time`, not merged yet.
    Read {
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    },
    /// Only in the slice written while the body arrived (strategies that merge per batch).
    InSlice,
}

/// The place right after the chain's head: next offset, and a system time that never goes
/// backwards, even when another writer's clock ran ahead.
fn placement_after(chain: &ChainSnapshot) -> SlicePlacement {
    SlicePlacement {
        start_offset: chain.next_offset(),
        system_time: chain.next_system_time(),
    }
}

/// Whether a slice written for `placement` can follow the chain's head as it is now.
fn fits(placement: &SlicePlacement, chain: &ChainSnapshot) -> bool {
    placement.start_offset == chain.next_offset()
        && chain
            .state
            .head_system_time()
            .is_none_or(|head| placement.system_time >= head)
}

/// The records of a written slice as they were before system columns were added.
async fn records_of_slice(
    dataset: &Dataset,
    slice: &PreparedSlice,
) -> Result<(SchemaRef, Vec<RecordBatch>), IngestError> {
    let batches = read_slice(dataset.slice_bytes(slice).await?)?;
    let keep: Vec<usize> = slice
        .schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| !matches!(f.name().as_str(), OFFSET_COLUMN | SYSTEM_TIME_COLUMN))
        .map(|(index, _)| index)
        .collect();
    let schema = Arc::new(
        slice
            .schema
            .project(&keep)
            .map_err(|error| IngestError::Internal(error.to_string()))?,
    );
    let batches = batches
        .iter()
        .map(|batch| batch.project(&keep))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| IngestError::Internal(error.to_string()))?;
    Ok((schema, batches))
}

fn unchanged(chain: &ChainSnapshot) -> IngestResponse {
    IngestResponse {
        old_head: chain.head.as_ref().map(|head| head.hash),
        new_head: chain.head.as_ref().map(|head| head.hash),
        num_records: 0,
        offset_interval: None,
    }
}

pub(crate) async fn load_chain(dataset: &Dataset) -> Result<ChainSnapshot, IngestError> {
    dataset.load_chain(None).await.map_err(IngestError::from)
}
