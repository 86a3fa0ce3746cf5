//! SHA3-256 from assembly (`keccak-asm`, the CRYPTOGAMS Keccak also used by OpenSSL): about
//! 1.5× the portable Rust implementation on x86_64, and every data slice is hashed twice (its
//! logical and its physical hash). Exposed through the `digest` 0.11 traits that `arrow-digest`
//! takes; the results are plain SHA3-256, checked against the `sha3` crate in the tests.

use digest::consts::U32;
use digest::{FixedOutput, HashMarker, Output, OutputSizeUser, Update};

#[derive(Default, Clone)]
pub struct Sha3_256(keccak_asm::Sha3_256);

impl Sha3_256 {
    #[cfg(test)]
    fn digest(data: &[u8]) -> [u8; 32] {
        let mut hasher = Self::default();
        Update::update(&mut hasher, data);
        hasher.finish()
    }

    pub fn update(&mut self, data: &[u8]) {
        keccak_asm::Digest::update(&mut self.0, data);
    }

    pub fn finish(self) -> [u8; 32] {
        keccak_asm::Digest::finalize(self.0).into()
    }
}

impl HashMarker for Sha3_256 {}

impl OutputSizeUser for Sha3_256 {
    type OutputSize = U32;
}

impl Update for Sha3_256 {
    fn update(&mut self, data: &[u8]) {
        Sha3_256::update(self, data);
    }
}

impl FixedOutput for Sha3_256 {
    fn finalize_into(self, out: &mut Output<Self>) {
        out.copy_from_slice(&self.finish());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow_digest::{RecordDigest, RecordDigestV0};

    use super::Sha3_256;

    #[test]
    fn hashes_equal_the_portable_implementation() {
        for size in [0, 1, 135, 136, 137, 1 << 20] {
            let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            let expected: [u8; 32] = sha3::Digest::finalize({
                let mut hasher = <sha3::Sha3_256 as sha3::Digest>::new();
                sha3::Digest::update(&mut hasher, &data);
                hasher
            })
            .into();
            assert_eq!(Sha3_256::digest(&data), expected, "{size} bytes");
        }
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(0..10_000)),
                Arc::new(StringArray::from_iter(
                    (0..10_000).map(|i| (i % 3 != 0).then(|| format!("n{i}"))),
                )),
            ],
        )
        .unwrap();
        let fast = {
            let mut digest = RecordDigestV0::<Sha3_256>::new(&schema);
            digest.update(&batch);
            digest.finalize()
        };
        let portable = {
            let mut digest = RecordDigestV0::<sha3_arrow_digest::Sha3_256>::new(&schema);
            digest.update(&batch);
            digest.finalize()
        };
        assert_eq!(fast.as_slice(), portable.as_slice());
    }
}
