//! A fast path for the most common NDJSON: flat records of numbers, strings, booleans and
//! RFC 3339 UTC timestamps under a declared schema.
//!
//! It reads each line once, straight into Arrow builders, and takes only input whose result is
//! certain to equal arrow-json's: anything else (nested values, escapes in strings, numbers
//! written as strings, unknown or repeated keys, other timestamp forms, malformed lines) makes
//! it give the block up, and the block is decoded by arrow-json, which also words the errors.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use bytes::Bytes;

use super::BATCH_SIZE;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Int64,
    Float64,
    Utf8,
    Boolean,
    /// Timestamp(ms) in UTC.
    TimestampMillis,
}

enum Column {
    Int64(Int64Builder),
    Float64(Float64Builder),
    Utf8(StringBuilder),
    Boolean(BooleanBuilder),
    TimestampMillis(TimestampMillisecondBuilder),
}

pub struct FlatJsonDecoder {
    schema: SchemaRef,
    names: Vec<Vec<u8>>,
    kinds: Vec<Kind>,
    nullable: Vec<bool>,
}

/// The record is outside the fast path; the block goes to arrow-json.
struct GiveUp;

impl FlatJsonDecoder {
    /// A decoder for `schema`, if every field has a type the fast path covers.
    pub fn for_schema(schema: &SchemaRef) -> Option<Self> {
        if schema.fields().len() > 64 {
            return None;
        }
        let mut kinds = Vec::new();
        for field in schema.fields() {
            kinds.push(match field.data_type() {
                DataType::Int64 => Kind::Int64,
                DataType::Float64 => Kind::Float64,
                DataType::Utf8 => Kind::Utf8,
                DataType::Boolean => Kind::Boolean,
                DataType::Timestamp(TimeUnit::Millisecond, Some(tz)) if tz.as_ref() == "UTC" => {
                    Kind::TimestampMillis
                }
                _ => return None,
            });
        }
        Some(Self {
            schema: schema.clone(),
            names: schema
                .fields()
                .iter()
                .map(|f| f.name().as_bytes().to_vec())
                .collect(),
            kinds,
            nullable: schema.fields().iter().map(|f| f.is_nullable()).collect(),
        })
    }

    /// The block's records as batches, or `None` when a record is outside the fast path.
    pub fn decode(&self, block: &[Bytes]) -> Option<Vec<RecordBatch>> {
        let mut state = BlockState::new(self);
        let mut carry: Vec<u8> = Vec::new();
        for piece in block {
            let mut rest: &[u8] = piece;
            if !carry.is_empty() {
                let Some(end) = memchr::memchr(b'\n', rest) else {
                    carry.extend_from_slice(rest);
                    continue;
                };
                carry.extend_from_slice(&rest[..end]);
                state.line(self, &carry).ok()?;
                carry.clear();
                rest = &rest[end + 1..];
            }
            while let Some(end) = memchr::memchr(b'\n', rest) {
                state.line(self, &rest[..end]).ok()?;
                rest = &rest[end + 1..];
            }
            carry.extend_from_slice(rest);
        }
        if !carry.is_empty() {
            state.line(self, &carry).ok()?;
        }
        state.finish(self)
    }
}

struct BlockState {
    columns: Vec<Column>,
    rows: usize,
    batches: Vec<RecordBatch>,
}

impl BlockState {
    fn new(decoder: &FlatJsonDecoder) -> Self {
        let columns = decoder
            .kinds
            .iter()
            .map(|kind| match kind {
                Kind::Int64 => Column::Int64(Int64Builder::with_capacity(BATCH_SIZE)),
                Kind::Float64 => Column::Float64(Float64Builder::with_capacity(BATCH_SIZE)),
                Kind::Utf8 => {
                    Column::Utf8(StringBuilder::with_capacity(BATCH_SIZE, BATCH_SIZE * 16))
                }
                Kind::Boolean => Column::Boolean(BooleanBuilder::with_capacity(BATCH_SIZE)),
                Kind::TimestampMillis => Column::TimestampMillis(
                    TimestampMillisecondBuilder::with_capacity(BATCH_SIZE).with_timezone("UTC"),
                ),
            })
            .collect();
        Self {
            columns,
            rows: 0,
            batches: Vec::new(),
        }
    }

