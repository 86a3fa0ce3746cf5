//! Conversion between the ODF logical schema (RFC-016) and Arrow schemas.
//!
//! Nullability is carried by the ODF `Option` type: a nullable Arrow field is `Option<inner>`.
//! Timestamps without a unit default to milliseconds and without a timezone to UTC.

use std::sync::Arc;

use arrow::datatypes::{DataType as ArrowType, Field, Fields, Schema, TimeUnit as ArrowUnit};
use weir_odf::{
    DataField, DataSchema, DataType, DataTypeBinary, DataTypeBool, DataTypeDate, DataTypeDecimal,
    DataTypeDuration, DataTypeFloat16, DataTypeFloat32, DataTypeFloat64, DataTypeInt8,
    DataTypeInt16, DataTypeInt32, DataTypeInt64, DataTypeList, DataTypeMap, DataTypeNull,
    DataTypeOption, DataTypeString, DataTypeStruct, DataTypeTime, DataTypeTimestamp, DataTypeUInt8,
    DataTypeUInt16, DataTypeUInt32, DataTypeUInt64, TimeUnit,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column `{column}`: {message}")]
pub struct SchemaConversionError {
    pub column: String,
    pub message: String,
}

fn unit_to_arrow(unit: Option<TimeUnit>) -> ArrowUnit {
    match unit.unwrap_or(TimeUnit::Millisecond) {
        TimeUnit::Second => ArrowUnit::Second,
        TimeUnit::Millisecond => ArrowUnit::Millisecond,
        TimeUnit::Microsecond => ArrowUnit::Microsecond,
        TimeUnit::Nanosecond => ArrowUnit::Nanosecond,
    }
}

fn unit_from_arrow(unit: &ArrowUnit) -> TimeUnit {
    match unit {
        ArrowUnit::Second => TimeUnit::Second,
        ArrowUnit::Millisecond => TimeUnit::Millisecond,
        ArrowUnit::Microsecond => TimeUnit::Microsecond,
        ArrowUnit::Nanosecond => TimeUnit::Nanosecond,
    }
}

/// Arrow field for an ODF field.
pub fn field_to_arrow(field: &DataField) -> Result<Field, SchemaConversionError> {
    let (data_type, nullable) = match &field.r#type {
        DataType::Option(option) => (type_to_arrow(&field.name, &option.inner)?, true),
        other => (type_to_arrow(&field.name, other)?, false),
    };
    Ok(Field::new(&field.name, data_type, nullable))
}

