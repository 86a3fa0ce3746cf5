//! The engine side: serves `ExecuteTransform` and `ExecuteRawQuery` with any [`Engine`] over the
//! node's storage. Inputs may only be the datasets' data files and checkpoints, and outputs
//! only go under the scratch prefix, so that a caller cannot read or overwrite anything else.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use futures::Stream;
use object_store::ObjectStoreExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status};
use weir_dataset::DatasetStore;
use weir_dataset::slices::{EVENT_TIME_COLUMN, SliceData, prepare_slice, slice_schema};
use weir_odf::Transform;
use weir_odf::engine::{
    EngineMessage, RawQueryRequest, RawQueryResponse, RawQueryResponseInternalError,
    RawQueryResponseInvalidQuery, RawQueryResponseProgress, RawQueryResponseRoot,
    RawQueryResponseSuccess, TransformRequest, TransformResponse, TransformResponseInternalError,
    TransformResponseInvalidQuery, TransformResponseProgress, TransformResponseRoot,
    TransformResponseSuccess,
};

use super::paths::{self, PathError};
use super::proto;
use crate::engine::datafusion::DataFusionEngine;
use crate::engine::{self as contract, EngineError, SharedEngine};

/// Why a request could not be served; `InvalidQuery` is the user's, the rest the system's.
#[derive(Debug, thiserror::Error)]
enum ServeError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("storage: {0}")]
    Storage(#[from] object_store::Error),
    #[error("data file: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("output: {0}")]
    Slice(#[from] weir_dataset::SliceError),
    #[error("output: {0}")]
    Output(String),
}

/// Serves an engine (ours: [`DataFusionEngine`]) to coordinators over the node's storage.
#[derive(Clone)]
pub struct EngineService {
    store: DatasetStore,
    engine: SharedEngine,
    progress_every: Duration,
    /// Requests computed at once; the others wait their turn, reporting `Progress`.
    running: Arc<tokio::sync::Semaphore>,
}

impl EngineService {
    pub fn new(store: DatasetStore, engine: SharedEngine) -> Self {
        Self {
            store,
            engine,
            progress_every: Duration::from_secs(10),
            running: Arc::new(tokio::sync::Semaphore::new(DEFAULT_CONCURRENCY)),
        }
    }

    /// How many requests are computed at once (at least one); the others wait, so that a burst
    /// of requests cannot exhaust the worker's memory.
    pub fn with_concurrency(mut self, requests: usize) -> Self {
        self.running = Arc::new(tokio::sync::Semaphore::new(requests.max(1)));
        self
    }

    /// How often a running request reports `Progress` (it also reports once at the start).
    pub fn with_progress_every(mut self, every: Duration) -> Self {
        self.progress_every = every;
        self
    }

    pub fn into_server(self) -> proto::engine_server::EngineServer<Self> {
        proto::engine_server::EngineServer::new(self).max_decoding_message_size(MAX_REQUEST_BYTES)
    }

    async fn transform(&self, request: TransformRequest) -> TransformResponse {
        let _permit = self.running.acquire().await;
        match self.run_transform(request).await {
            Ok(success) => TransformResponse::Success(success),
            Err(ServeError::Engine(EngineError::InvalidQuery(message))) => {
                TransformResponse::InvalidQuery(TransformResponseInvalidQuery { message })
            }
            Err(error) => {
                tracing::warn!(%error, "transform request failed");
                TransformResponse::InternalError(TransformResponseInternalError {
                    message: error.to_string(),
                    backtrace: Some(format!("{error:?}")),
                })
            }
        }
    }

    async fn run_transform(
        &self,
        request: TransformRequest,
    ) -> Result<TransformResponseSuccess, ServeError> {
        let store = &self.store;
        let Transform::Sql(transform) = request.transform;
        let mut query_inputs = Vec::with_capacity(request.query_inputs.len());
        for input in request.query_inputs {
            let data_files = input
                .data_paths
                .iter()
                .map(|path| paths::data_file(store, &input.dataset_id, path))
                .collect::<Result<Vec<_>, _>>()?;
            let schema_key = match paths::scratch_file(store, &input.schema_file) {
                Ok(key) => key,
                Err(_) => {
                    let hash = paths::data_file(store, &input.dataset_id, &input.schema_file)?;
                    store.dataset(&input.dataset_id).layout().data(&hash)
                }
            };
            query_inputs.push(contract::TransformRequestInput {
                dataset_id: input.dataset_id,
                dataset_alias: input.dataset_alias,
                query_alias: input.query_alias,
                offset_interval: input.offset_interval,
                data_files,
                schema: read_schema(store, &schema_key).await?,
            });
        }
        let prev_checkpoint = request
            .prev_checkpoint_path
            .as_deref()
            .map(|path| paths::checkpoint_file(store, &request.dataset_id, path))
            .transpose()?;
        let data_key = paths::scratch_file(store, &request.new_data_path)?;
        let checkpoint_key = paths::scratch_file(store, &request.new_checkpoint_path)?;
        let output = self
            .engine
            .execute_transform(
                store,
                contract::TransformRequest {
                    dataset_id: request.dataset_id,
                    dataset_alias: request.dataset_alias,
                    system_time: request.system_time,
                    transform,
                    query_inputs,
                    next_offset: request.next_offset,
                    prev_checkpoint,
                },
            )
            .await?;
        let records = output.records.collect().await?;
        let (file, new_offset_interval) = output_file(
            records,
            output.schema,
            request.next_offset,
            request.system_time,
        )
        .await?;
        let objects = store.object_store();
        if let Some(file) = file {
            objects.put(&data_key, file.into()).await?;
        }
        objects
            .put(&checkpoint_key, output.checkpoint.into())
            .await?;
        Ok(TransformResponseSuccess {
            new_offset_interval,
            // Weir's coordinator derives the output watermark from its inputs' own.
            new_watermark: None,
        })
    }

    async fn raw_query(&self, request: RawQueryRequest) -> RawQueryResponse {
        let _permit = self.running.acquire().await;
        match self.run_raw_query(request).await {
            Ok(num_records) => RawQueryResponse::Success(RawQueryResponseSuccess { num_records }),
            Err(ServeError::Engine(EngineError::InvalidQuery(message))) => {
                RawQueryResponse::InvalidQuery(RawQueryResponseInvalidQuery { message })
            }
            Err(error) => {
                tracing::warn!(%error, "raw query request failed");
                RawQueryResponse::InternalError(RawQueryResponseInternalError {
                    message: error.to_string(),
                    backtrace: Some(format!("{error:?}")),
                })
            }
        }
    }

    async fn run_raw_query(&self, request: RawQueryRequest) -> Result<u64, ServeError> {
        let store = &self.store;
        let Transform::Sql(transform) = request.transform;
        let inputs = request
            .input_data_paths
            .iter()
            .map(|path| paths::scratch_file(store, path))
            .collect::<Result<Vec<_>, _>>()?;
        let output_key = paths::scratch_file(store, &request.output_data_path)?;
        let urls = inputs
            .iter()
            .map(|key| paths::url_of(store, key))
            .collect::<Vec<_>>();
        let (schema, batches) =
            DataFusionEngine::execute_raw_query(store, &urls, &transform).await?;
        let num_records = batches.iter().map(|b| b.num_rows() as u64).sum();
        let file = tokio::task::spawn_blocking(move || super::parquet_file(&schema, &batches))
            .await
            .map_err(|error| ServeError::Output(error.to_string()))??;
        store.object_store().put(&output_key, file.into()).await?;
        Ok(num_records)
    }
}

/// Requests computed at once by default: one per core of a small worker.
pub const DEFAULT_CONCURRENCY: usize = 2;

/// Largest request accepted: requests name files, so even thousands of inputs stay far below.
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

async fn read_schema(
    store: &DatasetStore,
    key: &object_store::path::Path,
) -> Result<SchemaRef, ServeError> {
    let bytes = store.object_store().get(key).await?.bytes().await?;
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)?;
    Ok(builder.schema().clone())
}

