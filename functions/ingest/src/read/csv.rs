//! Incremental CSV decoding with the options of a `ReadStepCsv`.

use std::io::Cursor;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::csv::reader::{Decoder, Format, ReaderBuilder};
use arrow::datatypes::SchemaRef;
use weir_odf::ReadStep;

use super::{BATCH_SIZE, INFERENCE_BYTES};
use crate::error::IngestError;

pub struct CsvReader {
    format: Format,
    declared: Option<SchemaRef>,
    pending: Vec<u8>,
    decoder: Option<(SchemaRef, Decoder)>,
    batches: Vec<RecordBatch>,
}

fn single_byte(option: &Option<String>, name: &str) -> Result<Option<u8>, IngestError> {
    match option.as_deref() {
        None | Some("") => Ok(None),
        Some(text) if text.len() == 1 => Ok(Some(text.as_bytes()[0])),
        Some(text) => Err(IngestError::Unsupported(format!(
            "CSV {name} `{text}` must be a single ASCII character"
        ))),
    }
}

fn malformed(message: String) -> IngestError {
    IngestError::Malformed {
        format: "CSV",
        message,
    }
}

/// Rewrites arrow's "for column 3" into the column's name.
fn name_columns(message: String, schema: &SchemaRef) -> String {
    let Some(start) = message.find("for column ") else {
        return message;
    };
    let digits: String = message[start + 11..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let Ok(index) = digits.parse::<usize>() else {
        return message;
    };
    let Some(field) = schema.fields().get(index) else {
        return message;
    };
    format!(
        "{}for column `{}`{}",
        &message[..start],
        field.name(),
        &message[start + 11 + digits.len()..]
    )
}

impl CsvReader {
    pub fn new(read_step: &ReadStep, declared: Option<SchemaRef>) -> Result<Self, IngestError> {
        let mut format = Format::default();
        if let ReadStep::Csv(step) = read_step {
            format = format.with_header(step.header.unwrap_or(false));
            if let Some(separator) = single_byte(&step.separator, "separator")? {
                format = format.with_delimiter(separator);
            }
            if let Some(quote) = single_byte(&step.quote, "quote")? {
                format = format.with_quote(quote);
            }
            if let Some(escape) = single_byte(&step.escape, "escape")? {
                format = format.with_escape(escape);
            }
            if let Some(null_value) = step.null_value.as_deref().filter(|v| !v.is_empty()) {
                let pattern = format!("^{}$", regex_escape(null_value));
                let regex = regex::Regex::new(&pattern)
                    .map_err(|error| IngestError::Unsupported(format!("CSV nullValue: {error}")))?;
                format = format.with_null_regex(regex);
            }
            if let Some(encoding) = step.encoding.as_deref()
                && !encoding.eq_ignore_ascii_case("utf8")
                && !encoding.eq_ignore_ascii_case("utf-8")
            {
                return Err(IngestError::Unsupported(format!(
                    "CSV encoding `{encoding}` (only utf8)"
                )));
            }
        }
        Ok(Self {
            format,
            declared,
            pending: Vec::new(),
            decoder: None,
            batches: Vec::new(),
        })
    }

    fn start_decoder(&mut self) -> Result<(), IngestError> {
        let schema = match &self.declared {
            Some(schema) => schema.clone(),
            None => {
                let (schema, _) = self
                    .format
                    .infer_schema(Cursor::new(&self.pending), Some(10_000))
                    .map_err(|error| malformed(error.to_string()))?;
                Arc::new(schema)
            }
        };
        let builder = ReaderBuilder::new(schema.clone())
            .with_format(self.format.clone())
            .with_batch_size(BATCH_SIZE);
        self.decoder = Some((schema, builder.build_decoder()));
        let pending = std::mem::take(&mut self.pending);
        self.feed(&pending)
    }

    fn feed(&mut self, mut bytes: &[u8]) -> Result<(), IngestError> {
        let Some((schema, decoder)) = self.decoder.as_mut() else {
            return Ok(());
        };
        while !bytes.is_empty() {
            let consumed = decoder
                .decode(bytes)
                .map_err(|error| malformed(name_columns(error.to_string(), schema)))?;
            bytes = &bytes[consumed..];
            if (decoder.capacity() == 0 || consumed == 0)
                && let Some(batch) = decoder
                    .flush()
                    .map_err(|error| malformed(name_columns(error.to_string(), schema)))?
            {
                self.batches.push(batch);
            }
        }
        Ok(())
    }

    pub fn push(&mut self, chunk: &[u8]) -> Result<(), IngestError> {
        if self.decoder.is_some() {
            return self.feed(chunk);
        }
        self.pending.extend_from_slice(chunk);
        if self.declared.is_some() || self.pending.len() >= INFERENCE_BYTES {
            self.start_decoder()?;
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<(SchemaRef, Vec<RecordBatch>), IngestError> {
        if self.decoder.is_none() {
            if self.pending.is_empty() {
                return Err(IngestError::EmptyBody);
            }
            self.start_decoder()?;
        }
        let (schema, mut decoder) = self.decoder.take().expect("decoder was started");
        // A final line without a trailing newline is completed by an empty decode.
        decoder
            .decode(&[])
            .map_err(|error| malformed(name_columns(error.to_string(), &schema)))?;
        if let Some(batch) = decoder
            .flush()
            .map_err(|error| malformed(name_columns(error.to_string(), &schema)))?
        {
            self.batches.push(batch);
        }
        Ok((schema, self.batches))
    }
}

fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
