//! The coordinator side of a transform step (spec "Derivative Transformations"): read the
//! derivative's chain and its inputs' chains, decide which input records are new, run the engine,
//! store the output slice and the checkpoint under their hashes, and commit `ExecuteTransform`
//! (with `SetDataSchema` first on the first run) through the shared commit pipeline.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use weir_dataset::slices::{PreparedSlice, SliceWriter, prepare_slice, slice_schema};
use weir_dataset::table::TableSource;
use weir_dataset::{
    ChainSnapshot, CommitListener, CommitPipeline, CommitResult, CommitWriter, Dataset,
    DatasetStore, Prepared,
};
use weir_odf::{
    Checkpoint, DatasetId, DatasetKind, DatasetRef, ExecuteTransform, ExecuteTransformInput,
    MetadataEvent, Multihash, OffsetInterval, SetDataSchema, SetTransform, Transform,
};

use crate::engine::{
    Maintenance, OutputRecords, SharedEngine, TransformRequest, TransformRequestInput,
};
use crate::error::TransformError;

/// Runs transform steps of derivative datasets in one store.
#[derive(Clone)]
pub struct Transformer {
    pub store: DatasetStore,
    pub engine: SharedEngine,
    pub max_commit_attempts: u32,
    pub listeners: Vec<Arc<dyn CommitListener>>,
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepOutcome {
    /// The new head, when a block was committed.
    pub new_head: Option<Multihash>,
    /// Output records the step added (retractions and corrections included).
    pub num_records: u64,
    /// How the step was computed, when one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<Maintenance>,
}

impl Transformer {
    pub fn new(store: DatasetStore, engine: SharedEngine) -> Self {
        Self {
            store,
            engine,
            max_commit_attempts: 10,
            listeners: Vec::new(),
        }
    }

    /// Runs the next step of `dataset_id`: none when its inputs are up to date.
    pub async fn run_step(&self, dataset_id: &DatasetId) -> Result<StepOutcome, TransformError> {
        let dataset = self.store.dataset(dataset_id);
        let chain = dataset.load_chain(None).await?;
        let mut pipeline = CommitPipeline::new(self.max_commit_attempts);
        for listener in &self.listeners {
            pipeline = pipeline.with_listener(listener.clone());
        }
        let mut writer = StepWriter { transformer: self };
        pipeline.commit(&dataset, chain, &mut writer).await
    }

    /// Whether a step now would find nothing new in the inputs.
    pub async fn is_up_to_date(&self, dataset_id: &DatasetId) -> Result<bool, TransformError> {
        let chain = self.store.dataset(dataset_id).load_chain(None).await?;
        Ok(self.plan_step(&chain, dataset_id).await?.is_none())
    }

