//! The block decoder must return an error, never panic, whatever bytes it is given.

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use weir_odf::*;

fn sample_block_bytes() -> Vec<u8> {
    let block = MetadataBlock {
        system_time: Utc.with_ymd_and_hms(2024, 2, 29, 23, 59, 59).unwrap(),
        prev_block_hash: Some(Multihash::sha3_256(b"x")),
        sequence_number: 3,
        event: MetadataEvent::AddPushSource(AddPushSource {
            source_name: "default".to_string(),
            read: ReadStep::Csv(ReadStepCsv {
                ddl_schema: None,
                separator: Some(";".to_string()),
                encoding: None,
                quote: None,
                escape: None,
                header: Some(true),
                infer_schema: None,
                null_value: None,
                date_format: None,
                timestamp_format: None,
                schema: Some(DataSchema::new(vec![DataField::new(
                    "t",
                    DataType::Timestamp(DataTypeTimestamp {
                        unit: Some(TimeUnit::Millisecond),
                        timezone: Some("UTC".to_string()),
                    }),
                )])),
            }),
            preprocess: None,
            merge: MergeStrategy::Ledger(MergeStrategyLedger {
                primary_key: vec!["t".to_string()],
            }),
        }),
    };
    encode_block(&block)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_block(&bytes);
    }

    #[test]
    fn mutated_blocks_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<usize>()) {
        let mut bytes = sample_block_bytes();
        for (position, value) in flips {
            let index = position % bytes.len();
            bytes[index] = value;
        }
        let _ = decode_block(&bytes);
        let cut = cut % bytes.len();
        let _ = decode_block(&bytes[..cut]);
    }
}

#[test]
fn sample_block_decodes() {
    let bytes = sample_block_bytes();
    let block = decode_block(&bytes).unwrap();
    assert_eq!(block.sequence_number, 3);
    assert_eq!(encode_block(&block), bytes);
}

#[test]
fn truncated_and_foreign_buffers_are_errors() {
    assert!(decode_block(&[]).is_err());
    assert!(decode_block(&[4, 0, 0]).is_err());
    let bytes = sample_block_bytes();
    assert!(decode_block(&bytes[..bytes.len() / 2]).is_err());
}
