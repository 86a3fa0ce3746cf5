//! Reading a pushed body into Arrow record batches, incrementally as chunks arrive.
//!
//! The format comes from the `Content-Type`; the schema from the push source's read step
//! (`schema`, else `ddlSchema`, else inferred from the first megabyte of data).

mod csv;
mod ddl;
mod json;

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Field, Schema, SchemaRef};
use weir_odf::{DataSchema, ReadStep};

use crate::error::IngestError;

pub use ddl::parse_ddl_schema;

/// Rows per decoded batch.
pub const BATCH_SIZE: usize = 8192;
/// Bytes buffered to infer a schema when the read step declares none.
pub const INFERENCE_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaFormat {
    Csv,
    Json,
    NdJson,
    GeoJson,
    Parquet,
}

impl MediaFormat {
    /// Format named by a `Content-Type` header value (parameters such as charset are ignored).
    pub fn from_content_type(content_type: &str) -> Result<Self, IngestError> {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "text/csv" => Ok(Self::Csv),
            "application/json" => Ok(Self::Json),
            "application/x-ndjson" | "application/ndjson" | "application/jsonl" => Ok(Self::NdJson),
            "application/geo+json" => Ok(Self::GeoJson),
            "application/vnd.apache.parquet" | "application/x-parquet" => Ok(Self::Parquet),
            _ => Err(IngestError::UnsupportedMediaType(content_type.to_string())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Csv => "CSV",
            Self::Json => "JSON",
            Self::NdJson => "NDJSON",
            Self::GeoJson => "GeoJSON",
            Self::Parquet => "Parquet",
        }
    }
}

fn odf_schema_to_arrow(schema: &DataSchema) -> Result<SchemaRef, IngestError> {
    let schema = weir_dataset::schema::schema_to_arrow(schema)
        .map_err(|error| IngestError::Unsupported(format!("read schema: {error}")))?;
    Ok(Arc::new(schema))
}

/// Schema the read step declares, if any. Declared fields accept nulls unless ODF says otherwise.
pub fn declared_schema(read_step: &ReadStep) -> Result<Option<SchemaRef>, IngestError> {
    let (schema, ddl) = match read_step {
        ReadStep::Csv(step) => (&step.schema, &step.ddl_schema),
        ReadStep::Json(step) => (&step.schema, &step.ddl_schema),
        ReadStep::NdJson(step) => (&step.schema, &step.ddl_schema),
        ReadStep::GeoJson(step) => (&step.schema, &step.ddl_schema),
        ReadStep::NdGeoJson(step) => (&step.schema, &step.ddl_schema),
        ReadStep::Parquet(step) => (&step.schema, &step.ddl_schema),
        ReadStep::EsriShapefile(step) => (&step.schema, &step.ddl_schema),
    };
    if let Some(schema) = schema {
        return odf_schema_to_arrow(schema).map(Some);
    }
    if let Some(ddl) = ddl {
        return parse_ddl_schema(ddl).map(|schema| Some(Arc::new(schema)));
    }
    Ok(None)
}

/// Decodes a body chunk by chunk.
pub struct RecordsReader {
    inner: Inner,
}

enum Inner {
    Csv(Box<csv::CsvReader>),
    Json(Box<json::JsonReader>),
    Buffered {
        format: MediaFormat,
        schema: Option<SchemaRef>,
        buffer: Vec<u8>,
    },
}

impl RecordsReader {
    pub fn new(format: MediaFormat, read_step: &ReadStep) -> Result<Self, IngestError> {
        let schema = declared_schema(read_step)?;
        let inner = match format {
            MediaFormat::Csv => Inner::Csv(Box::new(csv::CsvReader::new(read_step, schema)?)),
            MediaFormat::NdJson => Inner::Json(Box::new(json::JsonReader::new(schema, false))),
            MediaFormat::Json => Inner::Json(Box::new(json::JsonReader::new(schema, true))),
            MediaFormat::GeoJson | MediaFormat::Parquet => Inner::Buffered {
                format,
                schema,
                buffer: Vec::new(),
            },
        };
        Ok(Self { inner })
    }

    pub fn push(&mut self, chunk: &[u8]) -> Result<(), IngestError> {
        match &mut self.inner {
            Inner::Csv(reader) => reader.push(chunk),
            Inner::Json(reader) => reader.push(chunk),
            Inner::Buffered { buffer, .. } => {
                buffer.extend_from_slice(chunk);
                Ok(())
            }
        }
    }

    /// Finishes decoding; returns the batches (possibly none) and their schema.
    pub fn finish(self) -> Result<(SchemaRef, Vec<RecordBatch>), IngestError> {
        match self.inner {
            Inner::Csv(reader) => reader.finish(),
            Inner::Json(reader) => reader.finish(),
            Inner::Buffered {
                format: MediaFormat::GeoJson,
                schema,
                buffer,
            } => json::read_geojson(&buffer, schema),
            Inner::Buffered { schema, buffer, .. } => read_parquet(buffer, schema),
        }
    }
}

fn read_parquet(
    buffer: Vec<u8>,
    schema: Option<SchemaRef>,
) -> Result<(SchemaRef, Vec<RecordBatch>), IngestError> {
    let malformed = |error: parquet::errors::ParquetError| IngestError::Malformed {
        format: "Parquet",
        message: error.to_string(),
    };
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(buffer),
    )
    .map_err(malformed)?
    .with_batch_size(BATCH_SIZE);
    let file_schema = builder.schema().clone();
    let batches = builder
        .build()
        .map_err(malformed)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| IngestError::Malformed {
            format: "Parquet",
            message: error.to_string(),
        })?;
    let Some(schema) = schema else {
        return Ok((file_schema, batches));
    };
    let batches = batches
        .iter()
        .map(|batch| conform(batch, &schema))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((schema, batches))
}

/// Selects and casts the columns of `batch` to `schema`, naming the column that does not fit.
pub fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, IngestError> {
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let column = batch.column_by_name(field.name()).ok_or_else(|| {
            IngestError::BadValue(format!(
                "column `{}` is missing from the input",
                field.name()
            ))
        })?;
        let column = arrow::compute::cast(column, field.data_type()).map_err(|error| {
            IngestError::BadValue(format!("column `{}`: {error}", field.name()))
        })?;
        if !field.is_nullable() && column.null_count() > 0 {
            return Err(IngestError::BadValue(format!(
                "column `{}` must not contain nulls",
                field.name()
            )));
        }
        columns.push(column);
    }
    let relaxed: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    RecordBatch::try_new(Arc::new(Schema::new(relaxed)), columns)
        .map_err(|error| IngestError::BadValue(error.to_string()))
}
