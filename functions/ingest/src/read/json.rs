//! JSON specifics: JSON arrays turned into NDJSON, schema inference, GeoJSON feature collections.
//!
//! A JSON array is turned into NDJSON on the fly by a small splitter that tracks nesting and
//! strings, so arrays of any size stream like NDJSON.

use std::io::{BufReader, Cursor};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::json::reader::infer_json_schema;

use super::block::BlockDecoder;
use crate::error::IngestError;

/// Splits a top-level JSON array into newline-separated elements.
#[derive(Default)]
pub struct ArraySplitter {
    started: bool,
    finished: bool,
    depth: usize,
    in_string: bool,
    escaped: bool,
    element_open: bool,
}

impl ArraySplitter {
    pub fn split(&mut self, input: &[u8], output: &mut Vec<u8>) -> Result<(), IngestError> {
        for &byte in input {
            if self.finished {
                if !byte.is_ascii_whitespace() {
                    return Err(malformed(
                        "unexpected data after the closing `]` of the array".to_string(),
                    ));
                }
                continue;
            }
            if !self.started {
                match byte {
                    b'[' => self.started = true,
                    b if b.is_ascii_whitespace() => {}
                    b'\xEF' | b'\xBB' | b'\xBF' => {}
                    _ => return Err(malformed("expected a JSON array of records".to_string())),
                }
                continue;
            }
            if self.in_string {
                output.push(byte);
                if self.escaped {
                    self.escaped = false;
                } else if byte == b'\\' {
                    self.escaped = true;
                } else if byte == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match byte {
                b'"' => {
                    self.in_string = true;
                    self.element_open = true;
                    output.push(byte);
                }
                b'{' | b'[' => {
                    self.depth += 1;
                    self.element_open = true;
                    output.push(byte);
                }
                b'}' | b']' if self.depth > 0 => {
                    self.depth -= 1;
                    output.push(byte);
                }
                b']' => {
                    if self.element_open {
                        output.push(b'\n');
                        self.element_open = false;
                    }
                    self.finished = true;
                }
                b',' if self.depth == 0 => {
                    if !self.element_open {
                        return Err(malformed("empty element in the array".to_string()));
                    }
                    output.push(b'\n');
                    self.element_open = false;
                }
                b if b.is_ascii_whitespace() && self.depth == 0 => {}
                _ => {
                    self.element_open = true;
                    output.push(byte);
                }
            }
        }
        Ok(())
    }

    pub fn finish(&self) -> Result<(), IngestError> {
        if !self.started {
            return Err(IngestError::EmptyBody);
        }
        if !self.finished {
            return Err(malformed("the array is not closed with `]`".to_string()));
        }
        Ok(())
    }
}

fn malformed(message: String) -> IngestError {
    IngestError::Malformed {
        format: "JSON",
        message,
    }
}

/// Infers a schema from the first records (up to 10,000) of NDJSON `bytes`.
pub fn infer_schema(bytes: &[u8]) -> Result<SchemaRef, IngestError> {
    super::json_depth::check_records(bytes)?;
    let (schema, _) = infer_json_schema(BufReader::new(Cursor::new(bytes)), Some(10_000))
        .map_err(|error| malformed(error.to_string()))?;
    Ok(Arc::new(schema))
}

/// A GeoJSON `FeatureCollection` (or a single `Feature`): one record per feature with the
/// feature's properties as columns and its geometry as a GeoJSON string column `geometry`.
pub fn read_geojson(
    buffer: &[u8],
    declared: Option<SchemaRef>,
) -> Result<(SchemaRef, Vec<RecordBatch>), IngestError> {
    if buffer.iter().all(u8::is_ascii_whitespace) {
        return Err(IngestError::EmptyBody);
    }
    let bad = |message: String| IngestError::Malformed {
        format: "GeoJSON",
        message,
    };
    let document: serde_json::Value =
        serde_json::from_slice(buffer).map_err(|error| bad(error.to_string()))?;
    let features = match document.get("type").and_then(|t| t.as_str()) {
        Some("FeatureCollection") => document
            .get("features")
            .and_then(|f| f.as_array())
            .cloned()
            .ok_or_else(|| bad("FeatureCollection without a `features` array".to_string()))?,
        Some("Feature") => vec![document.clone()],
        _ => return Err(bad("expected a FeatureCollection or a Feature".to_string())),
    };
    let mut lines = Vec::new();
    for (index, feature) in features.iter().enumerate() {
        let mut record = match feature.get("properties") {
            Some(serde_json::Value::Object(properties)) => properties.clone(),
            Some(serde_json::Value::Null) | None => serde_json::Map::new(),
            Some(_) => {
                return Err(bad(format!(
                    "feature {}: `properties` must be an object",
                    index + 1
                )));
            }
        };
        let geometry = feature
            .get("geometry")
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        record.insert(
            "geometry".to_string(),
            serde_json::Value::String(geometry.to_string()),
        );
        serde_json::to_writer(&mut lines, &record)
            .map_err(|error| IngestError::Internal(error.to_string()))?;
        lines.push(b'\n');
    }
    let schema = match declared {
        Some(schema) => schema,
        None => infer_schema(&lines)?,
    };
    let decoder = BlockDecoder::json(schema.clone());
    let batches = decoder
        .decode(&[bytes::Bytes::from(lines)], true)
        .map_err(|error| error.into_ingest_error(0))?;
    Ok((schema, batches))
}
