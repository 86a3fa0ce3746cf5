//! Decoding one block of whole records (CSV or NDJSON) into record batches.
//!
//! Blocks decode independently, so errors are reported relative to the block; the pipeline
//! turns them into record and line numbers of the whole body once it knows how many records
//! came before the block.

use arrow::array::RecordBatch;
use arrow::csv::reader::Format;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use bytes::Bytes;

use super::BATCH_SIZE;
use super::flat_json::FlatJsonDecoder;
use crate::error::IngestError;

/// How the records of one block are decoded; shared by every decoding thread.
pub enum BlockDecoder {
    Csv {
        schema: SchemaRef,
        format: Format,
        header: bool,
    },
    Json {
        schema: SchemaRef,
        /// The fast path for flat records, when the schema's types allow it.
        flat: Option<FlatJsonDecoder>,
    },
}

impl BlockDecoder {
    pub fn json(schema: SchemaRef) -> Self {
        Self::Json {
            flat: FlatJsonDecoder::for_schema(&schema),
            schema,
        }
    }
}

/// A decoding error, relative to the block it happened in.
#[derive(Debug)]
pub enum BlockError {
    /// The block's `index`-th record (0-based) fails to decode.
    Record {
        index: usize,
        malformed: bool,
        message: String,
    },
    /// A CSV error whose "line N" numbers count from the block's first record.
    CsvLines {
        message: String,
        first_block: bool,
        header_lines: u64,
    },
    Other(IngestError),
}

impl BlockError {
    /// The error for the whole body, given the records that came before the block.
    pub fn into_ingest_error(self, records_before: u64) -> IngestError {
        match self {
            Self::Record {
                index,
                malformed: true,
                message,
            } => json_malformed(format!(
                "record {}: {message}",
                records_before + index as u64 + 1
            )),
            Self::Record { index, message, .. } => IngestError::BadValue(format!(
                "record {}: {message}",
                records_before + index as u64 + 1
            )),
            Self::CsvLines {
                message,
                first_block,
                header_lines,
            } => {
                let before = if first_block {
                    0
                } else {
                    records_before + header_lines
                };
                IngestError::Malformed {
                    format: "CSV",
                    message: to_file_line_numbers(&message, before),
                }
            }
            Self::Other(error) => error,
        }
    }
}

fn json_malformed(message: String) -> IngestError {
    IngestError::Malformed {
        format: "JSON",
        message,
    }
}

impl BlockDecoder {
    pub fn schema(&self) -> &SchemaRef {
        match self {
            Self::Csv { schema, .. } | Self::Json { schema, .. } => schema,
        }
    }

    /// Decodes every record of `block`; the first block of a CSV body holds its header.
    pub fn decode(
        &self,
        block: &[Bytes],
        first_block: bool,
    ) -> Result<Vec<RecordBatch>, BlockError> {
        match self {
            Self::Csv {
                schema,
                format,
                header,
            } => decode_csv(schema, format, *header, block, first_block),
            Self::Json { schema, flat } => {
                if let Some(batches) = flat.as_ref().and_then(|flat| flat.decode(block)) {
                    return Ok(batches);
                }
                decode_json(schema, block)
            }
        }
    }
}

fn decode_csv(
    schema: &SchemaRef,
    format: &Format,
    header: bool,
    block: &[Bytes],
    first_block: bool,
) -> Result<Vec<RecordBatch>, BlockError> {
    let format = if first_block {
        format.clone()
    } else {
        format.clone().with_header(false)
    };
    let failed = |error: ArrowError| BlockError::CsvLines {
        message: name_columns(error.to_string(), schema),
        first_block,
        header_lines: u64::from(header),
    };
    let mut decoder = arrow::csv::reader::ReaderBuilder::new(schema.clone())
        .with_format(format)
        .with_batch_size(BATCH_SIZE)
        .build_decoder();
    // A last record without a newline is completed by an empty decode.
    decode_pieces(&mut decoder, block, &[]).map_err(failed)
}

fn decode_json(schema: &SchemaRef, block: &[Bytes]) -> Result<Vec<RecordBatch>, BlockError> {
    super::json_depth::check_block(block)?;
    let mut decoder = arrow::json::ReaderBuilder::new(schema.clone())
        .with_batch_size(BATCH_SIZE)
        .build_decoder()
        .map_err(|error| BlockError::Other(IngestError::Internal(error.to_string())))?;
    let failed = |error: ArrowError| locate_json_error(schema, &block.concat(), error);
    // A last record without a newline is completed by one.
    decode_pieces(&mut decoder, block, b"\n").map_err(failed)
}

/// The two arrow push decoders: both stop when a batch is full and keep a partial record for
/// the next call.
trait PushDecoder {
    fn decode(&mut self, bytes: &[u8]) -> Result<usize, ArrowError>;
    fn flush(&mut self) -> Result<Option<RecordBatch>, ArrowError>;
}

