//! A back-to-front FlatBuffers builder that reproduces the byte layout of the reference
//! FlatBuffers implementation (alignment padding, vtable trimming and deduplication, root
//! offset alignment). Canonical ODF hashes depend on every byte it writes.

/// Byte position counted from the end of the buffer (the builder grows towards the front).
pub type RevPos = u32;

const SIZE_UOFFSET: usize = 4;
const SIZE_VOFFSET: usize = 2;

#[derive(Debug, Clone, Copy)]
struct FieldLoc {
    rev_pos: RevPos,
    vtable_offset: u16,
}

/// Builds one FlatBuffers buffer. Offsets returned by its methods are positions counted from
/// the end of the buffer, stable while the builder grows.
#[derive(Debug, Default)]
pub struct Builder {
    /// Bytes written so far, in reverse order: `reversed[0]` is the last byte of the buffer.
    reversed: Vec<u8>,
    min_align: usize,
    field_locs: Vec<FieldLoc>,
    written_vtables: Vec<RevPos>,
    table_open: bool,
}

fn padding_bytes(buf_size: usize, alignment: usize) -> usize {
    (!buf_size).wrapping_add(1) & (alignment - 1)
}

impl Builder {
    pub fn new() -> Self {
        Self {
            min_align: 1,
            ..Default::default()
        }
    }

    fn used(&self) -> usize {
        self.reversed.len()
    }

    /// Writes `bytes` so that they appear in this order in front of what is already written.
    fn prepend(&mut self, bytes: &[u8]) {
        self.reversed.extend(bytes.iter().rev());
    }

    fn pad(&mut self, count: usize) {
        self.reversed.extend(std::iter::repeat_n(0u8, count));
    }

    /// Pads so that after writing `len` more bytes the used size is a multiple of `alignment`.
    fn align(&mut self, len: usize, alignment: usize) {
        self.min_align = self.min_align.max(alignment);
        self.pad(padding_bytes(self.used() + len, alignment));
    }

    fn push_scalar_bytes(&mut self, bytes: &[u8], alignment: usize) -> RevPos {
        self.align(bytes.len(), alignment);
        self.prepend(bytes);
        self.used() as RevPos
    }

    fn push_uoffset_to(&mut self, target: RevPos) -> RevPos {
        self.align(SIZE_UOFFSET, SIZE_UOFFSET);
        let relative = (self.used() + SIZE_UOFFSET) as u32 - target;
        self.prepend(&relative.to_le_bytes());
        self.used() as RevPos
    }

    pub fn create_string(&mut self, value: &str) -> RevPos {
        self.align(value.len() + 1, SIZE_UOFFSET);
        self.prepend(&[0]);
        self.prepend(value.as_bytes());
        self.prepend(&(value.len() as u32).to_le_bytes());
        self.used() as RevPos
    }

    pub fn create_byte_vector(&mut self, value: &[u8]) -> RevPos {
        self.align(value.len(), SIZE_UOFFSET);
        self.prepend(value);
        self.prepend(&(value.len() as u32).to_le_bytes());
        self.used() as RevPos
    }

    pub fn create_offset_vector(&mut self, targets: &[RevPos]) -> RevPos {
        let size = targets.len() * SIZE_UOFFSET;
        self.align(size, SIZE_UOFFSET);
        // Elements are written last-to-first so that element 0 ends up in front.
        for &target in targets.iter().rev() {
            let relative = (self.used() + SIZE_UOFFSET) as u32 - target;
            self.prepend(&relative.to_le_bytes());
        }
        self.prepend(&(targets.len() as u32).to_le_bytes());
        self.used() as RevPos
    }

    pub fn start_table(&mut self) -> RevPos {
        assert!(
            !self.table_open,
            "flatbuffers tables cannot be nested while being built"
        );
        self.table_open = true;
        self.used() as RevPos
    }