/// The output as an ODF data file (system columns included) and its offsets; with no records,
/// an empty file that still carries the output's schema.
async fn output_file(
    records: Vec<arrow::array::RecordBatch>,
    schema: Option<SchemaRef>,
    next_offset: u64,
    system_time: chrono::DateTime<chrono::Utc>,
) -> Result<(Option<Bytes>, Option<weir_odf::OffsetInterval>), ServeError> {
    tokio::task::spawn_blocking(move || {
        if let Some(slice) = prepare_slice(&records, next_offset, system_time, None)? {
            let SliceData::Memory(bytes) = slice.data else {
                return Err(ServeError::Output(
                    "the slice was staged instead of kept in memory".to_string(),
                ));
            };
            return Ok((Some(bytes), Some(slice.offset_interval)));
        }
        let Some(schema) = schema else {
            return Ok((None, None));
        };
        let data_fields: Vec<_> = schema
            .fields()
            .iter()
            .filter(|field| field.name() != EVENT_TIME_COLUMN)
            .cloned()
            .collect();
        Ok((
            Some(super::parquet_file(&slice_schema(&data_fields), &[])?),
            None,
        ))
    })
    .await
    .map_err(|error| ServeError::Output(error.to_string()))?
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Streams `Progress` at the start and every `every` while `work` runs, then its result. A
/// caller that goes away cancels the work.
fn respond<T, F>(progress: T, every: Duration, work: F) -> ResponseStream<T>
where
    T: Clone + Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let (sender, receiver) = mpsc::channel(4);
    tokio::spawn(async move {
        if sender.send(Ok(progress.clone())).await.is_err() {
            return;
        }
        let mut work = std::pin::pin!(work);
        let mut ticker = tokio::time::interval(every);
        ticker.tick().await;
        loop {
            tokio::select! {
                result = &mut work => {
                    let _ = sender.send(Ok(result)).await;
                    return;
                }
                _ = ticker.tick() => {
                    if sender.send(Ok(progress.clone())).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    Box::pin(ReceiverStream::new(receiver))
}

fn bad_request(error: weir_odf::DecodeError) -> Status {
    Status::invalid_argument(format!("the flatbuffer is not a valid request: {error}"))
}

#[tonic::async_trait]
impl proto::engine_server::Engine for EngineService {
    type ExecuteRawQueryStream = ResponseStream<proto::RawQueryResponse>;
    type ExecuteTransformStream = ResponseStream<proto::TransformResponse>;

    async fn execute_raw_query(
        &self,
        request: Request<proto::RawQueryRequest>,
    ) -> Result<Response<Self::ExecuteRawQueryStream>, Status> {
        let request = RawQueryRequest::decode_message(&request.into_inner().flatbuffer)
            .map_err(bad_request)?;
        let service = self.clone();
        let wrap = |value| proto::RawQueryResponse {
            flatbuffer: RawQueryResponseRoot { value }.encode_message(),
        };
        let progress = wrap(RawQueryResponse::Progress(RawQueryResponseProgress {}));
        Ok(Response::new(respond(
            progress,
            self.progress_every,
            async move { wrap(service.raw_query(request).await) },
        )))
    }

    async fn execute_transform(
        &self,
        request: Request<proto::TransformRequest>,
    ) -> Result<Response<Self::ExecuteTransformStream>, Status> {
        let request = TransformRequest::decode_message(&request.into_inner().flatbuffer)
            .map_err(bad_request)?;
        let service = self.clone();
        let wrap = |value| proto::TransformResponse {
            flatbuffer: TransformResponseRoot { value }.encode_message(),
        };
        let progress = wrap(TransformResponse::Progress(TransformResponseProgress {}));
        Ok(Response::new(respond(
            progress,
            self.progress_every,
            async move { wrap(service.transform(request).await) },
        )))
    }
}

/// Serves `service` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    service: EngineService,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_service(service.into_server())
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
}

/// The engine our worker serves.
pub fn datafusion_service(store: DatasetStore) -> EngineService {
    EngineService::new(store, Arc::new(DataFusionEngine))
}
