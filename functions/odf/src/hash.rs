//! Multihash values (SHA3-256 and the ODF `arrow0-sha3-256` logical hash) with multibase text
//! form. Output is always base16 (`f...`); input accepts any multibase encoding we can decode.

use std::fmt;
use std::str::FromStr;

use sha3::Digest;

/// Multicodec code of SHA3-256.
pub const MULTICODEC_SHA3_256: u64 = 0x16;
/// Private-use multicodec code ODF assigns to the `arrow0-sha3-256` logical data hash.
pub const MULTICODEC_ARROW0_SHA3_256: u64 = 0x30_0016;
/// Private-use multicodec code ODF assigns to metadata blocks (used in manifests).
pub const MULTICODEC_ODF_METADATA_BLOCK: u64 = 0x40_0000;
/// Multicodec code of an Ed25519 public key.
pub const MULTICODEC_ED25519_PUB: u64 = 0xed;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MultihashError {
    #[error("invalid multibase string: {0}")]
    Multibase(String),
    #[error("truncated multihash")]
    Truncated,
    #[error("unsupported multihash code {0:#x}")]
    UnsupportedCode(u64),
    #[error("multihash digest length {actual} does not match the declared {declared}")]
    LengthMismatch { declared: usize, actual: usize },
}

/// Writes an unsigned varint as multiformats define it.
pub fn write_varint(mut value: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads an unsigned varint, returning the value and the number of bytes consumed.
pub fn read_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (index, byte) in bytes.iter().enumerate().take(9) {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Some((value, index + 1));
        }
    }
    None
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashAlgorithm {
    Sha3_256,
    Arrow0Sha3_256,
}

impl HashAlgorithm {
    pub fn code(self) -> u64 {
        match self {
            Self::Sha3_256 => MULTICODEC_SHA3_256,
            Self::Arrow0Sha3_256 => MULTICODEC_ARROW0_SHA3_256,
        }
    }

    fn from_code(code: u64) -> Option<Self> {
        match code {
            MULTICODEC_SHA3_256 => Some(Self::Sha3_256),
            MULTICODEC_ARROW0_SHA3_256 => Some(Self::Arrow0Sha3_256),
            _ => None,
        }
    }
}

/// A self-describing hash: algorithm code plus a 32-byte digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Multihash {
    algorithm: HashAlgorithm,
    digest: [u8; 32],
}

impl Multihash {
    pub fn new(algorithm: HashAlgorithm, digest: [u8; 32]) -> Self {
        Self { algorithm, digest }
    }

    /// SHA3-256 of `data` (physical hashes, block hashes, checkpoint hashes).
    pub fn sha3_256(data: &[u8]) -> Self {
        Self::new(HashAlgorithm::Sha3_256, sha3::Sha3_256::digest(data).into())
    }

    pub fn algorithm(&self) -> HashAlgorithm {
        self.algorithm
    }

    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// Binary multihash: varint code, varint length, digest.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(36);
        write_varint(self.algorithm.code(), &mut out);
        write_varint(32, &mut out);
        out.extend_from_slice(&self.digest);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MultihashError> {
        let (code, code_len) = read_varint(bytes).ok_or(MultihashError::Truncated)?;
        let algorithm =
            HashAlgorithm::from_code(code).ok_or(MultihashError::UnsupportedCode(code))?;
        let (declared, len_len) =
            read_varint(&bytes[code_len..]).ok_or(MultihashError::Truncated)?;
        let digest = &bytes[code_len + len_len..];
        if declared != 32 || digest.len() != 32 {
            return Err(MultihashError::LengthMismatch {
                declared: declared as usize,
                actual: digest.len(),
            });
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(digest);
        Ok(Self::new(algorithm, out))
    }

    /// Multibase base16 text form, e.g. `f1620...`.
    pub fn to_multibase(&self) -> String {
        multibase::encode(multibase::Base::Base16Lower, self.to_bytes())
    }

    pub fn from_multibase(text: &str) -> Result<Self, MultihashError> {
        let (_, bytes) = multibase::decode(text)
            .map_err(|error| MultihashError::Multibase(error.to_string()))?;
        Self::from_bytes(&bytes)
    }
}

impl fmt::Display for Multihash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_multibase())
    }
}

impl fmt::Debug for Multihash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Multihash({})", self.to_multibase())
    }
}

impl FromStr for Multihash {
    type Err = MultihashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_multibase(s)
    }
}

impl serde::Serialize for Multihash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_multibase())
    }
}

impl<'de> serde::Deserialize<'de> for Multihash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

mod fb {
    use super::Multihash;
    use crate::flatbuffers::builder::{Builder, RevPos};
    use crate::flatbuffers::codec::{FbField, missing};
    use crate::flatbuffers::reader::{DecodeError, Table};

    impl FbField for Multihash {
        type Prepared = RevPos;

        fn prepare(&self, builder: &mut Builder) -> RevPos {
            builder.create_byte_vector(&self.to_bytes())
        }

        fn push(prepared: &RevPos, builder: &mut Builder, slot: u16) {
            builder.push_slot_offset(slot, *prepared);
        }

        fn read(table: &Table<'_>, slot: u16, name: &str) -> Result<Self, DecodeError> {
            let bytes = table.bytes(slot)?.ok_or_else(|| missing(name))?;
            Multihash::from_bytes(bytes)
                .map_err(|error| DecodeError::invalid(name, error.to_string()))
        }
    }
}