impl PushDecoder for arrow::csv::reader::Decoder {
    fn decode(&mut self, bytes: &[u8]) -> Result<usize, ArrowError> {
        self.decode(bytes)
    }

    fn flush(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        self.flush()
    }
}

impl PushDecoder for arrow::json::reader::Decoder {
    fn decode(&mut self, bytes: &[u8]) -> Result<usize, ArrowError> {
        self.decode(bytes)
    }

    fn flush(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        self.flush()
    }
}

/// Feeds every piece of a block (records may span pieces), then `end`, flushing full batches.
fn decode_pieces(
    decoder: &mut impl PushDecoder,
    block: &[Bytes],
    end: &[u8],
) -> Result<Vec<RecordBatch>, ArrowError> {
    let mut batches = Vec::new();
    for piece in block {
        let mut rest: &[u8] = piece;
        while !rest.is_empty() {
            let consumed = decoder.decode(rest)?;
            rest = &rest[consumed..];
            // The decoder stopped short: its batch is full.
            if (consumed == 0 || !rest.is_empty())
                && let Some(batch) = decoder.flush()?
            {
                batches.push(batch);
            }
        }
    }
    decoder.decode(end)?;
    batches.extend(decoder.flush()?);
    Ok(batches)
}

/// Finds the first record of the block that fails on its own, to name it.
fn locate_json_error(schema: &SchemaRef, block: &[u8], error: ArrowError) -> BlockError {
    let records = block
        .split(|b| *b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace));
    for (index, line) in records.enumerate() {
        if let Err(error) = serde_json::from_slice::<serde_json::Value>(line) {
            return BlockError::Record {
                index,
                malformed: true,
                message: error.to_string(),
            };
        }
        let Ok(mut single) = arrow::json::ReaderBuilder::new(schema.clone()).build_decoder() else {
            break;
        };
        let result = single
            .decode(line)
            .and_then(|_| single.decode(b"\n"))
            .and_then(|_| single.flush());
        if let Err(error) = result {
            return BlockError::Record {
                index,
                malformed: false,
                message: error
                    .to_string()
                    .trim_start_matches("Json error: ")
                    .to_string(),
            };
        }
    }
    BlockError::Other(json_malformed(error.to_string()))
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

/// Turns the line number arrow gives (relative to the decoder's first record) into the line
/// of the body, 1-based, given the records (header included) before the block.
///
/// Arrow counts "for line N" 1-based and "at line N" 0-based; both become 1-based. Lines are
/// records: a quoted field that spans lines counts once. Only the first "line N" is the number;
/// the row data quoted after it is left alone.
fn to_file_line_numbers(message: &str, records_before: u64) -> String {
    let Some(position) = message.find("line ") else {
        return message.to_string();
    };
    let (head, rest) = message.split_at(position + 5);
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let Ok(line) = rest[..digits].parse::<u64>() else {
        return message.to_string();
    };
    let zero_based = head.ends_with("at line ");
    let line = line + records_before + u64::from(zero_based);
    format!("{head}{line}{}", &rest[digits..])
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{DataType, Field, Schema};
    use bytes::Bytes;

    use super::{BlockDecoder, to_file_line_numbers};

    /// The block cut into pieces of `size` bytes, so records span pieces.
    fn pieces(text: &str, size: usize) -> Vec<Bytes> {
        text.as_bytes()
            .chunks(size)
            .map(Bytes::copy_from_slice)
            .collect()
    }

    #[test]
    fn records_spanning_pieces_decode_as_in_one_piece() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let csv: String = (0..20_000).map(|i| format!("{i},\"n\n{i}\"\n")).collect();
        let json: String = (0..20_000)
            .map(|i| format!("{{\"id\": {i}, \"name\": \"n{i}\"}}\n"))
            .collect();
        let decoders = [
            (
                BlockDecoder::Csv {
                    schema: schema.clone(),
                    format: arrow::csv::reader::Format::default(),
                    header: false,
                },
                csv,
            ),
            (BlockDecoder::json(schema), json),
        ];
        for (decoder, text) in decoders {
            let whole = decoder.decode(&pieces(&text, text.len()), false).unwrap();
            let cut = decoder.decode(&pieces(&text, 7), false).unwrap();
            let rows = |batches: &[arrow::array::RecordBatch]| {
                arrow::compute::concat_batches(&batches[0].schema(), batches).unwrap()
            };
            assert_eq!(rows(&whole).num_rows(), 20_000);
            assert_eq!(rows(&whole), rows(&cut));
        }
    }

    #[test]
    fn line_numbers_count_from_the_body_start() {
        assert_eq!(
            to_file_line_numbers("bad at line 3. Row data: '[line 7]'", 100),
            "bad at line 104. Row data: '[line 7]'"
        );
        assert_eq!(
            to_file_line_numbers("incorrect number of fields for line 3, expected 2", 100),
            "incorrect number of fields for line 103, expected 2"
        );
        assert_eq!(to_file_line_numbers("no number", 5), "no number");
    }
}
