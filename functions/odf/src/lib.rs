//! weir-odf: the Open Data Fabric kernel of Weir.
//!
//! Holds the ODF metadata model (every metadata event of the spec), its canonical FlatBuffers
//! serialization and block hashing, multihash/multibase, dataset identities and references,
//! YAML/JSON manifests and metadata chain validation.
//!
//! It performs no I/O and must not depend on storage, networking, async runtimes, DataFusion,
//! axum, sqlx, lambda or AWS crates: every other Weir crate builds on it.

pub mod flatbuffers;
pub mod hash;
pub mod identity;
pub mod manifest;
pub mod model;
pub mod validation;

pub use flatbuffers::{DecodeError, decode_block, encode_block};
pub use hash::{HashAlgorithm, Multihash};
pub use identity::{
    AccountName, DatasetAlias, DatasetAliasRemote, DatasetId, DatasetName, DatasetRef,
    DatasetRefAny, IdentityParseError, RepoName,
};
pub use model::*;

/// Encodes a block and returns its canonical bytes with their hash.
pub fn encode_and_hash_block(block: &MetadataBlock) -> (Vec<u8>, Multihash) {
    let bytes = encode_block(block);
    let hash = flatbuffers::hash_block_bytes(&bytes);
    (bytes, hash)
}
