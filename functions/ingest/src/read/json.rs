//! Incremental NDJSON and JSON-array decoding, and GeoJSON feature collections.
//!
//! A JSON array is turned into NDJSON on the fly by a small splitter that tracks nesting and
//! strings, so arrays of any size stream like NDJSON. Errors name the record (1-based) they are
//! in: the raw bytes of the records not yet flushed are kept, and on an error each is re-checked.

use std::io::{BufReader, Cursor};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::json::ReaderBuilder;
use arrow::json::reader::{Decoder, infer_json_schema};

use super::{BATCH_SIZE, INFERENCE_BYTES};
use crate::error::IngestError;

/// Splits a top-level JSON array into newline-separated elements.
#[derive(Default)]
struct ArraySplitter {
    started: bool,
    finished: bool,
    depth: usize,
    in_string: bool,
    escaped: bool,
    element_open: bool,
}

impl ArraySplitter {
    fn split(&mut self, input: &[u8], output: &mut Vec<u8>) -> Result<(), IngestError> {
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

    fn finish(&self) -> Result<(), IngestError> {
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

pub struct JsonReader {
    declared: Option<SchemaRef>,
    splitter: Option<ArraySplitter>,
    /// NDJSON bytes not yet given to the decoder (before inference, or a partial last line).
    pending: Vec<u8>,
    decoder: Option<(SchemaRef, Decoder)>,
    /// Raw lines of the records decoded since the last flush, for locating errors.
    unflushed: Vec<u8>,
    /// Records flushed into batches so far.
    flushed_records: usize,
    batches: Vec<RecordBatch>,
    saw_data: bool,
}

impl JsonReader {
    pub fn new(declared: Option<SchemaRef>, array: bool) -> Self {
        Self {
            declared,
            splitter: array.then(ArraySplitter::default),
            pending: Vec::new(),
            decoder: None,
            unflushed: Vec::new(),
            flushed_records: 0,
            batches: Vec::new(),
            saw_data: false,
        }
    }

    pub fn push(&mut self, chunk: &[u8]) -> Result<(), IngestError> {
        if !chunk.iter().all(u8::is_ascii_whitespace) {
            self.saw_data = true;
        }
        match &mut self.splitter {
            Some(splitter) => {
                let mut lines = Vec::with_capacity(chunk.len() + 16);
                splitter.split(chunk, &mut lines)?;
                self.pending.extend_from_slice(&lines);
            }
            None => self.pending.extend_from_slice(chunk),
        }
        if self.decoder.is_none()
            && (self.declared.is_some() || self.pending.len() >= INFERENCE_BYTES)
        {
            self.start_decoder()?;
        }
        if self.decoder.is_some() {
            self.feed_complete_lines()?;
        }
        Ok(())
    }

    fn start_decoder(&mut self) -> Result<(), IngestError> {
        let schema = match &self.declared {
            Some(schema) => schema.clone(),
            None => {
                let (schema, _) =
                    infer_json_schema(BufReader::new(Cursor::new(&self.pending)), Some(10_000))
                        .map_err(|error| malformed(error.to_string()))?;
                Arc::new(schema)
            }
        };
        let decoder = ReaderBuilder::new(schema.clone())
            .with_batch_size(BATCH_SIZE)
            .build_decoder()
            .map_err(|error| IngestError::Internal(error.to_string()))?;
        self.decoder = Some((schema, decoder));
        Ok(())
    }

    /// Gives the decoder every complete line in `pending`, keeping a partial last line back.
    fn feed_complete_lines(&mut self) -> Result<(), IngestError> {
        let Some(last_newline) = self.pending.iter().rposition(|b| *b == b'\n') else {
            return Ok(());
        };
        let rest = self.pending.split_off(last_newline + 1);
        let lines = std::mem::replace(&mut self.pending, rest);
        self.feed(&lines)
    }

    fn feed(&mut self, mut bytes: &[u8]) -> Result<(), IngestError> {
        while !bytes.is_empty() {
            let (_, decoder) = self
                .decoder
                .as_mut()
                .expect("decoder started before feeding");
            let consumed = match decoder.decode(bytes) {
                Ok(consumed) => consumed,
                Err(error) => {
                    self.unflushed.extend_from_slice(bytes);
                    return Err(self.locate(error.to_string()));
                }
            };
            self.unflushed.extend_from_slice(&bytes[..consumed]);
            bytes = &bytes[consumed..];
            if consumed == 0 || !bytes.is_empty() {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IngestError> {
        let (_, decoder) = self
            .decoder
            .as_mut()
            .expect("decoder started before flushing");
        match decoder.flush() {
            Ok(Some(batch)) => {
                self.flushed_records += batch.num_rows();
                self.batches.push(batch);
                self.unflushed.clear();
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(error) => Err(self.locate(error.to_string())),
        }
    }

    /// Finds the first record among the unflushed ones that fails on its own.
    fn locate(&self, message: String) -> IngestError {
        let Some((schema, _)) = &self.decoder else {
            return malformed(message);
        };
        let lines = self
            .unflushed
            .split(|b| *b == b'\n')
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace));
        for (index, line) in lines.enumerate() {
            let record = self.flushed_records + index + 1;
            if let Err(error) = serde_json::from_slice::<serde_json::Value>(line) {
                return malformed(format!("record {record}: {error}"));
            }
            let Ok(mut single) = ReaderBuilder::new(schema.clone()).build_decoder() else {
                break;
            };
            let result = single
                .decode(line)
                .and_then(|_| single.decode(b"\n"))
                .and_then(|_| single.flush());
            if let Err(error) = result {
                return IngestError::BadValue(format!(
                    "record {record}: {}",
                    clean(&error.to_string())
                ));
            }
        }
        malformed(message)
    }

    pub fn finish(mut self) -> Result<(SchemaRef, Vec<RecordBatch>), IngestError> {
        if let Some(splitter) = &self.splitter {
            splitter.finish()?;
        } else if !self.saw_data {
            return Err(IngestError::EmptyBody);
        }
        if self.decoder.is_none() {
            if self.pending.iter().all(u8::is_ascii_whitespace) && self.declared.is_none() {
                return Err(IngestError::EmptyBody);
            }
            self.start_decoder()?;
        }
        let pending = std::mem::take(&mut self.pending);
        self.feed(&pending)?;
        self.feed(b"\n")?;
        self.flush()?;
        let (schema, _) = self.decoder.take().expect("decoder was started");
        Ok((schema, self.batches))
    }
}

fn clean(message: &str) -> String {
    message.trim_start_matches("Json error: ").to_string()
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
    let mut reader = JsonReader::new(declared, false);
    reader.push(&lines)?;
    reader.finish()
}