    /// Plans the step after `chain`'s head: `None` when no input has anything new.
    pub async fn plan_step(
        &self,
        chain: &ChainSnapshot,
        dataset_id: &DatasetId,
    ) -> Result<Option<PlannedStep>, TransformError> {
        if chain.state.dataset_kind() != Some(DatasetKind::Derivative) {
            return Err(TransformError::NotDerivative);
        }
        let transform = latest_transform(chain).ok_or(TransformError::NoTransform)?;
        let Transform::Sql(sql) = &transform.transform;
        let processed = processed_inputs(chain);
        let mut inputs = Vec::with_capacity(transform.inputs.len());
        let mut query_inputs = Vec::with_capacity(transform.inputs.len());
        let mut watermark: Option<Option<DateTime<Utc>>> = None;
        let mut anything_new = false;
        for input in &transform.inputs {
            let alias = input
                .alias
                .clone()
                .unwrap_or_else(|| input.dataset_ref.to_string());
            let DatasetRef::Id(input_id) = &input.dataset_ref else {
                return Err(TransformError::UnresolvedInput { alias });
            };
            let input_chain = self.store.dataset(input_id).load_chain(None).await?;
            if input_chain.head.is_none() {
                return Err(TransformError::InputNotFound { alias });
            }
            let seen = processed.get(input_id).cloned().unwrap_or_default();
            if let Some(seen_block) = seen.block
                && !input_chain
                    .blocks
                    .iter()
                    .any(|(hash, _)| *hash == seen_block)
            {
                return Err(TransformError::InputRewritten {
                    alias,
                    dataset_id: *input_id,
                    block: seen_block,
                });
            }
            let head = input_chain.head.as_ref().map(|head| head.hash);
            let last = input_chain.state.last_offset();
            let new_offset = last.filter(|last| seen.offset.is_none_or(|seen| *last > seen));
            let Some(request_input) =
                request_input(*input_id, alias, &input_chain, seen.offset, new_offset)
            else {
                // No schema yet, so no records: nothing to compute from this input.
                return Ok(None);
            };
            anything_new |= new_offset.is_some();
            watermark = Some(match (watermark, input_chain.state.watermark()) {
                (None, mark) => mark,
                (Some(Some(a)), Some(b)) => Some(a.min(b)),
                _ => None,
            });
            query_inputs.push(ExecuteTransformInput {
                dataset_id: *input_id,
                prev_block_hash: seen.block,
                new_block_hash: (head != seen.block).then_some(head).flatten(),
                prev_offset: seen.offset,
                new_offset,
            });
            inputs.push(request_input);
        }
        let new_watermark = chain.advanced_watermark(watermark.flatten());
        if !anything_new && new_watermark == chain.state.watermark() {
            return Ok(None);
        }
        let system_time = chain.next_system_time();
        let request = TransformRequest {
            dataset_id: *dataset_id,
            dataset_alias: dataset_id.to_string(),
            system_time,
            transform: sql.clone(),
            query_inputs: inputs,
            next_offset: chain.next_offset(),
            prev_checkpoint: chain.state.last_checkpoint().copied(),
        };
        Ok(Some(PlannedStep {
            request,
            query_inputs,
            new_watermark,
        }))
    }
}

/// A step to run: the engine's request, and what the block will record of it.
pub struct PlannedStep {
    pub request: TransformRequest,
    pub query_inputs: Vec<ExecuteTransformInput>,
    pub new_watermark: Option<DateTime<Utc>>,
}

/// The newest `SetTransform` of a chain.
pub fn latest_transform(chain: &ChainSnapshot) -> Option<&SetTransform> {
    chain
        .blocks
        .iter()
        .find_map(|(_, block)| match &block.event {
            MetadataEvent::SetTransform(transform) => Some(transform),
            _ => None,
        })
}

/// How far earlier steps read an input: the last block and offset they incorporated.
#[derive(Debug, Clone, Default)]
struct Seen {
    block: Option<Multihash>,
    offset: Option<u64>,
}

fn processed_inputs(chain: &ChainSnapshot) -> HashMap<DatasetId, Seen> {
    let mut seen: HashMap<DatasetId, Seen> = HashMap::new();
    for (_, block) in &chain.blocks {
        let MetadataEvent::ExecuteTransform(execute) = &block.event else {
            continue;
        };
        for input in &execute.query_inputs {
            let entry = seen.entry(input.dataset_id).or_default();
            if entry.block.is_none() {
                entry.block = input.new_block_hash.or(input.prev_block_hash);
            }
            if entry.offset.is_none() {
                entry.offset = input.new_offset.or(input.prev_offset);
            }
        }
    }
    seen
}

/// The engine's records with offsets from `next_offset` and the step's system time, as a slice
/// (hashed, not stored yet); `None` when there are none. Records that the engine is still
/// computing are encoded on a thread of their own as they come, so computing and encoding
/// overlap.
pub(crate) async fn output_slice(
    records: OutputRecords,
    next_offset: u64,
    system_time: DateTime<Utc>,
) -> Result<Option<PreparedSlice>, TransformError> {
    let join = |error: tokio::task::JoinError| TransformError::Join(error.to_string());
    let mut stream = match records {
        OutputRecords::Batches(records) => {
            return tokio::task::spawn_blocking(move || {
                prepare_slice(&records, next_offset, system_time, None)
            })
            .await
            .map_err(join)?
            .map_err(TransformError::from);
        }
        OutputRecords::Stream(stream) => stream,
    };
    let (sender, receiver) = std::sync::mpsc::sync_channel::<arrow::array::RecordBatch>(4);
    let writer = tokio::task::spawn_blocking(move || {
        let mut writer = SliceWriter::new(next_offset, system_time, None);
        for batch in receiver {
            writer.write(&batch)?;
        }
        writer.finish()
    });
    let mut failed = None;
    while let Some(batch) = futures::StreamExt::next(&mut stream).await {
        match batch {
            // A closed channel means the writer failed; its error is returned below.
            Ok(batch) => {
                if sender.send(batch).is_err() {
                    break;
                }
            }
            Err(error) => {
                failed = Some(error);
                break;
            }
        }
    }
    drop(sender);
    let slice = writer.await.map_err(join)?;
    if let Some(error) = failed {
        return Err(error.into());
    }
    slice.map_err(TransformError::from)
}

/// The engine's view of one input that earlier steps read up to `prev_offset` and this step
/// reads up to `new_offset` (none: nothing new); `None` while the input has no schema.
pub(crate) fn request_input(
    dataset_id: DatasetId,
    alias: String,
    chain: &ChainSnapshot,
    prev_offset: Option<u64>,
    new_offset: Option<u64>,
) -> Option<TransformRequestInput> {
    let source = TableSource::from_blocks(&chain.blocks).ok()?;
    let offset_interval = new_offset.map(|end| OffsetInterval {
        start: prev_offset.map_or(0, |offset| offset + 1),
        end,
    });
    Some(TransformRequestInput {
        dataset_id,
        dataset_alias: alias.clone(),
        query_alias: alias,
        data_files: data_files(chain, new_offset.or(prev_offset)),
        offset_interval,
        schema: source.schema,
    })
}

/// Data files of an input chain up to offset `last`, oldest first.
fn data_files(chain: &ChainSnapshot, last: Option<u64>) -> Vec<Multihash> {
    let Some(last) = last else {
        return Vec::new();
    };
    chain
        .blocks
        .iter()
        .rev()
        .filter_map(|(_, block)| match &block.event {
            MetadataEvent::AddData(event) => event.new_data.as_ref(),
            MetadataEvent::ExecuteTransform(event) => event.new_data.as_ref(),
            _ => None,
        })
        .filter(|slice| slice.offset_interval.end <= last)
        .map(|slice| slice.physical_hash)
        .collect()
}

/// `SetDataSchema` for the first output, nothing when the chain already has the same schema,
/// and an error when the query's output columns changed.
fn schema_event(
    chain: &ChainSnapshot,
    output_schema: &arrow::datatypes::Schema,
) -> Result<Option<MetadataEvent>, TransformError> {
    let data_fields: Vec<_> = output_schema
        .fields()
        .iter()
        .filter(|f| f.name() != weir_dataset::slices::EVENT_TIME_COLUMN)
        .cloned()
        .collect();
    let expected_schema = slice_schema(&data_fields);
    let schema = weir_dataset::schema::schema_from_arrow(&expected_schema)
        .map_err(|error| TransformError::OutputSchema(error.to_string()))?;
    match chain.data_schema() {
        None => Ok(Some(MetadataEvent::SetDataSchema(SetDataSchema {
            raw_arrow_schema: None,
            schema: Some(schema),
        }))),
        Some(existing) if *existing == schema => Ok(None),
        Some(_) => Err(TransformError::OutputSchema(
            "the query's output columns differ from the dataset's schema".to_string(),
        )),
    }
}

/// A step's side of the commit pipeline: each attempt plans and computes after the head it is
/// given, so a step that lost a race is computed again on top of the winner.
struct StepWriter<'a> {
    transformer: &'a Transformer,
}

