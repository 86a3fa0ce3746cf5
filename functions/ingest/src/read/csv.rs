//! The CSV dialect of a `ReadStepCsv` and schema inference.

use std::io::Cursor;
use std::sync::Arc;

use arrow::csv::reader::Format;
use arrow::datatypes::SchemaRef;
use weir_odf::ReadStep;

use crate::error::IngestError;

/// The CSV dialect of a `ReadStepCsv`, for the decoder and for the record-boundary scanner.
pub struct CsvOptions {
    pub format: Format,
    pub header: bool,
    pub delimiter: u8,
    pub quote: u8,
    pub escape: Option<u8>,
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

impl CsvOptions {
    pub fn new(read_step: &ReadStep) -> Result<Self, IngestError> {
        let mut options = Self {
            format: Format::default(),
            header: false,
            delimiter: b',',
            quote: b'"',
            escape: None,
        };
        let ReadStep::Csv(step) = read_step else {
            return Ok(options);
        };
        options.header = step.header.unwrap_or(false);
        options.format = options.format.with_header(options.header);
        if let Some(separator) = single_byte(&step.separator, "separator")? {
            options.delimiter = separator;
            options.format = options.format.with_delimiter(separator);
        }
        if let Some(quote) = single_byte(&step.quote, "quote")? {
            options.quote = quote;
            options.format = options.format.with_quote(quote);
        }
        if let Some(escape) = single_byte(&step.escape, "escape")? {
            options.escape = Some(escape);
            options.format = options.format.with_escape(escape);
        }
        if let Some(null_value) = step.null_value.as_deref().filter(|v| !v.is_empty()) {
            let pattern = format!("^{}$", regex_escape(null_value));
            let regex = regex::Regex::new(&pattern)
                .map_err(|error| IngestError::Unsupported(format!("CSV nullValue: {error}")))?;
            options.format = options.format.with_null_regex(regex);
        }
        if let Some(encoding) = step.encoding.as_deref()
            && !encoding.eq_ignore_ascii_case("utf8")
            && !encoding.eq_ignore_ascii_case("utf-8")
        {
            return Err(IngestError::Unsupported(format!(
                "CSV encoding `{encoding}` (only utf8)"
            )));
        }
        Ok(options)
    }

    /// Infers a schema from the first records (up to 10,000) of `bytes`.
    pub fn infer_schema(&self, bytes: &[u8]) -> Result<SchemaRef, IngestError> {
        let (schema, _) = self
            .format
            .infer_schema(Cursor::new(bytes), Some(10_000))
            .map_err(|error| malformed(error.to_string()))?;
        Ok(Arc::new(schema))
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
