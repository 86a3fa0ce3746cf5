//! Reading a pushed body into Arrow record batches, incrementally as chunks arrive.
//!
//! The format comes from the `Content-Type`; the schema from the push source's read step
//! (`schema`, else `ddlSchema`, else inferred from the first block of records, at most 10,000).

mod block;
mod chunk;
mod csv;
mod flat_json;
mod json;
pub mod json_depth;
mod pipeline;

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Field, Schema, SchemaRef};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use weir_odf::{DataSchema, ReadStep};

use crate::error::IngestError;
use block::BlockDecoder;
use chunk::{Block, Chunker, CsvScanner, RecordBoundaries};
use pipeline::DecodePipeline;

pub use pipeline::BatchSink;

/// Rows per decoded batch.
pub const BATCH_SIZE: usize = 8192;

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
    let (schema, ddl) = read_step.declared_schema();
    if let Some(schema) = schema {
        return odf_schema_to_arrow(schema).map(Some);
    }
    if let Some(ddl) = ddl {
        return weir_dataset::ddl::parse_ddl_schema(ddl)
            .map(|schema| Some(Arc::new(schema)))
            .map_err(|error| IngestError::Unsupported(error.message));
    }
    Ok(None)
}

/// Reads a pushed body in the given format and hands its records, in order, to `sink`.
///
/// CSV, NDJSON and JSON arrays stream through the parallel decoding pipeline; GeoJSON and
/// Parquet need the whole document and are decoded once the body has arrived. Returns the
/// records' schema (declared or inferred) and what the sink made of them.
pub async fn read_body<B, K>(
    format: MediaFormat,
    read_step: &ReadStep,
    body: B,
    sink: K,
) -> Result<(SchemaRef, K::Output), IngestError>
where
    B: Stream<Item = Result<Bytes, IngestError>> + Send,
    K: BatchSink,
{
    let declared = declared_schema(read_step)?;
    let mut body = std::pin::pin!(body);
    let mut stream = match format {
        MediaFormat::Csv => {
            let options = csv::CsvOptions::new(read_step)?;
            let scanner = CsvScanner::new(options.delimiter, options.quote, options.escape);
            StreamedBody::new(
                RecordBoundaries::Csv(scanner),
                Some(options),
                false,
                declared,
            )
        }
        MediaFormat::NdJson => StreamedBody::new(RecordBoundaries::Lines, None, false, declared),
        MediaFormat::Json => StreamedBody::new(RecordBoundaries::Lines, None, true, declared),
        MediaFormat::GeoJson | MediaFormat::Parquet => {
            let mut buffer = Vec::new();
            while let Some(chunk) = body.next().await {
                buffer.extend_from_slice(&chunk?);
            }
            if buffer.is_empty() {
                return Err(IngestError::EmptyBody);
            }
            let (schema, batches) = match format {
                MediaFormat::GeoJson => json::read_geojson(&buffer, declared)?,
                _ => read_parquet(buffer, declared)?,
            };
            let output = tokio::task::spawn_blocking(move || {
                let mut sink = sink;
                for batch in batches {
                    sink.write(batch)?;
                }
                sink.finish()
            })
            .await
            .map_err(|error| IngestError::Internal(format!("ingest sink failed: {error}")))??;
            return Ok((schema, output));
        }
    };
    let mut pipeline = DecodePipeline::start(sink)?;
    while let Some(chunk) = body.next().await {
        for block in stream.push(chunk?)? {
            let decoder = stream.decoder_for(&block)?;
            pipeline.send(&decoder, block).await?;
        }
    }
    let last = stream.finish()?;
    let decoder = stream.decoder_for(&last)?;
    if !last.is_empty() {
        pipeline.send(&decoder, last).await?;
    }
    let output = pipeline.finish().await?;
    Ok((decoder.schema().clone(), output))
}

/// A CSV, NDJSON or JSON-array body on its way to the decoding pipeline.
struct StreamedBody {
    chunker: Chunker,
    csv: Option<csv::CsvOptions>,
    splitter: Option<json::ArraySplitter>,
    declared: Option<SchemaRef>,
    decoder: Option<Arc<BlockDecoder>>,
    received: usize,
    /// Whether a byte other than whitespace arrived (whitespace alone is an empty body).
    saw_data: bool,
}

impl StreamedBody {
    fn new(
        boundaries: RecordBoundaries,
        csv: Option<csv::CsvOptions>,
        array: bool,
        declared: Option<SchemaRef>,
    ) -> Self {
        Self {
            chunker: Chunker::new(boundaries),
            csv,
            splitter: array.then(json::ArraySplitter::default),
            declared,
            decoder: None,
            received: 0,
            saw_data: false,
        }
    }