#[async_trait::async_trait]
impl CommitWriter for StepWriter<'_> {
    type Staged = (u64, Maintenance);
    type Output = StepOutcome;
    type Error = TransformError;

    async fn prepare(
        &mut self,
        dataset: &Dataset,
        chain: &ChainSnapshot,
    ) -> Result<Option<Prepared<(u64, Maintenance)>>, TransformError> {
        let Some(PlannedStep {
            request,
            query_inputs,
            new_watermark,
        }) = self.transformer.plan_step(chain, dataset.id()).await?
        else {
            return Ok(None);
        };
        let system_time = request.system_time;
        let next_offset = request.next_offset;
        let started = std::time::Instant::now();
        let output = self
            .transformer
            .engine
            .execute_transform(&self.transformer.store, request)
            .await?;
        let mut events = Vec::with_capacity(2);
        match &output.schema {
            Some(output_schema) => {
                if let Some(event) = schema_event(chain, output_schema)? {
                    events.push(event);
                }
            }
            None if matches!(&output.records, OutputRecords::Batches(b) if b.is_empty()) => {}
            None => {
                return Err(TransformError::OutputSchema(
                    "the engine returned records without their schema".to_string(),
                ));
            }
        }
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "transform step: engine done"
        );
        let slice = output_slice(output.records, next_offset, system_time).await?;
        let mut num_records = 0;
        let new_data = match slice {
            Some(mut slice) => {
                dataset.put_slice(&mut slice).await?;
                num_records = slice.offset_interval.len();
                Some(slice.data_slice())
            }
            None => None,
        };
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "transform step: slice stored"
        );
        let size = output.checkpoint.len() as u64;
        let checkpoint = dataset.put_checkpoint(output.checkpoint).await?;
        events.push(MetadataEvent::ExecuteTransform(ExecuteTransform {
            query_inputs,
            prev_checkpoint: chain.state.last_checkpoint().copied(),
            prev_offset: chain.state.last_offset(),
            new_data,
            new_checkpoint: Some(Checkpoint {
                physical_hash: checkpoint,
                size,
            }),
            new_watermark,
        }));
        Ok(Some(Prepared {
            events,
            system_time,
            staged: (num_records, output.maintenance),
        }))
    }

    fn committed(
        &mut self,
        result: &CommitResult,
        (num_records, maintenance): (u64, Maintenance),
    ) -> StepOutcome {
        StepOutcome {
            new_head: Some(result.new_head),
            num_records,
            maintenance: Some(maintenance),
        }
    }

    fn unchanged(&mut self, _chain: &ChainSnapshot) -> StepOutcome {
        StepOutcome {
            new_head: None,
            num_records: 0,
            maintenance: None,
        }
    }
}
