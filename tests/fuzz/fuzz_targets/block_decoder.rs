//! Any bytes given to the block decoder: an error or a block, never a panic, a hang or an
//! overflow; a decoded block encodes and decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(block) = weir_odf::decode_block(data) {
        let (bytes, _) = weir_odf::encode_and_hash_block(&block);
        let again = weir_odf::decode_block(&bytes).expect("an encoded block decodes");
        assert_eq!(again, block);
    }
});
