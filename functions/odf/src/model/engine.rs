//! Messages of the ODF engine protocol (spec: "Engine API Reference", schemas under
//! `engine/v1alpha1`): what a coordinator sends an engine and what the engine streams back.
//! On the wire each travels as the FlatBuffers bytes of its root table ([`encode_message`]),
//! inside the `bytes flatbuffer = 1` field of the gRPC messages.

use chrono::{DateTime, Utc};

use super::events::OffsetInterval;
use super::source::Transform;
use crate::flatbuffers::DecodeError;
use crate::flatbuffers::builder::Builder;
use crate::flatbuffers::codec::{FbTable, odf_table, odf_union};
use crate::flatbuffers::reader::Table;
use crate::identity::DatasetId;

odf_table! {
    /// A watermark to inject between micro batches.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Watermark {
        pub system_time: DateTime<Utc>,
        pub event_time: DateTime<Utc>,
    }
}

odf_table! {
    /// Names of the system columns; `None` means the spec's default.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct DatasetVocabulary {
        pub offset_column: Option<String>,
        pub operation_type_column: Option<String>,
        pub system_time_column: Option<String>,
        pub event_time_column: Option<String>,
    }
}

odf_table! {
    /// One input of a transform step.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TransformRequestInput {
        pub dataset_id: DatasetId,
        pub dataset_alias: String,
        pub query_alias: String,
        pub vocab: DatasetVocabulary,
        /// Records of the input that are new to this step, if any.
        pub offset_interval: Option<OffsetInterval>,
        /// Data files of the input up to the end of the interval, oldest first.
        pub data_paths: Vec<String>,
        /// A Parquet file whose schema is the input's.
        pub schema_file: String,
        pub explicit_watermarks: Vec<Watermark>,
    }
}

odf_table! {
    /// The next step of a derivative dataset.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TransformRequest {
        pub dataset_id: DatasetId,
        pub dataset_alias: String,
        pub system_time: DateTime<Utc>,
        pub vocab: DatasetVocabulary,
        pub transform: Transform,
        pub query_inputs: Vec<TransformRequestInput>,
        pub next_offset: u64,
        pub prev_checkpoint_path: Option<String>,
        pub new_checkpoint_path: String,
        pub new_data_path: String,
    }
}

odf_table! {
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct TransformResponseProgress {}
}

odf_table! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TransformResponseSuccess {
        /// Offsets of the records written to `new_data_path`; none when there are none.
        pub new_offset_interval: Option<OffsetInterval>,
        pub new_watermark: Option<DateTime<Utc>>,
    }
}

odf_table! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TransformResponseInvalidQuery {
        pub message: String,
    }
}

odf_table! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TransformResponseInternalError {
        pub message: String,
        pub backtrace: Option<String>,
    }
}

odf_union! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum TransformResponse {
        Progress(TransformResponseProgress) = 1,
        Success(TransformResponseSuccess) = 2,
        InvalidQuery(TransformResponseInvalidQuery) = 3,
        InternalError(TransformResponseInternalError) = 4,
    }
}

odf_table! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TransformResponseRoot {
        pub value: TransformResponse,
    }
}

odf_table! {
    /// A query over raw data files (ingest preprocessing); the input is the table `input`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct RawQueryRequest {
        pub input_data_paths: Vec<String>,
        pub transform: Transform,
        pub output_data_path: String,
    }
}

odf_table! {
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct RawQueryResponseProgress {}
}

odf_table! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct RawQueryResponseSuccess {
        pub num_records: u64,
    }
}

odf_table! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct RawQueryResponseInvalidQuery {
        pub message: String,
    }
}

odf_table! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct RawQueryResponseInternalError {
        pub message: String,
        pub backtrace: Option<String>,
    }
}

odf_union! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum RawQueryResponse {
        Progress(RawQueryResponseProgress) = 1,
        Success(RawQueryResponseSuccess) = 2,
        InvalidQuery(RawQueryResponseInvalidQuery) = 3,
        InternalError(RawQueryResponseInternalError) = 4,
    }
}

odf_table! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct RawQueryResponseRoot {
        pub value: RawQueryResponse,
    }
}

/// A message of the engine protocol: the FlatBuffers bytes of its root table.
pub trait EngineMessage: FbTable {
    fn encode_message(&self) -> Vec<u8> {
        let mut builder = Builder::new();
        let root = self.write_table(&mut builder);
        builder.finish(root)
    }

    fn decode_message(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::read_table(&Table::root(bytes)?)
    }
}

impl EngineMessage for TransformRequest {}
impl EngineMessage for TransformResponseRoot {}
impl EngineMessage for RawQueryRequest {}
impl EngineMessage for RawQueryResponseRoot {}
