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

fn rows_as_objects(
    batches: &[RecordBatch],
) -> Result<Vec<serde_json::Map<String, Value>>, QueryError> {
    let mut buffer = Vec::new();
    {
        let mut writer = arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, arrow::json::writer::JsonArray>(&mut buffer);
        for batch in batches {
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
            let mut buffer = Vec::new();
            {
                let mut writer = arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, arrow::json::writer::LineDelimited>(&mut buffer);
                for batch in batches {
                    writer.write(batch).map_err(internal)?;
                }
                writer.finish().map_err(internal)?;
            }
            Ok(Value::String(String::from_utf8(buffer).map_err(internal)?))
        }
        DataFormat::Csv => {
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
                for batch in batches {
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