fn type_to_arrow(column: &str, data_type: &DataType) -> Result<ArrowType, SchemaConversionError> {
    let error = |message: &str| SchemaConversionError {
        column: column.to_string(),
        message: message.to_string(),
    };
    Ok(match data_type {
        DataType::Binary(binary) => match binary.fixed_length {
            Some(length) => ArrowType::FixedSizeBinary(
                i32::try_from(length).map_err(|_| error("fixed length too large"))?,
            ),
            None => ArrowType::Binary,
        },
        DataType::Bool(_) => ArrowType::Boolean,
        DataType::Date(_) => ArrowType::Date32,
        DataType::Decimal(decimal) => {
            let precision = u8::try_from(decimal.precision)
                .map_err(|_| error("decimal precision too large"))?;
            let scale =
                i8::try_from(decimal.scale).map_err(|_| error("decimal scale out of range"))?;
            if precision <= 38 {
                ArrowType::Decimal128(precision, scale)
            } else {
                ArrowType::Decimal256(precision, scale)
            }
        }
        DataType::Duration(duration) => ArrowType::Duration(unit_to_arrow(duration.unit)),
        DataType::Float16(_) => ArrowType::Float16,
        DataType::Float32(_) => ArrowType::Float32,
        DataType::Float64(_) => ArrowType::Float64,
        DataType::Int8(_) => ArrowType::Int8,
        DataType::Int16(_) => ArrowType::Int16,
        DataType::Int32(_) => ArrowType::Int32,
        DataType::Int64(_) => ArrowType::Int64,
        DataType::UInt8(_) => ArrowType::UInt8,
        DataType::UInt16(_) => ArrowType::UInt16,
        DataType::UInt32(_) => ArrowType::UInt32,
        DataType::UInt64(_) => ArrowType::UInt64,
        DataType::List(list) => {
            let (item, nullable) = match list.item_type.as_ref() {
                DataType::Option(option) => (type_to_arrow(column, &option.inner)?, true),
                other => (type_to_arrow(column, other)?, false),
            };
            let item = Arc::new(Field::new("item", item, nullable));
            match list.fixed_length {
                Some(length) => ArrowType::FixedSizeList(
                    item,
                    i32::try_from(length).map_err(|_| error("fixed length too large"))?,
                ),
                None => ArrowType::List(item),
            }
        }
        DataType::Map(map) => {
            let key = Field::new("key", type_to_arrow(column, &map.key_type)?, false);
            let (value, nullable) = match map.value_type.as_ref() {
                DataType::Option(option) => (type_to_arrow(column, &option.inner)?, true),
                other => (type_to_arrow(column, other)?, false),
            };
            let entries = Field::new(
                "entries",
                ArrowType::Struct(Fields::from(vec![
                    key,
                    Field::new("value", value, nullable),
                ])),
                false,
            );
            ArrowType::Map(Arc::new(entries), map.keys_sorted.unwrap_or(false))
        }
        DataType::Null(_) => ArrowType::Null,
        DataType::Option(_) => {
            return Err(error(
                "nested Option is only allowed directly on a field, list item or map value",
            ));
        }
        DataType::Struct(structure) => ArrowType::Struct(
            structure
                .fields
                .iter()
                .map(field_to_arrow)
                .collect::<Result<Vec<_>, _>>()?
                .into(),
        ),
        DataType::Time(time) => match unit_to_arrow(time.unit) {
            unit @ (ArrowUnit::Second | ArrowUnit::Millisecond) => ArrowType::Time32(unit),
            unit => ArrowType::Time64(unit),
        },
        DataType::Timestamp(timestamp) => ArrowType::Timestamp(
            unit_to_arrow(timestamp.unit),
            Some(
                timestamp
                    .timezone
                    .clone()
                    .unwrap_or_else(|| "UTC".to_string())
                    .into(),
            ),
        ),
        DataType::String(_) => ArrowType::Utf8,
    })
}

/// Arrow schema for an ODF schema.
pub fn schema_to_arrow(schema: &DataSchema) -> Result<Schema, SchemaConversionError> {
    let fields = schema
        .fields
        .iter()
        .map(field_to_arrow)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Schema::new(fields))
}

fn wrap_nullable(data_type: DataType, nullable: bool) -> DataType {
    if nullable {
        DataType::Option(DataTypeOption {
            inner: Box::new(data_type),
        })
    } else {
        data_type
    }
}