    fn track_field(&mut self, vtable_offset: u16, rev_pos: RevPos) {
        self.field_locs.push(FieldLoc {
            rev_pos,
            vtable_offset,
        });
    }

    /// Adds a scalar field given as little-endian bytes, always (even when equal to the default).
    pub fn push_slot_always_scalar(&mut self, slot: u16, bytes: &[u8]) {
        let rev_pos = self.push_scalar_bytes(bytes, bytes.len());
        self.track_field(slot_to_vtable_offset(slot), rev_pos);
    }

    /// Adds an inline struct field given as its raw bytes with its alignment.
    pub fn push_slot_struct(&mut self, slot: u16, bytes: &[u8], alignment: usize) {
        let rev_pos = self.push_scalar_bytes(bytes, alignment);
        self.track_field(slot_to_vtable_offset(slot), rev_pos);
    }

    pub fn push_slot_offset(&mut self, slot: u16, target: RevPos) {
        let rev_pos = self.push_uoffset_to(target);
        self.track_field(slot_to_vtable_offset(slot), rev_pos);
    }

    pub fn end_table(&mut self, table_tail: RevPos) -> RevPos {
        assert!(self.table_open, "end_table without start_table");
        // Placeholder for the signed offset from the table to its vtable.
        let table_rev_pos = self.push_scalar_bytes(&[0; 4], SIZE_UOFFSET);

        let vtable_len = self
            .field_locs
            .iter()
            .map(|field| field.vtable_offset as usize + SIZE_VOFFSET)
            .max()
            .unwrap_or(0)
            .max(2 * SIZE_VOFFSET);
        let mut vtable = vec![0u8; vtable_len];
        vtable[0..2].copy_from_slice(&(vtable_len as u16).to_le_bytes());
        let inline_size = (table_rev_pos - table_tail) as u16;
        vtable[2..4].copy_from_slice(&inline_size.to_le_bytes());
        for field in &self.field_locs {
            let at = field.vtable_offset as usize;
            let distance = (table_rev_pos - field.rev_pos) as u16;
            vtable[at..at + 2].copy_from_slice(&distance.to_le_bytes());
        }

        let existing = self
            .written_vtables
            .iter()
            .copied()
            .find(|&rev_pos| self.bytes_at(rev_pos, vtable_len) == vtable.as_slice());
        let vtable_rev_pos = match existing {
            Some(rev_pos) => rev_pos,
            None => {
                self.prepend(&vtable);
                let rev_pos = self.used() as RevPos;
                self.written_vtables.push(rev_pos);
                rev_pos
            }
        };

        let soffset = vtable_rev_pos as i32 - table_rev_pos as i32;
        self.overwrite_at(table_rev_pos, &soffset.to_le_bytes());
        self.field_locs.clear();
        self.table_open = false;
        table_rev_pos
    }

    /// Reads `len` bytes in buffer order starting at the given position.
    fn bytes_at(&self, rev_pos: RevPos, len: usize) -> Vec<u8> {
        let start = rev_pos as usize;
        if start < len || start > self.used() {
            return Vec::new();
        }
        self.reversed[start - len..start]
            .iter()
            .rev()
            .copied()
            .collect()
    }

    fn overwrite_at(&mut self, rev_pos: RevPos, bytes: &[u8]) {
        let start = rev_pos as usize;
        for (index, byte) in bytes.iter().enumerate() {
            self.reversed[start - 1 - index] = *byte;
        }
    }

    /// Writes the root offset and returns the finished buffer.
    pub fn finish(mut self, root: RevPos) -> Vec<u8> {
        let min_align = self.min_align;
        self.align(SIZE_UOFFSET, min_align);
        self.push_uoffset_to(root);
        self.reversed.reverse();
        self.reversed
    }
}

/// Field `slot` (0-based, unions take two) lives at this byte offset inside a vtable.
pub fn slot_to_vtable_offset(slot: u16) -> u16 {
    (2 + slot) * SIZE_VOFFSET as u16
}