    /// Takes a chunk of the body; returns the blocks of whole records that are complete.
    fn push(&mut self, chunk: Bytes) -> Result<Vec<Block>, IngestError> {
        self.received += chunk.len();
        if !self.saw_data && !chunk.iter().all(u8::is_ascii_whitespace) {
            self.saw_data = true;
        }
        match &mut self.splitter {
            Some(splitter) => {
                let mut lines = Vec::with_capacity(chunk.len() + 16);
                splitter.split(&chunk, &mut lines)?;
                Ok(self.chunker.push(Bytes::from(lines)))
            }
            None => Ok(self.chunker.push(chunk)),
        }
    }

    /// The records after the last full block; fails on an empty or unfinished body.
    fn finish(&mut self) -> Result<Block, IngestError> {
        if self.received == 0 {
            return Err(IngestError::EmptyBody);
        }
        if let Some(splitter) = &self.splitter {
            splitter.finish()?;
        } else if !self.saw_data && self.csv.is_none() {
            return Err(IngestError::EmptyBody);
        }
        if let Some(line) = self.chunker.unclosed_quote_line() {
            return Err(IngestError::Malformed {
                format: "CSV",
                message: format!(
                    "line {line}: a quoted field opens here and is never closed (every \
                     record after it would be read into that field)"
                ),
            });
        }
        Ok(self.chunker.finish())
    }

    /// The decoder for every block, set up from the first (inferring the schema if needed).
    fn decoder_for(&mut self, first_block: &[Bytes]) -> Result<Arc<BlockDecoder>, IngestError> {
        if let Some(decoder) = &self.decoder {
            return Ok(decoder.clone());
        }
        let first_block = first_block.concat();
        let decoder = match &self.csv {
            Some(options) => BlockDecoder::Csv {
                schema: match &self.declared {
                    Some(schema) => schema.clone(),
                    None => options.infer_schema(&first_block)?,
                },
                format: options.format.clone(),
                header: options.header,
            },
            None => BlockDecoder::json(match &self.declared {
                Some(schema) => schema.clone(),
                None if first_block.iter().all(u8::is_ascii_whitespace) => {
                    return Err(IngestError::EmptyBody);
                }
                None => json::infer_schema(&first_block)?,
            }),
        };
        let decoder = Arc::new(decoder);
        self.decoder = Some(decoder.clone());
        Ok(decoder)
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
        // A column records leave out is null in all of them (a JSON record without the key),
        // unless the column must not be null.
        let column = match batch.column_by_name(field.name()) {
            Some(column) => column.clone(),
            None if field.is_nullable() => {
                arrow::array::new_null_array(field.data_type(), batch.num_rows())
            }
            None => {
                return Err(IngestError::BadValue(format!(
                    "column `{}` is missing from the input",
                    field.name()
                )));
            }
        };
        let column = &column;
        let cast = arrow::compute::cast(column, field.data_type()).map_err(|error| {
            IngestError::BadValue(format!("column `{}`: {error}", field.name()))
        })?;
        if let Some(row) = first_lost_in_cast(column, &cast) {
            return Err(IngestError::BadRecord {
                record: row as u64 + 1,
                column: field.name().clone(),
                message: format!("the value does not fit type {}", field.data_type()),
            });
        }
        let column = cast;
        if !field.is_nullable() && column.null_count() > 0 {
            return Err(IngestError::BadValue(format!(
                "column `{}` must not contain nulls",
                field.name()
            )));
        }
        columns.push(column);
    }
    let relaxed: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    let batch = RecordBatch::try_new(Arc::new(Schema::new(relaxed)), columns)
        .map_err(|error| IngestError::BadValue(error.to_string()))?;
    check_temporal_ranges(&batch)?;
    Ok(batch)
}

/// The first row a cast turned into null (its value does not fit the new type).
pub fn first_lost_in_cast(
    before: &dyn arrow::array::Array,
    after: &dyn arrow::array::Array,
) -> Option<usize> {
    if after.null_count() == before.null_count() {
        return None;
    }
    (0..after.len()).find(|&row| after.is_null(row) && before.is_valid(row))
}

/// Timestamps and dates stay within years 1–9999: what RFC 3339 writes and any ODF reader
/// holds. The error names the record (within the batch) and the column.
pub fn check_temporal_ranges(batch: &RecordBatch) -> Result<(), IngestError> {
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if let Some(row) = weir_dataset::temporal::first_outside_years_1_to_9999(column.as_ref()) {
            return Err(IngestError::BadRecord {
                record: row as u64 + 1,
                column: field.name().clone(),
                message: "the value lies outside years 1–9999".to_string(),
            });
        }
    }
    Ok(())
}
