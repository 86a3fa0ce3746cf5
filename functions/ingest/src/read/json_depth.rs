//! The nesting bound on JSON records: a record nested deeper than `MAX_JSON_DEPTH` objects and
//! arrays is refused before any parser, schema inference or writer recurses into it.

use super::block::BlockError;

/// Deepest nesting of objects and arrays a record may have (the record's own object is 1).
/// Past it, parsers, schema inference and Parquet writers recurse far enough to exhaust a
/// thread's stack. Parquet itself is rarely used beyond a handful of levels.
pub const MAX_JSON_DEPTH: usize = 64;

/// Checks every NDJSON record of a block (its pieces in order; records may span pieces).
pub fn check_block(block: &[bytes::Bytes]) -> Result<(), BlockError> {
    let mut scanner = DepthScanner::default();
    for piece in block {
        scanner.feed(piece)?;
    }
    Ok(())
}

/// Checks the records of a whole body or of the first block (records numbered from 1).
pub fn check_records(bytes: &[u8]) -> Result<(), crate::error::IngestError> {
    DepthScanner::default()
        .feed(bytes)
        .map_err(|error| error.into_ingest_error(0))
}

/// Tracks nesting across the bytes of newline-separated records.
#[derive(Default)]
pub struct DepthScanner {
    depth: usize,
    in_string: bool,
    escaped: bool,
    record: usize,
    record_open: bool,
}

impl DepthScanner {
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), BlockError> {
        for &byte in bytes {
            if self.in_string {
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
                    self.record_open = true;
                }
                b'{' | b'[' => {
                    self.depth += 1;
                    self.record_open = true;
                    if self.depth > MAX_JSON_DEPTH {
                        return Err(too_deep(self.record));
                    }
                }
                b'}' | b']' => self.depth = self.depth.saturating_sub(1),
                // A newline outside strings ends a record; an unbalanced one is the parser's
                // to report, so depth starts again at zero.
                b'\n' => {
                    if self.record_open {
                        self.record += 1;
                    }
                    self.record_open = false;
                    self.depth = 0;
                }
                b if b.is_ascii_whitespace() => {}
                _ => self.record_open = true,
            }
        }
        Ok(())
    }
}

fn too_deep(index: usize) -> BlockError {
    BlockError::Record {
        index,
        malformed: true,
        message: format!(
            "nested deeper than {MAX_JSON_DEPTH} levels of objects and arrays (the limit)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn index_of(error: BlockError) -> usize {
        match error {
            BlockError::Record { index, .. } => index,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn records_at_the_limit_pass_and_deeper_ones_are_named() {
        let at_limit = format!(
            "{}1{}",
            "[".repeat(MAX_JSON_DEPTH),
            "]".repeat(MAX_JSON_DEPTH)
        );
        let deeper = format!("{{\"a\": {}1{}}}", "[".repeat(64), "]".repeat(64));
        let ok = format!("{{\"a\": 1}}\n{at_limit}\n");
        assert!(check_block(&[Bytes::from(ok)]).is_ok());
        // Brackets inside strings do not count; the third record is the deep one.
        let body = format!("{{\"s\": \"[[[[{{{{\"}}\n\n{{\"a\": 2}}\n{deeper}\n");
        let (head, tail) = body.split_at(body.len() / 2);
        let error = check_block(&[Bytes::from(head.to_string()), Bytes::from(tail.to_string())])
            .unwrap_err();
        assert_eq!(index_of(error), 2);
    }
}
