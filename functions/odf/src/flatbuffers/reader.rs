//! A bounds-checked FlatBuffers reader. Every access validates offsets against the buffer, so
//! no byte input can make decoding panic or read out of bounds.

use super::builder::slot_to_vtable_offset;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("buffer is truncated or an offset points outside of it at byte {position}")]
    OutOfBounds { position: usize },
    #[error("required field `{field}` is missing")]
    MissingField { field: String },
    #[error("invalid value in field `{field}`: {message}")]
    InvalidValue { field: String, message: String },
    #[error("nesting is deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("unsupported manifest: {message}")]
    UnsupportedManifest { message: String },
}

impl DecodeError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::InvalidValue {
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// Prefixes the field path of this error with `parent`.
    pub fn within(self, parent: &str) -> Self {
        match self {
            Self::MissingField { field } => Self::MissingField {
                field: format!("{parent}.{field}"),
            },
            Self::InvalidValue { field, message } => Self::InvalidValue {
                field: format!("{parent}.{field}"),
                message,
            },
            other => other,
        }
    }
}

/// Maximum depth of nested tables accepted by the decoder (protects the stack).
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, Copy)]
pub struct Table<'a> {
    buf: &'a [u8],
    position: usize,
    vtable: usize,
    vtable_len: usize,
    pub depth: usize,
}

fn read_bytes<const N: usize>(buf: &[u8], position: usize) -> Result<[u8; N], DecodeError> {
    let end = position
        .checked_add(N)
        .ok_or(DecodeError::OutOfBounds { position })?;
    let slice = buf
        .get(position..end)
        .ok_or(DecodeError::OutOfBounds { position })?;
    let mut out = [0u8; N];
    out.copy_from_slice(slice);
    Ok(out)
}

fn read_u32(buf: &[u8], position: usize) -> Result<u32, DecodeError> {
    Ok(u32::from_le_bytes(read_bytes::<4>(buf, position)?))
}

fn read_u16(buf: &[u8], position: usize) -> Result<u16, DecodeError> {
    Ok(u16::from_le_bytes(read_bytes::<2>(buf, position)?))
}

fn follow_uoffset(buf: &[u8], position: usize) -> Result<usize, DecodeError> {
    let relative = read_u32(buf, position)? as usize;
    position
        .checked_add(relative)
        .filter(|target| *target < buf.len())
        .ok_or(DecodeError::OutOfBounds { position })
}

impl<'a> Table<'a> {
    /// Opens the root table of a finished buffer.
    pub fn root(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let position = follow_uoffset(buf, 0)?;
        Self::at(buf, position, 0)
    }

    fn at(buf: &'a [u8], position: usize, depth: usize) -> Result<Self, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep { limit: MAX_DEPTH });
        }
        let soffset = i32::from_le_bytes(read_bytes::<4>(buf, position)?) as i64;
        let vtable = (position as i64)
            .checked_sub(soffset)
            .filter(|v| *v >= 0)
            .ok_or(DecodeError::OutOfBounds { position })? as usize;
        let vtable_len = read_u16(buf, vtable)? as usize;
        let inline_size = read_u16(buf, vtable + 2)? as usize;
        if vtable_len < 4 || !vtable_len.is_multiple_of(2) || vtable + vtable_len > buf.len() {
            return Err(DecodeError::OutOfBounds { position: vtable });
        }
        if position + inline_size > buf.len() {
            return Err(DecodeError::OutOfBounds { position });
        }
        Ok(Self {
            buf,
            position,
            vtable,
            vtable_len,
            depth,
        })
    }

    /// Position of a field's inline value, if present.
    fn field_position(&self, slot: u16) -> Result<Option<usize>, DecodeError> {
        let entry = slot_to_vtable_offset(slot) as usize;
        if entry + 2 > self.vtable_len {
            return Ok(None);
        }
        let field_offset = read_u16(self.buf, self.vtable + entry)? as usize;
        if field_offset == 0 {
            return Ok(None);
        }
        Ok(Some(self.position + field_offset))
    }

    pub fn has(&self, slot: u16) -> Result<bool, DecodeError> {
        Ok(self.field_position(slot)?.is_some())
    }

    pub fn scalar<const N: usize>(&self, slot: u16) -> Result<Option<[u8; N]>, DecodeError> {
        match self.field_position(slot)? {
            None => Ok(None),
            Some(position) => read_bytes::<N>(self.buf, position).map(Some),
        }
    }

    fn indirect(&self, slot: u16) -> Result<Option<usize>, DecodeError> {
        match self.field_position(slot)? {
            None => Ok(None),
            Some(position) => follow_uoffset(self.buf, position).map(Some),
        }
    }

    pub fn bytes(&self, slot: u16) -> Result<Option<&'a [u8]>, DecodeError> {
        match self.indirect(slot)? {
            None => Ok(None),
            Some(position) => read_vector_bytes(self.buf, position, 1).map(Some),
        }
    }

    pub fn string(&self, slot: u16) -> Result<Option<&'a str>, DecodeError> {
        match self.bytes(slot)? {
            None => Ok(None),
            Some(bytes) => std::str::from_utf8(bytes)
                .map(Some)
                .map_err(|error| DecodeError::invalid("<string>", error.to_string())),
        }
    }

    pub fn table(&self, slot: u16) -> Result<Option<Table<'a>>, DecodeError> {
        match self.indirect(slot)? {
            None => Ok(None),
            Some(position) => Table::at(self.buf, position, self.depth + 1).map(Some),
        }
    }

    /// Positions of the elements of a vector of offsets (tables or strings).
    fn offset_vector(&self, slot: u16) -> Result<Option<Vec<usize>>, DecodeError> {
        let Some(position) = self.indirect(slot)? else {
            return Ok(None);
        };
        let raw = read_vector_bytes(self.buf, position, 4)?;
        let start = position + 4;
        let count = raw.len() / 4;
        let mut elements = Vec::with_capacity(count);
        for index in 0..count {
            elements.push(follow_uoffset(self.buf, start + index * 4)?);
        }
        Ok(Some(elements))
    }

    pub fn table_vector(&self, slot: u16) -> Result<Option<Vec<Table<'a>>>, DecodeError> {
        let Some(positions) = self.offset_vector(slot)? else {
            return Ok(None);
        };
        positions
            .into_iter()
            .map(|position| Table::at(self.buf, position, self.depth + 1))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    pub fn string_vector(&self, slot: u16) -> Result<Option<Vec<String>>, DecodeError> {
        let Some(positions) = self.offset_vector(slot)? else {
            return Ok(None);
        };
        let mut strings = Vec::with_capacity(positions.len());
        for position in positions {
            let bytes = read_vector_bytes(self.buf, position, 1)?;
            let value = std::str::from_utf8(bytes)
                .map_err(|error| DecodeError::invalid("<string>", error.to_string()))?;
            strings.push(value.to_string());
        }
        Ok(Some(strings))
    }
}

/// Reads a length-prefixed vector at `position` whose elements are `element_size` bytes.
fn read_vector_bytes(
    buf: &[u8],
    position: usize,
    element_size: usize,
) -> Result<&[u8], DecodeError> {
    let count = read_u32(buf, position)? as usize;
    let start = position + 4;
    let end = count
        .checked_mul(element_size)
        .and_then(|len| start.checked_add(len))
        .ok_or(DecodeError::OutOfBounds { position })?;
    buf.get(start..end)
        .ok_or(DecodeError::OutOfBounds { position })
}
