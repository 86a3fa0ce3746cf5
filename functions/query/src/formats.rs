//! Encodings of query results: JSON (array of structs, struct of arrays, array of arrays),
//! NDJSON and CSV inside the JSON response; Arrow IPC stream and Parquet as whole bodies.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::QueryError;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataFormat {
    #[default]
    JsonAoS,
    JsonSoA,
    JsonAoA,
    NdJson,
    Csv,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SchemaFormat {
    /// `{"fields": [{"name", "type", "nullable"}]}` with Arrow type names.
    #[default]
    ArrowJson,
    /// The ODF logical schema (RFC-016) as JSON.
    OdfJson,
}

fn internal(error: impl std::fmt::Display) -> QueryError {
    QueryError::Internal(error.to_string())
}

/// Batches whose every value text encodings can write: temporal values no calendar holds (and,
/// for JSON, NaN and infinities) become null instead of failing the whole response.
fn writable(batches: &[RecordBatch], json: bool) -> Result<Vec<RecordBatch>, QueryError> {
    batches
        .iter()
        .map(|batch| {
            let mut columns = batch.columns().to_vec();
            let mut changed = false;
            for column in &mut columns {
                if let Some(fixed) = weir_dataset::temporal::unrepresentable_to_null(column, json) {
                    *column = fixed;
                    changed = true;
                }
            }
            if !changed {
                return Ok(batch.clone());
            }
            // Nulls may now sit in columns the schema calls non-nullable.
            let fields: Vec<_> = batch
                .schema()
                .fields()
                .iter()
                .map(|field| field.as_ref().clone().with_nullable(true))
                .collect();
            let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(fields));
            RecordBatch::try_new(schema, columns).map_err(internal)
        })
        .collect()
}

fn rows_as_objects(
    batches: &[RecordBatch],
) -> Result<Vec<serde_json::Map<String, Value>>, QueryError> {
    let batches = writable(batches, true)?;
    let mut buffer = Vec::new();
    {
        let mut writer = arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, arrow::json::writer::JsonArray>(&mut buffer);
        for batch in &batches {
            writer.write(batch).map_err(internal)?;
        }
        writer.finish().map_err(internal)?;
    }
    if buffer.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&buffer).map_err(internal)
}

pub fn encode_data(
    format: DataFormat,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<Value, QueryError> {
    let names: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
    match format {
        DataFormat::JsonAoS => Ok(Value::Array(
            rows_as_objects(batches)?
                .into_iter()
                .map(Value::Object)
                .collect(),
        )),
        DataFormat::JsonAoA => Ok(Value::Array(
            rows_as_objects(batches)?
                .into_iter()
                .map(|mut row| {
                    Value::Array(
                        names
                            .iter()
                            .map(|n| row.remove(*n).unwrap_or(Value::Null))
                            .collect(),
                    )
                })
                .collect(),
        )),
        DataFormat::JsonSoA => {
            let rows = rows_as_objects(batches)?;
            let mut columns = serde_json::Map::new();
            for name in &names {
                let values = rows
                    .iter()
                    .map(|row| row.get(*name).cloned().unwrap_or(Value::Null))
                    .collect();
                columns.insert((*name).clone(), Value::Array(values));
            }
            Ok(Value::Object(columns))
        }
        DataFormat::NdJson => {
            let batches = writable(batches, true)?;
            let mut buffer = Vec::new();
            {
                let mut writer = arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, arrow::json::writer::LineDelimited>(&mut buffer);
                for batch in &batches {
                    writer.write(batch).map_err(internal)?;
                }
                writer.finish().map_err(internal)?;
            }
            Ok(Value::String(String::from_utf8(buffer).map_err(internal)?))
        }
        DataFormat::Csv => {
            let batches = writable(batches, false)?;
            let mut buffer = Vec::new();
            {
                let mut writer = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut buffer);
                if batches.is_empty() {
                    writer
                        .write(&RecordBatch::new_empty(schema.clone()))
                        .map_err(internal)?;
                }
                for batch in &batches {
                    writer.write(batch).map_err(internal)?;
                }
            }
            Ok(Value::String(String::from_utf8(buffer).map_err(internal)?))
        }
    }
}

pub fn encode_schema(format: SchemaFormat, schema: &SchemaRef) -> Result<Value, QueryError> {
    match format {
        SchemaFormat::ArrowJson => Ok(serde_json::json!({
            "fields": schema.fields().iter().map(|f| serde_json::json!({
                "name": f.name(),
                "type": f.data_type().to_string(),
                "nullable": f.is_nullable(),
            })).collect::<Vec<_>>()
        })),
        SchemaFormat::OdfJson => {
            let odf = weir_dataset::schema::schema_from_arrow(schema).map_err(internal)?;
            serde_json::to_value(odf).map_err(internal)
        }
    }
}

pub fn arrow_ipc_stream(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Bytes, QueryError> {
    let mut buffer = Vec::new();
    {
        let mut writer =
            arrow::ipc::writer::StreamWriter::try_new(&mut buffer, schema).map_err(internal)?;
        for batch in batches {
            writer.write(batch).map_err(internal)?;
        }
        writer.finish().map_err(internal)?;
    }
    Ok(Bytes::from(buffer))
}

pub fn parquet_file(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Bytes, QueryError> {
    let mut buffer = Vec::new();
    {
        let mut writer = parquet::arrow::ArrowWriter::try_new(&mut buffer, schema.clone(), None)
            .map_err(internal)?;
        for batch in batches {
            writer.write(batch).map_err(internal)?;
        }
        writer.close().map_err(internal)?;
    }
    Ok(Bytes::from(buffer))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Date32Array, Float64Array, TimestampMillisecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    use super::*;

    /// Values no chrono date can hold, and floats JSON cannot spell.
    fn hostile_batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                true,
            ),
            Field::new("day", DataType::Date32, true),
            Field::new("x", DataType::Float64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(
                    TimestampMillisecondArray::from(vec![Some(i64::MAX), Some(0), Some(i64::MIN)])
                        .with_timezone("UTC"),
                ),
                Arc::new(Date32Array::from(vec![
                    Some(i32::MAX),
                    Some(0),
                    Some(i32::MIN),
                ])),
                Arc::new(Float64Array::from(vec![
                    Some(f64::NAN),
                    Some(f64::INFINITY),
                    Some(1.5),
                ])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn every_encoding_answers_whatever_the_values() {
        let batch = hostile_batch();
        for format in [
            DataFormat::JsonAoS,
            DataFormat::JsonSoA,
            DataFormat::JsonAoA,
            DataFormat::NdJson,
            DataFormat::Csv,
        ] {
            let value = encode_data(format, &batch.schema(), std::slice::from_ref(&batch))
                .unwrap_or_else(|error| panic!("{format:?}: {error}"));
            let text = value.to_string();
            assert!(text.contains("1.5"), "{format:?}: {text}");
        }
    }
}
