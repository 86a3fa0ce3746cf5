//! Metadata events and the metadata block that carries them.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::flatbuffers::builder::{Builder, RevPos};
use crate::flatbuffers::codec::{FbField, missing, odf_enum, odf_table, odf_union};
use crate::flatbuffers::reader::{DecodeError, Table};
use crate::hash::Multihash;
use crate::identity::{DatasetId, DatasetRef};
use crate::model::data::{DataSchema, ExtraAttributes};
use crate::model::source::{FetchStep, MergeStrategy, PrepStep, ReadStep, Transform};

/// Timestamps are the inline struct `Timestamp {year: int32, ordinal: uint16,
/// seconds_from_midnight: uint32, nanoseconds: uint32}` (16 bytes, 4-aligned, 2 padding bytes).
impl FbField for DateTime<Utc> {
    type Prepared = [u8; 16];

    fn prepare(&self, _builder: &mut Builder) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        bytes[0..4].copy_from_slice(&self.year().to_le_bytes());
        bytes[4..6].copy_from_slice(&(self.ordinal() as u16).to_le_bytes());
        bytes[8..12].copy_from_slice(&self.num_seconds_from_midnight().to_le_bytes());
        bytes[12..16].copy_from_slice(&self.nanosecond().to_le_bytes());
        bytes
    }

    fn push(prepared: &[u8; 16], builder: &mut Builder, slot: u16) {
        builder.push_slot_struct(slot, prepared, 4);
    }

    fn read(table: &Table<'_>, slot: u16, name: &str) -> Result<Self, DecodeError> {
        let bytes = table.scalar::<16>(slot)?.ok_or_else(|| missing(name))?;
        let year = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let ordinal = u16::from_le_bytes([bytes[4], bytes[5]]);
        let seconds = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        let nanoseconds = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        let date = NaiveDate::from_yo_opt(year, u32::from(ordinal))
            .ok_or_else(|| DecodeError::invalid(name, "invalid date in timestamp"))?;
        let time = NaiveTime::from_num_seconds_from_midnight_opt(seconds, nanoseconds)
            .ok_or_else(|| DecodeError::invalid(name, "invalid time of day in timestamp"))?;
        Ok(date.and_time(time).and_utc())
    }
}

/// Transform inputs reference datasets as strings (DIDs once resolved).
impl FbField for DatasetRef {
    type Prepared = RevPos;

    fn prepare(&self, builder: &mut Builder) -> RevPos {
        builder.create_string(&self.to_string())
    }

    fn push(prepared: &RevPos, builder: &mut Builder, slot: u16) {
        builder.push_slot_offset(slot, *prepared);
    }

    fn read(table: &Table<'_>, slot: u16, name: &str) -> Result<Self, DecodeError> {
        let text = String::read(table, slot, name)?;
        text.parse()
            .map_err(|error: crate::identity::IdentityParseError| {
                DecodeError::invalid(name, error.to_string())
            })
    }
}

impl Serialize for DatasetRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for DatasetRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Deprecated raw Arrow schema bytes; base64 in YAML/JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawBytes(pub Vec<u8>);

impl FbField for RawBytes {
    type Prepared = RevPos;

    fn prepare(&self, builder: &mut Builder) -> RevPos {
        builder.create_byte_vector(&self.0)
    }

    fn push(prepared: &RevPos, builder: &mut Builder, slot: u16) {
        builder.push_slot_offset(slot, *prepared);
    }

    fn read(table: &Table<'_>, slot: u16, name: &str) -> Result<Self, DecodeError> {
        let bytes = table.bytes(slot)?.ok_or_else(|| missing(name))?;
        Ok(Self(bytes.to_vec()))
    }
}

impl Serialize for RawBytes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let encoded = multibase::encode(multibase::Base::Base64Pad, &self.0);
        serializer.serialize_str(&encoded[1..])
    }
}

impl<'de> Deserialize<'de> for RawBytes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        multibase::Base::Base64Pad
            .decode(&text)
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

