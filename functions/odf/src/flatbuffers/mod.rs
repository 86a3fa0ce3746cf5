//! Canonical FlatBuffers form of metadata blocks and the manifest that wraps them.

pub mod builder;
pub mod codec;
pub mod reader;

use crate::hash::{MULTICODEC_ODF_METADATA_BLOCK, Multihash};
use crate::model::MetadataBlock;
use builder::Builder;
use codec::FbTable;
pub use reader::DecodeError;
use reader::Table;

/// Version of the metadata block format written into manifests (version 3: blocks that may carry the RFC-016 ODF schema).
pub const METADATA_BLOCK_VERSION: i32 = 3;

/// Oldest block version we read (version 2 introduced sequence numbers; its layout is a subset).
pub const MIN_SUPPORTED_METADATA_BLOCK_VERSION: i32 = 2;

/// Serializes a block into its canonical bytes: the block table nested as `[ubyte]` into a
/// `Manifest {kind: int64, version: int32, content: [ubyte]}` table.
pub fn encode_block(block: &MetadataBlock) -> Vec<u8> {
    let mut inner = Builder::new();
    let root = block.write_table(&mut inner);
    let content = inner.finish(root);

    let mut outer = Builder::new();
    let content_offset = outer.create_byte_vector(&content);
    let start = outer.start_table();
    outer.push_slot_always_scalar(0, &(MULTICODEC_ODF_METADATA_BLOCK as i64).to_le_bytes());
    outer.push_slot_always_scalar(1, &METADATA_BLOCK_VERSION.to_le_bytes());
    outer.push_slot_offset(2, content_offset);
    let manifest = outer.end_table(start);
    outer.finish(manifest)
}

/// Decodes canonical block bytes written by any conforming implementation.
pub fn decode_block(bytes: &[u8]) -> Result<MetadataBlock, DecodeError> {
    let manifest = Table::root(bytes)?;
    let kind = i64::from_le_bytes(manifest.scalar::<8>(0)?.unwrap_or_default());
    if kind != MULTICODEC_ODF_METADATA_BLOCK as i64 {
        return Err(DecodeError::UnsupportedManifest {
            message: format!("kind {kind:#x} is not odf-metadata-block"),
        });
    }
    let version = i32::from_le_bytes(manifest.scalar::<4>(1)?.unwrap_or_default());
    if !(MIN_SUPPORTED_METADATA_BLOCK_VERSION..=METADATA_BLOCK_VERSION).contains(&version) {
        return Err(DecodeError::UnsupportedManifest {
            message: format!(
                "block version {version} is not supported (supported: {MIN_SUPPORTED_METADATA_BLOCK_VERSION} to {METADATA_BLOCK_VERSION})"
            ),
        });
    }
    let content = manifest
        .bytes(2)?
        .ok_or_else(|| codec::missing("content"))?;
    let block = Table::root(content)?;
    MetadataBlock::read_table(&block)
}

/// Hash of a block: SHA3-256 of its canonical bytes.
pub fn hash_block_bytes(bytes: &[u8]) -> Multihash {
    Multihash::sha3_256(bytes)
}
