//! The coordinator side: an [`Engine`] that runs each step on a remote ODF engine. The request
//! names the inputs' own data files; a schema file per input, the output and the new checkpoint
//! go to a scratch prefix of the step, which is deleted once the step is read back.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use tonic::transport::{Channel, Endpoint};
use weir_dataset::DatasetStore;
use weir_dataset::slices::{OFFSET_COLUMN, OPERATION_TYPE_COLUMN, SYSTEM_TIME_COLUMN};
use weir_odf::engine::{
    DatasetVocabulary, EngineMessage, RawQueryRequest, RawQueryResponse, RawQueryResponseRoot,
    TransformRequest as WireRequest, TransformRequestInput as WireInput, TransformResponse,
    TransformResponseRoot, TransformResponseSuccess,
};
use weir_odf::{Transform, TransformSql};

use super::paths;
use super::proto;
use crate::engine::{
    Engine, EngineError, EngineIdentity, Maintenance, OutputRecords, TransformOutput,
    TransformRequest,
};

/// A remote engine reached over gRPC (the ODF engine protocol).
#[derive(Clone)]
pub struct GrpcEngine {
    channel: Channel,
    identity: EngineIdentity,
}

#[derive(Debug, thiserror::Error)]
#[error("the engine endpoint `{endpoint}` is not a valid URL: {source}")]
pub struct EndpointError {
    endpoint: String,
    #[source]
    source: tonic::transport::Error,
}

fn internal(message: impl Into<String>) -> EngineError {
    EngineError::Internal {
        message: message.into(),
        source: None,
    }
}

fn storage(error: object_store::Error) -> EngineError {
    EngineError::internal(error)
}

impl GrpcEngine {
    /// An engine at `endpoint` (for example `http://engine:5544`), connected on first use and
    /// reconnected after failures. `identity` is what Weir records about it.
    pub fn new(endpoint: &str, identity: EngineIdentity) -> Result<Self, EndpointError> {
        let channel = Endpoint::from_shared(endpoint.to_string())
            .map_err(|source| EndpointError {
                endpoint: endpoint.to_string(),
                source,
            })?
            .connect_timeout(std::time::Duration::from_secs(10))
            .connect_lazy();
        Ok(Self { channel, identity })
    }

    fn client(&self) -> proto::engine_client::EngineClient<Channel> {
        proto::engine_client::EngineClient::new(self.channel.clone())
            .max_decoding_message_size(16 * 1024 * 1024)
    }

    async fn call_transform(
        &self,
        request: &WireRequest,
    ) -> Result<TransformResponseSuccess, EngineError> {
        let message = proto::TransformRequest {
            flatbuffer: request.encode_message(),
        };
        let mut stream = self
            .client()
            .execute_transform(message)
            .await
            .map_err(EngineError::internal)?
            .into_inner();
        while let Some(message) = stream.message().await.map_err(EngineError::internal)? {
            let root = TransformResponseRoot::decode_message(&message.flatbuffer)
                .map_err(EngineError::internal)?;
            match root.value {
                TransformResponse::Progress(_) => continue,
                TransformResponse::Success(success) => return Ok(success),
                TransformResponse::InvalidQuery(invalid) => {
                    return Err(EngineError::InvalidQuery(invalid.message));
                }
                TransformResponse::InternalError(error) => {
                    return Err(internal(format!("the engine failed: {}", error.message)));
                }
            }
        }
        Err(internal(
            "the engine closed its response stream without a result",
        ))
    }

    /// Runs `sql` over Parquet files in the scratch prefix of `store` (table `input`), writing
    /// the result to `output` there; returns the number of records written.
    pub async fn execute_raw_query(
        &self,
        store: &DatasetStore,
        inputs: &[Path],
        sql: &TransformSql,
        output: &Path,
    ) -> Result<u64, EngineError> {
        let request = RawQueryRequest {
            input_data_paths: inputs.iter().map(|key| paths::url_of(store, key)).collect(),
            transform: Transform::Sql(sql.clone()),
            output_data_path: paths::url_of(store, output),
        };
        let message = proto::RawQueryRequest {
            flatbuffer: request.encode_message(),
        };
        let mut stream = self
            .client()
            .execute_raw_query(message)
            .await
            .map_err(EngineError::internal)?
            .into_inner();
        while let Some(message) = stream.message().await.map_err(EngineError::internal)? {
            let root = RawQueryResponseRoot::decode_message(&message.flatbuffer)
                .map_err(EngineError::internal)?;
            match root.value {
                RawQueryResponse::Progress(_) => continue,
                RawQueryResponse::Success(success) => return Ok(success.num_records),
                RawQueryResponse::InvalidQuery(invalid) => {
                    return Err(EngineError::InvalidQuery(invalid.message));
                }
                RawQueryResponse::InternalError(error) => {
                    return Err(internal(format!("the engine failed: {}", error.message)));
                }
            }
        }
        Err(internal(
            "the engine closed its response stream without a result",
        ))
    }
}

/// The scratch objects of one step, deleted when the step is read back (or failed).
struct Scratch {
    objects: Arc<dyn ObjectStore>,
    root: Path,
    written: Vec<Path>,
}

impl Scratch {
    fn new(store: &DatasetStore) -> Self {
        Self {
            objects: store.object_store(),
            root: paths::scratch_root(store).join(uuid::Uuid::new_v4().to_string()),
            written: Vec::new(),
        }
    }

    fn key(&mut self, name: &str) -> Path {
        let key = self.root.clone().join(name);
        self.written.push(key.clone());
        key
    }