fn type_from_arrow(column: &str, data_type: &ArrowType) -> Result<DataType, SchemaConversionError> {
    let unsupported = || SchemaConversionError {
        column: column.to_string(),
        message: format!("arrow type {data_type} has no ODF equivalent"),
    };
    Ok(match data_type {
        ArrowType::Null => DataType::Null(DataTypeNull {}),
        ArrowType::Boolean => DataType::Bool(DataTypeBool {}),
        ArrowType::Int8 => DataType::Int8(DataTypeInt8 {}),
        ArrowType::Int16 => DataType::Int16(DataTypeInt16 {}),
        ArrowType::Int32 => DataType::Int32(DataTypeInt32 {}),
        ArrowType::Int64 => DataType::Int64(DataTypeInt64 {}),
        ArrowType::UInt8 => DataType::UInt8(DataTypeUInt8 {}),
        ArrowType::UInt16 => DataType::UInt16(DataTypeUInt16 {}),
        ArrowType::UInt32 => DataType::UInt32(DataTypeUInt32 {}),
        ArrowType::UInt64 => DataType::UInt64(DataTypeUInt64 {}),
        ArrowType::Float16 => DataType::Float16(DataTypeFloat16 {}),
        ArrowType::Float32 => DataType::Float32(DataTypeFloat32 {}),
        ArrowType::Float64 => DataType::Float64(DataTypeFloat64 {}),
        ArrowType::Timestamp(unit, timezone) => DataType::Timestamp(DataTypeTimestamp {
            unit: Some(unit_from_arrow(unit)),
            timezone: timezone.as_ref().map(|tz| tz.to_string()),
        }),
        ArrowType::Date32 | ArrowType::Date64 => DataType::Date(DataTypeDate {}),
        ArrowType::Time32(unit) | ArrowType::Time64(unit) => DataType::Time(DataTypeTime {
            unit: Some(unit_from_arrow(unit)),
        }),
        ArrowType::Duration(unit) => DataType::Duration(DataTypeDuration {
            unit: Some(unit_from_arrow(unit)),
        }),
        ArrowType::Binary | ArrowType::LargeBinary | ArrowType::BinaryView => {
            DataType::Binary(DataTypeBinary { fixed_length: None })
        }
        ArrowType::FixedSizeBinary(length) => DataType::Binary(DataTypeBinary {
            fixed_length: Some(*length as u64),
        }),
        ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View => {
            DataType::String(DataTypeString {})
        }
        ArrowType::List(item)
        | ArrowType::LargeList(item)
        | ArrowType::ListView(item)
        | ArrowType::LargeListView(item) => DataType::List(DataTypeList {
            item_type: Box::new(wrap_nullable(
                type_from_arrow(column, item.data_type())?,
                item.is_nullable(),
            )),
            fixed_length: None,
        }),
        ArrowType::FixedSizeList(item, length) => DataType::List(DataTypeList {
            item_type: Box::new(wrap_nullable(
                type_from_arrow(column, item.data_type())?,
                item.is_nullable(),
            )),
            fixed_length: Some(*length as u64),
        }),
        ArrowType::Struct(fields) => DataType::Struct(DataTypeStruct {
            fields: fields
                .iter()
                .map(|f| field_from_arrow(f))
                .collect::<Result<Vec<_>, _>>()?,
        }),
        ArrowType::Decimal32(precision, scale)
        | ArrowType::Decimal64(precision, scale)
        | ArrowType::Decimal128(precision, scale)
        | ArrowType::Decimal256(precision, scale) => DataType::Decimal(DataTypeDecimal {
            precision: u32::from(*precision),
            scale: i32::from(*scale),
        }),
        ArrowType::Map(entries, sorted) => {
            let ArrowType::Struct(pair) = entries.data_type() else {
                return Err(unsupported());
            };
            if pair.len() != 2 {
                return Err(unsupported());
            }
            DataType::Map(DataTypeMap {
                key_type: Box::new(type_from_arrow(column, pair[0].data_type())?),
                value_type: Box::new(wrap_nullable(
                    type_from_arrow(column, pair[1].data_type())?,
                    pair[1].is_nullable(),
                )),
                keys_sorted: Some(*sorted),
            })
        }
        ArrowType::Dictionary(_, value) => type_from_arrow(column, value)?,
        _ => return Err(unsupported()),
    })
}

pub fn field_from_arrow(field: &Field) -> Result<DataField, SchemaConversionError> {
    let data_type = type_from_arrow(field.name(), field.data_type())?;
    Ok(DataField::new(
        field.name(),
        wrap_nullable(data_type, field.is_nullable()),
    ))
}

/// ODF schema for an Arrow schema.
pub fn schema_from_arrow(schema: &Schema) -> Result<DataSchema, SchemaConversionError> {
    let fields = schema
        .fields()
        .iter()
        .map(|field| field_from_arrow(field))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DataSchema::new(fields))
}
