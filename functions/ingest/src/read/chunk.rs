//! Cutting a streamed body into blocks of whole records, so blocks decode independently and
//! in parallel.
//!
//! NDJSON records end at any newline (JSON strings cannot hold a raw one). CSV records end at a
//! newline outside a quoted field; the scanner follows the same states as the CSV parser
//! (`csv-core`): a quote opens a quoted field only at the start of a field, a doubled quote or
//! the escape character stays inside it.

use bytes::Bytes;

/// Bytes per block handed to a decoder, unless a single record is longer.
pub const BLOCK_BYTES: usize = 2 << 20;

/// Where record boundaries are.
pub enum RecordBoundaries {
    Lines,
    Csv(CsvScanner),
}

/// A block of whole records: pieces of the body's chunks, in order, not copied.
pub type Block = Vec<Bytes>;

/// Collects body chunks and hands out blocks that end at a record boundary.
pub struct Chunker {
    boundaries: RecordBoundaries,
    pieces: Vec<Bytes>,
    /// Bytes in `pieces`.
    pending: usize,
}

impl Chunker {
    pub fn new(boundaries: RecordBoundaries) -> Self {
        Self {
            boundaries,
            pieces: Vec::new(),
            pending: 0,
        }
    }

    /// Adds a chunk; returns the blocks of whole records (each of at least `BLOCK_BYTES`) that
    /// are complete. A chunk larger than a block (a Lambda event's whole body) is cut as well.
    pub fn push(&mut self, mut chunk: Bytes) -> Vec<Block> {
        let mut blocks = Vec::new();
        while !chunk.is_empty() {
            let mut piece = chunk.split_to(chunk.len().min(BLOCK_BYTES));
            let boundary = match &mut self.boundaries {
                RecordBoundaries::Lines => memchr::memrchr(b'\n', &piece),
                RecordBoundaries::Csv(scanner) => scanner.last_boundary(&piece),
            };
            self.pending += piece.len();
            match boundary {
                Some(end) if self.pending >= BLOCK_BYTES => {
                    self.pieces.push(piece.split_to(end + 1));
                    blocks.push(std::mem::take(&mut self.pieces));
                    self.pending = piece.len();
                    if !piece.is_empty() {
                        self.pieces.push(piece);
                    }
                }
                _ => self.pieces.push(piece),
            }
        }
        blocks
    }

    /// The body line (1-based) where a quoted field opened that the body never closed.
    pub fn unclosed_quote_line(&self) -> Option<u64> {
        match &self.boundaries {
            RecordBoundaries::Csv(scanner) => scanner.unclosed_quote_line(),
            RecordBoundaries::Lines => None,
        }
    }