    async fn get(&self, key: &Path) -> Result<Option<Bytes>, EngineError> {
        match self.objects.get(key).await {
            Ok(result) => Ok(Some(result.bytes().await.map_err(storage)?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(storage(error)),
        }
    }

    async fn delete(self) {
        for key in &self.written {
            match self.objects.delete(key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => {
                    tracing::warn!(%error, %key, "could not delete an engine scratch file")
                }
            }
        }
    }
}

/// Reads the engine's output file back as the coordinator wants it: `op`, `event_time` and the
/// data columns, after checking that its offsets are the ones asked for.
fn read_output(
    bytes: Bytes,
    success: &TransformResponseSuccess,
    next_offset: u64,
) -> Result<(SchemaRef, Vec<RecordBatch>), EngineError> {
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(EngineError::internal)?;
    let file_schema = reader.schema().clone();
    let batches = reader
        .build()
        .map_err(EngineError::internal)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(EngineError::internal)?;
    let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    match &success.new_offset_interval {
        Some(interval) if interval.start == next_offset && interval.len() == rows => {}
        None if rows == 0 => {}
        other => {
            return Err(internal(format!(
                "the engine wrote {rows} records but reported offsets {other:?} (expected from {next_offset})"
            )));
        }
    }
    if file_schema.field_with_name(OPERATION_TYPE_COLUMN).is_err() {
        return Err(internal("the engine's output has no `op` column"));
    }
    let keep: Vec<usize> = file_schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, field)| !matches!(field.name().as_str(), OFFSET_COLUMN | SYSTEM_TIME_COLUMN))
        .map(|(index, _)| index)
        .collect();
    let records = batches
        .iter()
        .map(|batch| batch.project(&keep))
        .collect::<Result<Vec<_>, _>>()
        .map_err(EngineError::internal)?;
    let query_schema = Schema::new(
        file_schema
            .fields()
            .iter()
            .filter(|field| {
                !matches!(
                    field.name().as_str(),
                    OFFSET_COLUMN | OPERATION_TYPE_COLUMN | SYSTEM_TIME_COLUMN
                )
            })
            .cloned()
            .collect::<Vec<_>>(),
    );
    Ok((Arc::new(query_schema), records))
}

#[async_trait::async_trait]
impl Engine for GrpcEngine {
    fn identity(&self) -> EngineIdentity {
        self.identity.clone()
    }

    async fn execute_transform(
        &self,
        store: &DatasetStore,
        request: TransformRequest,
    ) -> Result<TransformOutput, EngineError> {
        let mut scratch = Scratch::new(store);
        let result = self.run(store, request, &mut scratch).await;
        scratch.delete().await;
        result
    }
}

impl GrpcEngine {
    async fn run(
        &self,
        store: &DatasetStore,
        request: TransformRequest,
        scratch: &mut Scratch,
    ) -> Result<TransformOutput, EngineError> {
        let mut query_inputs = Vec::with_capacity(request.query_inputs.len());
        for (index, input) in request.query_inputs.iter().enumerate() {
            let schema_key = scratch.key(&format!("schema-{index}.parquet"));
            scratch
                .objects
                .put(
                    &schema_key,
                    super::parquet_file(&input.schema, &[])
                        .map_err(EngineError::internal)?
                        .into(),
                )
                .await
                .map_err(storage)?;
            let layout = store.dataset(&input.dataset_id).layout().clone();
            query_inputs.push(WireInput {
                dataset_id: input.dataset_id,
                dataset_alias: input.dataset_alias.clone(),
                query_alias: input.query_alias.clone(),
                vocab: DatasetVocabulary::default(),
                offset_interval: input.offset_interval.clone(),
                data_paths: input
                    .data_files
                    .iter()
                    .map(|hash| paths::url_of(store, &layout.data(hash)))
                    .collect(),
                schema_file: paths::url_of(store, &schema_key),
                explicit_watermarks: Vec::new(),
            });
        }
        let layout = store.dataset(&request.dataset_id).layout().clone();
        let data_key = scratch.key("data.parquet");
        let checkpoint_key = scratch.key("checkpoint");
        let wire = WireRequest {
            dataset_id: request.dataset_id,
            dataset_alias: request.dataset_alias.clone(),
            system_time: request.system_time,
            vocab: DatasetVocabulary::default(),
            transform: Transform::Sql(request.transform.clone()),
            query_inputs,
            next_offset: request.next_offset,
            prev_checkpoint_path: request
                .prev_checkpoint
                .as_ref()
                .map(|hash| paths::url_of(store, &layout.checkpoint(hash))),
            new_checkpoint_path: paths::url_of(store, &checkpoint_key),
            new_data_path: paths::url_of(store, &data_key),
        };
        let success = self.call_transform(&wire).await?;
        let (schema, records) = match scratch.get(&data_key).await? {
            Some(bytes) => {
                let (schema, records) = read_output(bytes, &success, request.next_offset)?;
                (Some(schema), records)
            }
            None if success.new_offset_interval.is_none() => (None, Vec::new()),
            None => {
                return Err(internal(
                    "the engine reported records but wrote no data file",
                ));
            }
        };
        let checkpoint = scratch
            .get(&checkpoint_key)
            .await?
            .ok_or_else(|| internal("the engine wrote no checkpoint"))?;
        Ok(TransformOutput {
            records: OutputRecords::Batches(
                records.into_iter().filter(|b| b.num_rows() > 0).collect(),
            ),
            schema,
            checkpoint,
            maintenance: Maintenance::Remote,
        })
    }
}
