//! The engine side of the ODF engine contract: a transform request (inputs as data files with
//! the offset interval that is new, the query, the previous checkpoint) in, the output records
//! and the new state out. The coordinator (`crate::coordinator`) owns the metadata chains; an
//! engine only reads the data files it is given.

pub mod changelog;
pub mod datafusion;
pub mod grpc;
pub mod incremental;
pub mod shape;

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use chrono::{DateTime, Utc};
use weir_dataset::DatasetStore;
use weir_odf::{DatasetId, Multihash, OffsetInterval, TransformSql};

/// One input of a transform step (the spec's `TransformRequestInput`).
#[derive(Debug, Clone)]
pub struct TransformRequestInput {
    pub dataset_id: DatasetId,
    pub dataset_alias: String,
    /// The name the queries use for this input.
    pub query_alias: String,
    /// The input's records that are new to this step, if any.
    pub offset_interval: Option<OffsetInterval>,
    /// Data files of the input up to the end of `offset_interval` (or up to what earlier steps
    /// saw, when nothing is new), oldest first: each file is wholly part of the step.
    pub data_files: Vec<Multihash>,
    /// Arrow schema of the input's data files.
    pub schema: SchemaRef,
}

/// One transform step (the spec's `TransformRequest`).
#[derive(Debug, Clone)]
pub struct TransformRequest {
    pub dataset_id: DatasetId,
    pub dataset_alias: String,
    pub system_time: DateTime<Utc>,
    pub transform: TransformSql,
    pub query_inputs: Vec<TransformRequestInput>,
    pub next_offset: u64,
    pub prev_checkpoint: Option<Multihash>,
}

/// What a step produced.
#[derive(Debug)]
pub struct TransformOutput {
    /// Output records: an `op` column, `event_time` and the data columns; the coordinator adds
    /// `offset` and `system_time`. Empty when the step changed nothing.
    pub records: OutputRecords,
    /// The query's output columns (`event_time` and the data columns). `None` only when a
    /// remote engine wrote no output file, which it may when there are no records.
    pub schema: Option<SchemaRef>,
    /// The new checkpoint file (Parquet), which also names the engine and its version.
    pub checkpoint: bytes::Bytes,
    /// How the step was computed.
    pub maintenance: Maintenance,
}

/// An engine's output records: computed already, or computed while the coordinator writes them
/// (so that computing and encoding the slice overlap).
pub enum OutputRecords {
    Batches(Vec<RecordBatch>),
    Stream(futures::stream::BoxStream<'static, Result<RecordBatch, EngineError>>),
}

impl OutputRecords {
    pub async fn collect(self) -> Result<Vec<RecordBatch>, EngineError> {
        match self {
            Self::Batches(batches) => Ok(batches),
            Self::Stream(stream) => {
                use futures::TryStreamExt;
                stream.try_collect().await
            }
        }
    }
}

impl std::fmt::Debug for OutputRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Batches(batches) => write!(f, "Batches({})", batches.len()),
            Self::Stream(_) => write!(f, "Stream"),
        }
    }
}

/// How an engine computed a step, shown with the step's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Maintenance {
    /// Only the new input records were read (projections and filters).
    RowByRow,
    /// Only the groups the new records touch were computed again.
    GroupByGroup,
    /// The whole query was computed again and diffed with the previous result.
    Full,
    /// A remote engine computed it; how is its own business.
    Remote,
}

/// Why an engine refused or failed a step.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The query cannot run over these inputs (the spec's `InvalidQuery`); permanent.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// Reading inputs or writing results failed; may succeed when tried again.
    #[error("engine failed: {message}")]
    Internal {
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl EngineError {
    pub fn internal(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal {
            message: error.to_string(),
            source: Some(Box::new(error)),
        }
    }
}

/// An engine: ours runs DataFusion in-process ([`datafusion::DataFusionEngine`]); a remote one
/// is reached over the ODF engine gRPC protocol.
#[async_trait::async_trait]
pub trait Engine: Send + Sync {
    /// Name and version recorded with every step this engine computes.
    fn identity(&self) -> EngineIdentity;

    async fn execute_transform(
        &self,
        store: &DatasetStore,
        request: TransformRequest,
    ) -> Result<TransformOutput, EngineError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineIdentity {
    pub name: String,
    pub version: String,
}

pub type SharedEngine = Arc<dyn Engine>;