    fn line(&mut self, decoder: &FlatJsonDecoder, line: &[u8]) -> Result<(), GiveUp> {
        // One UTF-8 check per line; strings are then cut from it at ASCII quotes.
        let text = std::str::from_utf8(line).map_err(|_| GiveUp)?;
        let mut cursor = Cursor { text, at: 0 };
        cursor.skip_whitespace();
        if cursor.at == line.len() {
            return Ok(());
        }
        cursor.expect(b'{')?;
        let mut seen = 0u64;
        let mut next_expected = 0;
        cursor.skip_whitespace();
        if cursor.peek() == Some(b'}') {
            cursor.at += 1;
        } else {
            loop {
                cursor.skip_whitespace();
                let key = cursor.plain_string()?.as_bytes();
                let index = if decoder.names.get(next_expected).is_some_and(|n| n == key) {
                    next_expected
                } else {
                    decoder.names.iter().position(|n| n == key).ok_or(GiveUp)?
                };
                if seen & (1 << index) != 0 {
                    return Err(GiveUp);
                }
                seen |= 1 << index;
                next_expected = index + 1;
                cursor.skip_whitespace();
                cursor.expect(b':')?;
                cursor.skip_whitespace();
                self.value(decoder, index, &mut cursor)?;
                cursor.skip_whitespace();
                match cursor.next() {
                    Some(b',') => continue,
                    Some(b'}') => break,
                    _ => return Err(GiveUp),
                }
            }
        }
        cursor.skip_whitespace();
        if cursor.at != line.len() {
            return Err(GiveUp);
        }
        for index in 0..decoder.kinds.len() {
            if seen & (1 << index) == 0 {
                if !decoder.nullable[index] {
                    return Err(GiveUp);
                }
                self.append_null(index);
            }
        }
        self.rows += 1;
        if self.rows == BATCH_SIZE {
            self.flush(decoder).ok_or(GiveUp)?;
        }
        Ok(())
    }

    fn value(
        &mut self,
        decoder: &FlatJsonDecoder,
        index: usize,
        cursor: &mut Cursor<'_>,
    ) -> Result<(), GiveUp> {
        if cursor.literal(b"null") {
            if !decoder.nullable[index] {
                return Err(GiveUp);
            }
            self.append_null(index);
            return Ok(());
        }
        match &mut self.columns[index] {
            Column::Int64(builder) => {
                let number = cursor.number()?;
                if !number.integer {
                    return Err(GiveUp);
                }
                builder.append_value(parse_i64(number.text.as_bytes()).ok_or(GiveUp)?);
            }
            Column::Float64(builder) => {
                builder.append_value(cursor.number()?.text.parse::<f64>().map_err(|_| GiveUp)?);
            }
            Column::Utf8(builder) => builder.append_value(cursor.plain_string()?),
            Column::Boolean(builder) => {
                if cursor.literal(b"true") {
                    builder.append_value(true);
                } else if cursor.literal(b"false") {
                    builder.append_value(false);
                } else {
                    return Err(GiveUp);
                }
            }
            Column::TimestampMillis(builder) => {
                let text = cursor.plain_string()?.as_bytes();
                builder.append_value(utc_millis(text).ok_or(GiveUp)?);
            }
        }
        Ok(())
    }

    fn append_null(&mut self, index: usize) {
        match &mut self.columns[index] {
            Column::Int64(builder) => builder.append_null(),
            Column::Float64(builder) => builder.append_null(),
            Column::Utf8(builder) => builder.append_null(),
            Column::Boolean(builder) => builder.append_null(),
            Column::TimestampMillis(builder) => builder.append_null(),
        }
    }

    fn flush(&mut self, decoder: &FlatJsonDecoder) -> Option<()> {
        if self.rows == 0 {
            return Some(());
        }
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|column| match column {
                Column::Int64(builder) => Arc::new(builder.finish()) as ArrayRef,
                Column::Float64(builder) => Arc::new(builder.finish()),
                Column::Utf8(builder) => Arc::new(builder.finish()),
                Column::Boolean(builder) => Arc::new(builder.finish()),
                Column::TimestampMillis(builder) => Arc::new(builder.finish()),
            })
            .collect();
        self.batches
            .push(RecordBatch::try_new(decoder.schema.clone(), arrays).ok()?);
        self.rows = 0;
        Some(())
    }

    fn finish(mut self, decoder: &FlatJsonDecoder) -> Option<Vec<RecordBatch>> {
        self.flush(decoder)?;
        Some(self.batches)
    }
}

struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

/// A number token in JSON's grammar.
struct Number<'a> {
    text: &'a str,
    /// No fraction and no exponent.
    integer: bool,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), GiveUp> {
        if self.next() == Some(byte) {
            Ok(())
        } else {
            Err(GiveUp)
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.text.as_bytes()[self.at..].starts_with(word) {
            self.at += word.len();
            return true;
        }
        false
    }

    /// A string without escapes or control characters; its bytes between the quotes.
    fn plain_string(&mut self) -> Result<&'a str, GiveUp> {
        self.expect(b'"')?;
        let start = self.at;
        let rest = &self.text.as_bytes()[start..];
        let end = memchr::memchr2(b'"', b'\\', rest).ok_or(GiveUp)?;
        if rest[end] == b'\\' || rest[..end].iter().any(|b| *b < 0x20) {
            return Err(GiveUp);
        }
        self.at += end + 1;
        // Both ends are next to ASCII quotes, so they are character boundaries.
        self.text.get(start..start + end).ok_or(GiveUp)
    }

    /// A number in JSON's grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Result<Number<'a>, GiveUp> {
        let start = self.at;
        let digits = |cursor: &mut Self| {
            let from = cursor.at;
            while matches!(cursor.peek(), Some(b'0'..=b'9')) {
                cursor.at += 1;
            }
            cursor.at - from
        };
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let leading_zero = self.peek() == Some(b'0');
        let integer = digits(self);
        if integer == 0 || (leading_zero && integer > 1) {
            return Err(GiveUp);
        }
        let integer_end = self.at;
        if self.peek() == Some(b'.') {
            self.at += 1;
            if digits(self) == 0 {
                return Err(GiveUp);
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if digits(self) == 0 {
                return Err(GiveUp);
            }
        }
        Ok(Number {
            text: self.text.get(start..self.at).ok_or(GiveUp)?,
            integer: self.at == integer_end,
        })
    }
}

