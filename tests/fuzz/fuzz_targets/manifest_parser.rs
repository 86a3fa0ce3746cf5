//! Any text given to the manifest parsers (DatasetSnapshot, RFC-018 Dataset) and the checks at
//! creation: an error naming the problem or a definition, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(definition) = weir_odf::manifest::parse_dataset_manifest(text) {
        let _ = weir_dataset::definition::check_definition(&definition);
    }
});
