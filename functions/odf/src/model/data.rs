//! Logical data schema (RFC-016): `DataSchema`, `DataField`, `DataType`, extension attributes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::flatbuffers::builder::{Builder, RevPos};
use crate::flatbuffers::codec::{FbField, FbTable, odf_enum, odf_table, odf_union, table_field};
use crate::flatbuffers::reader::{DecodeError, Table};
use crate::model::serde_util::{boxed_tagged_or_shorthand, tagged_or_shorthand};

/// Extension attributes: keys of the form `<domain>/<path>`, any JSON values.
/// In FlatBuffers the map is one JSON-encoded string with sorted keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExtraAttributes(pub BTreeMap<String, serde_json::Value>);

impl FbTable for ExtraAttributes {
    fn write_table(&self, builder: &mut Builder) -> RevPos {
        let json = serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".to_string());
        let entries = builder.create_string(&json);
        let start = builder.start_table();
        builder.push_slot_offset(0, entries);
        builder.end_table(start)
    }

    fn read_table(table: &Table<'_>) -> Result<Self, DecodeError> {
        let json = String::read(table, 0, "entries")?;
        serde_json::from_str(&json)
            .map(Self)
            .map_err(|error| DecodeError::invalid("entries", error.to_string()))
    }
}

table_field!(ExtraAttributes);

odf_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum TimeUnit: i16 {
        #[serde(alias = "second")]
        Second = 0,
        #[serde(alias = "millisecond")]
        Millisecond = 1,
        #[serde(alias = "microsecond")]
        Microsecond = 2,
        #[serde(alias = "nanosecond")]
        Nanosecond = 3,
    }
}

odf_enum! {
    /// Kind of a change record (`op` column).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum OperationType: u8 {
        #[serde(alias = "append")]
        Append = 0,
        #[serde(alias = "retract")]
        Retract = 1,
        #[serde(alias = "correctFrom", alias = "correctfrom")]
        CorrectFrom = 2,
        #[serde(alias = "correctTo", alias = "correctto")]
        CorrectTo = 3,
    }
}

macro_rules! empty_tables {
    ($($name:ident),*) => {$(
        odf_table! {
            #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
            #[serde(deny_unknown_fields)]
            pub struct $name {}
        }
    )*};
}

empty_tables!(
    DataTypeBool,
    DataTypeDate,
    DataTypeFloat16,
    DataTypeFloat32,
    DataTypeFloat64,
    DataTypeInt8,
    DataTypeInt16,
    DataTypeInt32,
    DataTypeInt64,
    DataTypeUInt8,
    DataTypeUInt16,
    DataTypeUInt32,
    DataTypeUInt64,
    DataTypeNull,
    DataTypeString
);

odf_table! {
    #[serde_with::skip_serializing_none]
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct DataTypeBinary {
        pub fixed_length: Option<u64>,
    }
}

odf_table! {
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct DataTypeDecimal {
        pub precision: u32,
        pub scale: i32,
    }
}

odf_table! {
    #[serde_with::skip_serializing_none]
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct DataTypeDuration {
        pub unit: Option<TimeUnit>,
    }
}

odf_table! {
    #[serde_with::skip_serializing_none]
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct DataTypeList {
        #[serde(deserialize_with = "boxed_tagged_or_shorthand")]
        pub item_type: Box<DataType>,
        pub fixed_length: Option<u64>,
    }
}

odf_table! {
    #[serde_with::skip_serializing_none]
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct DataTypeMap {
        #[serde(deserialize_with = "boxed_tagged_or_shorthand")]
        pub key_type: Box<DataType>,
        #[serde(deserialize_with = "boxed_tagged_or_shorthand")]
        pub value_type: Box<DataType>,
        pub keys_sorted: Option<bool>,
    }
}

odf_table! {
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct DataTypeOption {
        #[serde(deserialize_with = "boxed_tagged_or_shorthand")]
        pub inner: Box<DataType>,
    }
}

odf_table! {
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct DataTypeStruct {
        pub fields: Vec<DataField>,
    }
}

odf_table! {
    #[serde_with::skip_serializing_none]
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct DataTypeTime {
        pub unit: Option<TimeUnit>,
    }
}

odf_table! {
    #[serde_with::skip_serializing_none]
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct DataTypeTimestamp {
        pub unit: Option<TimeUnit>,
        pub timezone: Option<String>,
    }
}

odf_union! {
    /// Logical type of a field. In YAML a parameterless type may be written as a plain string.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(tag = "kind")]
    pub enum DataType {
        #[serde(alias = "binary")]
        Binary(DataTypeBinary) = 1,
        #[serde(alias = "bool")]
        Bool(DataTypeBool) = 2,
        #[serde(alias = "date")]
        Date(DataTypeDate) = 3,
        #[serde(alias = "decimal")]
        Decimal(DataTypeDecimal) = 4,
        #[serde(alias = "duration")]
        Duration(DataTypeDuration) = 5,
        #[serde(alias = "float16")]
        Float16(DataTypeFloat16) = 6,
        #[serde(alias = "float32")]
        Float32(DataTypeFloat32) = 7,
        #[serde(alias = "float64")]
        Float64(DataTypeFloat64) = 8,
        #[serde(alias = "int8")]
        Int8(DataTypeInt8) = 9,
        #[serde(alias = "int16")]
        Int16(DataTypeInt16) = 10,
        #[serde(alias = "int32")]
        Int32(DataTypeInt32) = 11,
        #[serde(alias = "int64")]
        Int64(DataTypeInt64) = 12,
        #[serde(alias = "uInt8", alias = "uint8")]
        UInt8(DataTypeUInt8) = 13,
        #[serde(alias = "uInt16", alias = "uint16")]
        UInt16(DataTypeUInt16) = 14,
        #[serde(alias = "uInt32", alias = "uint32")]
        UInt32(DataTypeUInt32) = 15,
        #[serde(alias = "uInt64", alias = "uint64")]
        UInt64(DataTypeUInt64) = 16,
        #[serde(alias = "list")]
        List(DataTypeList) = 17,
        #[serde(alias = "map")]
        Map(DataTypeMap) = 18,
        #[serde(alias = "null")]
        Null(DataTypeNull) = 19,
        #[serde(alias = "option")]
        Option(DataTypeOption) = 20,
        #[serde(alias = "struct")]
        Struct(DataTypeStruct) = 21,
        #[serde(alias = "time")]
        Time(DataTypeTime) = 22,
        #[serde(alias = "timestamp")]
        Timestamp(DataTypeTimestamp) = 23,
        #[serde(alias = "string")]
        String(DataTypeString) = 24,
    }
}

odf_table! {
    #[serde_with::skip_serializing_none]
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct DataField {
        pub name: String,
        #[serde(deserialize_with = "tagged_or_shorthand")]
        pub r#type: DataType,
        pub extra: Option<ExtraAttributes>,
    }
}

odf_table! {
    #[serde_with::skip_serializing_none]
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct DataSchema {
        pub fields: Vec<DataField>,
        pub extra: Option<ExtraAttributes>,
    }
}

impl DataField {
    pub fn new(name: impl Into<String>, r#type: DataType) -> Self {
        Self {
            name: name.into(),
            r#type,
            extra: None,
        }
    }
}

impl DataSchema {
    pub fn new(fields: Vec<DataField>) -> Self {
        Self {
            fields,
            extra: None,
        }
    }
}