/// The value of an integer token (`-?[0-9]+`, already checked); `None` when it does not fit.
fn parse_i64(token: &[u8]) -> Option<i64> {
    let (negative, digits) = match token.split_first() {
        Some((b'-', digits)) => (true, digits),
        _ => (false, token),
    };
    let mut magnitude = 0u64;
    for &digit in digits {
        magnitude = magnitude
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
    }
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Milliseconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.fraction]Z` from 1970 on; `None` for
/// any other form (arrow-json takes those).
fn utc_millis(text: &[u8]) -> Option<i64> {
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let mut value = 0u32;
        for &byte in text.get(range)? {
            if !byte.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u32::from(byte - b'0');
        }
        Some(value)
    };
    if text.len() < 20
        || text[4] != b'-'
        || text[7] != b'-'
        || text[10] != b'T'
        || text[13] != b':'
        || text[16] != b':'
        || *text.last()? != b'Z'
    {
        return None;
    }
    let year = i32::try_from(number(0..4)?).ok()?;
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if year < 1970 || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(year, number(5..7)?, number(8..10)?)?;
    let mut millis = 0u32;
    match text.len() - 20 {
        0 => {}
        fraction if text[19] == b'.' && (2..=10).contains(&fraction) => {
            let digits = &text[20..text.len() - 1];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            for position in 0..3 {
                millis = millis * 10 + digits.get(position).map_or(0, |d| u32::from(d - b'0'));
            }
        }
        _ => return None,
    }
    let seconds = date
        .and_hms_opt(hour, minute, second)?
        .and_utc()
        .timestamp();
    Some(seconds * 1000 + i64::from(millis))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, Schema};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new(
                "event_time",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                true,
            ),
            Field::new("id", DataType::Int64, true),
            Field::new("amount", DataType::Float64, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("flag", DataType::Boolean, true),
        ]))
    }

    fn arrow_json(schema: &SchemaRef, text: &str) -> RecordBatch {
        let mut decoder = arrow::json::ReaderBuilder::new(schema.clone())
            .with_batch_size(100_000)
            .build_decoder()
            .unwrap();
        decoder.decode(text.as_bytes()).unwrap();
        decoder.decode(b"\n").unwrap();
        decoder.flush().unwrap().unwrap()
    }

    fn fast(schema: &SchemaRef, text: &str, piece: usize) -> Option<RecordBatch> {
        let decoder = FlatJsonDecoder::for_schema(schema).unwrap();
        let block: Vec<Bytes> = text
            .as_bytes()
            .chunks(piece)
            .map(Bytes::copy_from_slice)
            .collect();
        let batches = decoder.decode(&block)?;
        Some(arrow::compute::concat_batches(schema, &batches).unwrap())
    }

    #[test]
    fn accepted_records_decode_exactly_as_arrow_json_does() {
        let schema = schema();
        let mut text = String::new();
        for i in 0..20_000i64 {
            let amount = match i % 5 {
                0 => format!("{}", i as f64 / 7.0),
                1 => format!("-{i}"),
                2 => format!("{i}.25e-3"),
                3 => "null".to_string(),
                _ => format!("{}E+2", i),
            };
            let time = match i % 4 {
                0 => format!("2024-02-29T23:59:{:02}Z", i % 60),
                1 => format!("2024-01-01T00:00:00.{:03}Z", i % 1000),
                2 => format!("1999-12-31T12:00:00.{:09}Z", i),
                _ => format!("2030-06-15T08:30:00.{}Z", i % 10),
            };
            // Keys in another order, missing keys and spaces, as real producers write them.
            if i % 3 == 0 {
                text.push_str(&format!(
                    "{{ \"name\" : \"n\u{e9}{i}\", \"id\": {i}, \"event_time\": \"{time}\", \"amount\": {amount} }}\r\n"
                ));
            } else {
                text.push_str(&format!(
                    "{{\"event_time\":\"{time}\",\"id\":{},\"amount\":{amount},\"name\":\"x\",\"flag\":{}}}\n",
                    i - 10_000,
                    i % 2 == 0
                ));
            }
            if i % 1000 == 0 {
                text.push_str("   \n");
            }
        }
        for extreme in ["9223372036854775807", "-9223372036854775808", "0", "-0"] {
            text.push_str(&format!("{{\"id\": {extreme}}}\n"));
        }
        let expected = arrow_json(&schema, &text);
        for piece in [text.len(), 4096, 13] {
            let actual = fast(&schema, &text, piece).expect("all records are on the fast path");
            assert_eq!(actual, expected, "pieces of {piece} bytes");
        }
    }

    #[test]
    fn records_outside_the_fast_path_give_the_block_up() {
        let schema = schema();
        let good = "{\"event_time\": \"2024-01-01T00:00:00Z\", \"id\": 1}\n";
        assert!(fast(&schema, good, 1000).is_some());
        for line in [
            "{\"event_time\": \"2024-01-01T00:00:00+01:00\", \"id\": 1}",
            "{\"event_time\": \"1969-12-31T23:59:59.5Z\", \"id\": 1}",
            "{\"event_time\": \"2024-01-01 00:00:00Z\", \"id\": 1}",
            "{\"event_time\": \"2024-13-01T00:00:00Z\", \"id\": 1}",
            "{\"id\": 1.5}",
            "{\"id\": 01}",
            "{\"id\": \"1\"}",
            "{\"id\": 99999999999999999999}",
            "{\"id\": 9223372036854775808}",
            "{\"id\": -9223372036854775809}",
            "{\"amount\": .5}",
            "{\"name\": \"a\\\"b\"}",
            "{\"name\": 5}",
            "{\"name\": {\"nested\": 1}}",
            "{\"other\": 1}",
            "{\"id\": 1, \"id\": 2}",
            "{\"id\": 1,}",
            "{\"id\": 1} trailing",
            "[1, 2]",
            "{\"flag\": True}",
        ] {
            let text = format!("{good}{line}\n");
            assert!(fast(&schema, &text, 1000).is_none(), "{line}");
        }
    }

    #[test]
    fn invalid_utf8_gives_the_block_up() {
        let decoder = FlatJsonDecoder::for_schema(&schema()).unwrap();
        let block = vec![Bytes::from_static(b"{\"name\": \"a\xffb\"}\n")];
        assert!(decoder.decode(&block).is_none());
    }
}