    /// Everything not handed out yet (the last records, possibly without a final newline).
    pub fn finish(&mut self) -> Block {
        self.pending = 0;
        std::mem::take(&mut self.pieces)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CsvState {
    StartField,
    InField,
    InQuoted,
    /// A quote inside a quoted field: it closes the field unless another quote follows.
    QuoteInQuoted,
    /// The escape character inside a quoted field: the next byte is taken as is.
    EscapeInQuoted,
}

/// Follows CSV quoting byte by byte to tell which newlines end a record.
pub struct CsvScanner {
    delimiter: u8,
    quote: u8,
    escape: Option<u8>,
    state: CsvState,
    /// Newlines seen so far (inside quoted fields too): physical lines of the body.
    newlines: u64,
    /// The 1-based line where the open quoted field started.
    quote_line: u64,
}

impl CsvScanner {
    pub fn new(delimiter: u8, quote: u8, escape: Option<u8>) -> Self {
        Self {
            delimiter,
            quote,
            escape,
            state: CsvState::StartField,
            newlines: 0,
            quote_line: 0,
        }
    }

    /// The line where a quoted field opened, if the bytes so far end inside it.
    pub fn unclosed_quote_line(&self) -> Option<u64> {
        matches!(self.state, CsvState::InQuoted | CsvState::EscapeInQuoted)
            .then_some(self.quote_line)
    }

    /// Position of the last newline in `bytes` that ends a record, carrying the state over.
    fn last_boundary(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut last = None;
        let mut index = 0;
        while index < bytes.len() {
            // Outside quotes a record ends at the next newline unless a quote comes first.
            if matches!(self.state, CsvState::StartField | CsvState::InField) {
                let rest = &bytes[index..];
                match memchr::memchr2(b'\n', self.quote, rest) {
                    None => {
                        self.state = match rest.last() {
                            Some(&byte) if byte == self.delimiter || byte == b'\r' => {
                                CsvState::StartField
                            }
                            Some(_) => CsvState::InField,
                            None => self.state,
                        };
                        return last;
                    }
                    Some(found) if rest[found] == b'\n' => {
                        self.newlines += 1;
                        last = Some(index + found);
                        self.state = CsvState::StartField;
                        index += found + 1;
                        continue;
                    }
                    Some(found) => {
                        // A quote: it opens a quoted field only at the start of a field.
                        let at_field_start = if found == 0 {
                            self.state == CsvState::StartField
                        } else {
                            matches!(rest[found - 1], b'\r') || rest[found - 1] == self.delimiter
                        };
                        self.state = if at_field_start {
                            self.quote_line = self.newlines + 1;
                            CsvState::InQuoted
                        } else {
                            CsvState::InField
                        };
                        index += found + 1;
                        continue;
                    }
                }
            }
            let byte = bytes[index];
            self.newlines += u64::from(byte == b'\n');
            self.state = match self.state {
                CsvState::InQuoted if byte == self.quote => CsvState::QuoteInQuoted,
                CsvState::InQuoted if Some(byte) == self.escape => CsvState::EscapeInQuoted,
                CsvState::InQuoted => CsvState::InQuoted,
                CsvState::EscapeInQuoted => CsvState::InQuoted,
                CsvState::QuoteInQuoted if byte == self.quote => CsvState::InQuoted,
                CsvState::QuoteInQuoted if byte == self.delimiter => CsvState::StartField,
                CsvState::QuoteInQuoted if byte == b'\n' => {
                    last = Some(index);
                    CsvState::StartField
                }
                CsvState::QuoteInQuoted => CsvState::InField,
                CsvState::StartField | CsvState::InField => unreachable!("handled above"),
            };
            index += 1;
        }
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_boundaries(text: &str) -> Vec<usize> {
        let mut scanner = CsvScanner::new(b',', b'"', None);
        let bytes = text.as_bytes();
        // Feed one byte at a time: states must carry over between pushes.
        (0..bytes.len())
            .filter_map(|i| scanner.last_boundary(&bytes[i..=i]).map(|_| i))
            .collect()
    }

    #[test]
    fn plain_csv_ends_records_at_every_newline() {
        assert_eq!(csv_boundaries("a,b\n1,2\n"), vec![3, 7]);
    }

    #[test]
    fn newlines_inside_quoted_fields_do_not_end_records() {
        let text = "a,\"x\ny\",b\n\"q\"\"\n\",2\n";
        assert_eq!(csv_boundaries(text), vec![9, 18]);
    }

    #[test]
    fn quotes_inside_unquoted_fields_are_literal() {
        // csv-core reads `5"6` as a literal field: the newline after it ends the record.
        let text = "5\"6,a\n\"x\ny\",b\n";
        assert_eq!(csv_boundaries(text), vec![5, 13]);
    }

    #[test]
    fn an_unclosed_quote_names_the_line_it_opened_on() {
        let mut scanner = CsvScanner::new(b',', b'"', None);
        scanner.last_boundary(b"a,b\n1,\"x\ny\"\n2,\"open\n3,4\n5,6\n");
        assert_eq!(scanner.unclosed_quote_line(), Some(4));
        let mut closed = CsvScanner::new(b',', b'"', None);
        closed.last_boundary(b"a,\"b\"\n1,\"x\"");
        assert_eq!(closed.unclosed_quote_line(), None);
    }

    #[test]
    fn escape_character_keeps_a_quote_inside() {
        let mut scanner = CsvScanner::new(b',', b'"', Some(b'\\'));
        let text = b"\"a\\\"\nb\",1\n2,3\n";
        assert_eq!(scanner.last_boundary(text), Some(13));
    }

    #[test]
    fn chunker_cuts_only_at_record_ends() {
        let line = "1,\"multi\nline\",x\n";
        let mut chunker = Chunker::new(RecordBoundaries::Csv(CsvScanner::new(b',', b'"', None)));
        let mut blocks = Vec::new();
        for _ in 0..(BLOCK_BYTES / line.len() * 3) {
            blocks.extend(chunker.push(Bytes::from_static(line.as_bytes())));
        }
        // A body that arrives in one piece is cut as well.
        let whole = line.repeat(BLOCK_BYTES / line.len() * 3);
        blocks.extend(chunker.push(Bytes::from(whole.clone())));
        blocks.push(chunker.finish());
        assert!(blocks.len() >= 5, "{} blocks", blocks.len());
        let mut total = 0;
        for block in &blocks {
            let bytes = block.concat();
            assert_eq!(bytes.len() % line.len(), 0, "block cut inside a record");
            total += bytes.len();
        }
        assert_eq!(
            total,
            line.len() * (BLOCK_BYTES / line.len() * 3) + whole.len()
        );
    }
}