macro_rules! event_tables {
    ($( $(#[$m:meta])* $name:ident { $( $(#[$fm:meta])* pub $field:ident : $ty:ty ),* $(,)? } )*) => {$(
        odf_table! {
            $(#[$m])*
            #[serde_with::skip_serializing_none]
            #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
            #[serde(rename_all = "camelCase", deny_unknown_fields)]
            pub struct $name { $( $(#[$fm])* pub $field: $ty ),* }
        }
    )*};
}

event_tables! {
    /// Closed interval of offsets `[start; end]`.
    OffsetInterval {
        pub start: u64,
        pub end: u64,
    }
    /// A data file added by a block.
    DataSlice {
        pub logical_hash: Multihash,
        pub physical_hash: Multihash,
        pub offset_interval: OffsetInterval,
        pub size: u64,
    }
    /// An engine or source checkpoint file.
    Checkpoint {
        pub physical_hash: Multihash,
        pub size: u64,
    }
    /// State of a source to resume ingestion from.
    SourceState {
        pub source_name: String,
        pub kind: String,
        pub value: String,
    }
    /// Data was ingested into a root dataset.
    AddData {
        pub prev_checkpoint: Option<Multihash>,
        pub prev_offset: Option<u64>,
        pub new_data: Option<DataSlice>,
        pub new_checkpoint: Option<Checkpoint>,
        pub new_watermark: Option<DateTime<Utc>>,
        pub new_source_state: Option<SourceState>,
        pub extra: Option<ExtraAttributes>,
    }
    ExecuteTransformInput {
        pub dataset_id: DatasetId,
        pub prev_block_hash: Option<Multihash>,
        pub new_block_hash: Option<Multihash>,
        pub prev_offset: Option<u64>,
        pub new_offset: Option<u64>,
    }
    /// A derivative transformation step was executed.
    ExecuteTransform {
        pub query_inputs: Vec<ExecuteTransformInput>,
        pub prev_checkpoint: Option<Multihash>,
        pub prev_offset: Option<u64>,
        pub new_data: Option<DataSlice>,
        pub new_checkpoint: Option<Checkpoint>,
        pub new_watermark: Option<DateTime<Utc>>,
    }
    /// Establishes the identity of the dataset; always the first event.
    Seed {
        pub dataset_id: DatasetId,
        pub dataset_kind: DatasetKind,
    }
    SetPollingSource {
        pub fetch: FetchStep,
        pub prepare: Option<Vec<PrepStep>>,
        pub read: ReadStep,
        pub preprocess: Option<Transform>,
        pub merge: MergeStrategy,
    }
    TransformInput {
        pub dataset_ref: DatasetRef,
        pub alias: Option<String>,
    }
    SetTransform {
        pub inputs: Vec<TransformInput>,
        pub transform: Transform,
    }
    SetVocab {
        pub offset_column: Option<String>,
        pub operation_type_column: Option<String>,
        pub system_time_column: Option<String>,
        pub event_time_column: Option<String>,
    }
    AttachmentEmbedded {
        pub path: String,
        pub content: String,
    }
    AttachmentsEmbedded {
        pub items: Vec<AttachmentEmbedded>,
    }
    SetAttachments {
        pub attachments: Attachments,
    }
    SetInfo {
        pub description: Option<String>,
        pub keywords: Option<Vec<String>>,
    }
    SetLicense {
        pub short_name: String,
        pub name: String,
        pub spdx_id: Option<String>,
        pub website_url: String,
    }
    /// Complete schema of data slices added after this event.
    SetDataSchema {
        pub raw_arrow_schema: Option<RawBytes>,
        pub schema: Option<DataSchema>,
    }
    AddPushSource {
        pub source_name: String,
        pub read: ReadStep,
        pub preprocess: Option<Transform>,
        pub merge: MergeStrategy,
    }
    DisablePushSource {
        pub source_name: String,
    }
    DisablePollingSource {}
}

odf_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum DatasetKind: i32 {
        #[serde(alias = "root")]
        Root = 0,
        #[serde(alias = "derivative")]
        Derivative = 1,
    }
}

odf_union! {
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(tag = "kind")]
    pub enum Attachments {
        #[serde(alias = "embedded")]
        Embedded(AttachmentsEmbedded) = 1,
    }
}

odf_union! {
    /// Every event a metadata block can carry (union tags as in `opendatafabric.fbs`).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(tag = "kind")]
    pub enum MetadataEvent {
        #[serde(alias = "addData", alias = "adddata")]
        AddData(AddData) = 1,
        #[serde(alias = "executeTransform", alias = "executetransform")]
        ExecuteTransform(ExecuteTransform) = 2,
        #[serde(alias = "seed")]
        Seed(Seed) = 3,
        #[serde(alias = "setPollingSource", alias = "setpollingsource")]
        SetPollingSource(SetPollingSource) = 4,
        #[serde(alias = "setTransform", alias = "settransform")]
        SetTransform(SetTransform) = 5,
        #[serde(alias = "setVocab", alias = "setvocab")]
        SetVocab(SetVocab) = 6,
        #[serde(alias = "setAttachments", alias = "setattachments")]
        SetAttachments(SetAttachments) = 7,
        #[serde(alias = "setInfo", alias = "setinfo")]
        SetInfo(SetInfo) = 8,
        #[serde(alias = "setLicense", alias = "setlicense")]
        SetLicense(SetLicense) = 9,
        #[serde(alias = "setDataSchema", alias = "setdataschema")]
        SetDataSchema(SetDataSchema) = 10,
        #[serde(alias = "addPushSource", alias = "addpushsource")]
        AddPushSource(AddPushSource) = 11,
        #[serde(alias = "disablePushSource", alias = "disablepushsource")]
        DisablePushSource(DisablePushSource) = 12,
        #[serde(alias = "disablePollingSource", alias = "disablepollingsource")]
        DisablePollingSource(DisablePollingSource) = 13,
    }
}

odf_table! {
    /// One link of the metadata chain.
    #[serde_with::skip_serializing_none]
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct MetadataBlock {
        pub system_time: DateTime<Utc>,
        pub prev_block_hash: Option<Multihash>,
        pub sequence_number: u64,
        pub event: MetadataEvent,
    }
}

impl AddData {
    /// New data slice or checkpoint or watermark or source state: does the block change anything.
    pub fn is_empty(&self) -> bool {
        self.new_data.is_none()
            && self.new_checkpoint.is_none()
            && self.new_watermark.is_none()
            && self.new_source_state.is_none()
    }
}

impl OffsetInterval {
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}
