//! Verifiable query results: a commitment to the exact input (with every dataset pinned to a
//! block), the output and the sub-queries, signed with the node's Ed25519 key (`did:key`).
//!
//! Hashes are SHA3-256 multihashes of canonical JSON (object keys sorted, no whitespace).

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use weir_odf::Multihash;

pub const PROOF_TYPE: &str = "Ed25519Signature2020";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Commitment {
    pub input_hash: Multihash,
    pub output_hash: Multihash,
    pub sub_queries_hash: Multihash,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Proof {
    pub r#type: String,
    pub verification_method: String,
    pub proof_value: String,
}

/// Canonical JSON bytes: serde_json's maps are sorted by key.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

pub fn hash_json(value: &Value) -> Multihash {
    Multihash::sha3_256(&canonical_json(value))
}

pub fn commitment(input: &Value, output: &Value, sub_queries: &Value) -> Commitment {
    Commitment {
        input_hash: hash_json(input),
        output_hash: hash_json(output),
        sub_queries_hash: hash_json(sub_queries),
    }
}

/// `did:key` of an Ed25519 public key: base58btc multibase of the multicodec-prefixed key.
pub fn did_key(key: &VerifyingKey) -> String {
    let mut bytes = vec![0xed, 0x01];
    bytes.extend_from_slice(key.as_bytes());
    format!(
        "did:key:{}",
        multibase::encode(multibase::Base::Base58Btc, bytes)
    )
}

pub fn parse_did_key(did: &str) -> Result<VerifyingKey, String> {
    let encoded = did
        .strip_prefix("did:key:")
        .ok_or("verification method must be a did:key")?;
    let (_, bytes) = multibase::decode(encoded).map_err(|e| e.to_string())?;
    let key: [u8; 32] = bytes
        .strip_prefix(&[0xed, 0x01])
        .ok_or("did:key is not an Ed25519 key")?
        .try_into()
        .map_err(|_| "Ed25519 key must be 32 bytes".to_string())?;
    VerifyingKey::from_bytes(&key).map_err(|e| e.to_string())
}

pub fn sign(key: &SigningKey, commitment: &Commitment) -> Proof {
    let payload = canonical_json(&serde_json::to_value(commitment).unwrap_or(Value::Null));
    let signature = key.sign(&payload);
    Proof {
        r#type: PROOF_TYPE.to_string(),
        verification_method: did_key(&key.verifying_key()),
        proof_value: multibase::encode(multibase::Base::Base64Url, signature.to_bytes()),
    }
}

pub fn verify_signature(commitment: &Commitment, proof: &Proof) -> Result<(), String> {
    if proof.r#type != PROOF_TYPE {
        return Err(format!("unsupported proof type `{}`", proof.r#type));
    }
    let key = parse_did_key(&proof.verification_method)?;
    let (_, bytes) = multibase::decode(&proof.proof_value).map_err(|e| e.to_string())?;
    let signature = Signature::from_slice(&bytes).map_err(|e| e.to_string())?;
    let payload = canonical_json(&serde_json::to_value(commitment).map_err(|e| e.to_string())?);
    key.verify(&payload, &signature)
        .map_err(|_| "signature does not match the commitment".to_string())
}
