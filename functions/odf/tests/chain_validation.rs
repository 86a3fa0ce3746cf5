//! Chain validation rules, one failing case each.

use chrono::{Duration, TimeZone, Utc};
use weir_odf::validation::{ChainValidationError, ChainValidator};
use weir_odf::*;

struct Chain {
    validator: ChainValidator,
    kind: DatasetKind,
}

fn at(seconds: i64) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(seconds)
}

impl Chain {
    fn new(kind: DatasetKind) -> Self {
        let mut chain = Self {
            validator: ChainValidator::new(),
            kind,
        };
        let (_, id) = DatasetId::new_generated();
        chain
            .push(MetadataEvent::Seed(Seed {
                dataset_id: id,
                dataset_kind: kind,
            }))
            .unwrap();
        chain
    }

    fn block(&self, event: MetadataEvent) -> MetadataBlock {
        MetadataBlock {
            system_time: at(self.validator.next_sequence_number() as i64),
            prev_block_hash: self.validator.head().map(|(h, _)| *h),
            sequence_number: self.validator.next_sequence_number(),
            event,
        }
    }

    fn push(&mut self, event: MetadataEvent) -> Result<(), ChainValidationError> {
        let block = self.block(event);
        let (_, hash) = encode_and_hash_block(&block);
        self.validator.append(&hash, &block)
    }

    fn with_schema(mut self) -> Self {
        self.push(MetadataEvent::SetDataSchema(SetDataSchema {
            raw_arrow_schema: None,
            schema: Some(DataSchema::new(vec![DataField::new(
                "v",
                DataType::Int64(DataTypeInt64 {}),
            )])),
        }))
        .unwrap();
        self
    }
}

fn add_data(
    prev_offset: Option<u64>,
    start: u64,
    end: u64,
    watermark: Option<i64>,
) -> MetadataEvent {
    MetadataEvent::AddData(AddData {
        prev_checkpoint: None,
        prev_offset,
        new_data: Some(DataSlice {
            logical_hash: Multihash::sha3_256(b"l"),
            physical_hash: Multihash::sha3_256(b"p"),
            offset_interval: OffsetInterval { start, end },
            size: 1,
        }),
        new_checkpoint: None,
        new_watermark: watermark.map(at),
        new_source_state: None,
        extra: None,
    })
}

#[test]
fn valid_chain_is_accepted() {
    let mut chain = Chain::new(DatasetKind::Root).with_schema();
    chain.push(add_data(None, 0, 9, Some(5))).unwrap();
    chain.push(add_data(Some(9), 10, 19, Some(5))).unwrap();
    assert_eq!(chain.validator.last_offset(), Some(19));
    assert_eq!(chain.kind, DatasetKind::Root);
}

#[test]
fn first_block_must_be_seed() {
    let mut validator = ChainValidator::new();
    let block = MetadataBlock {
        system_time: at(0),
        prev_block_hash: None,
        sequence_number: 0,
        event: MetadataEvent::SetInfo(SetInfo {
            description: None,
            keywords: None,
        }),
    };
    let error = validator
        .append(&Multihash::sha3_256(b"x"), &block)
        .unwrap_err();
    assert!(matches!(error, ChainValidationError::SeedNotFirst { .. }));
}

#[test]
fn second_seed_is_rejected() {
    let mut chain = Chain::new(DatasetKind::Root);
    let (_, id) = DatasetId::new_generated();
    let error = chain
        .push(MetadataEvent::Seed(Seed {
            dataset_id: id,
            dataset_kind: DatasetKind::Root,
        }))
        .unwrap_err();
    assert!(matches!(error, ChainValidationError::SeedNotAtStart { .. }));
}

#[test]
fn sequence_and_prev_hash_are_checked() {
    let chain = Chain::new(DatasetKind::Root);
    let mut block = chain.block(MetadataEvent::SetInfo(SetInfo {
        description: None,
        keywords: None,
    }));
    block.sequence_number = 5;
    let mut validator = chain.validator.clone();
    assert!(matches!(
        validator.append(&Multihash::sha3_256(b"a"), &block),
        Err(ChainValidationError::SequenceGap { .. })
    ));
    block.sequence_number = 1;
    block.prev_block_hash = Some(Multihash::sha3_256(b"elsewhere"));
    assert!(matches!(
        validator.append(&Multihash::sha3_256(b"a"), &block),
        Err(ChainValidationError::PrevHashMismatch { .. })
    ));
}

#[test]
fn data_before_schema_is_rejected() {
    let mut chain = Chain::new(DatasetKind::Root);
    assert!(matches!(
        chain.push(add_data(None, 0, 0, None)),
        Err(ChainValidationError::DataBeforeSchema { .. })
    ));
}

#[test]
fn offsets_must_be_contiguous() {
    let mut chain = Chain::new(DatasetKind::Root).with_schema();
    chain.push(add_data(None, 0, 9, None)).unwrap();
    assert!(matches!(
        chain.push(add_data(Some(9), 11, 20, None)),
        Err(ChainValidationError::OffsetsNotContiguous { .. })
    ));
    assert!(matches!(
        chain.push(add_data(Some(8), 10, 20, None)),
        Err(ChainValidationError::PrevOffsetMismatch { .. })
    ));
    assert!(matches!(
        chain.push(add_data(Some(9), 10, 5, None)),
        Err(ChainValidationError::InvalidOffsetInterval { .. })
    ));
}

#[test]
fn watermark_never_decreases() {
    let mut chain = Chain::new(DatasetKind::Root).with_schema();
    chain.push(add_data(None, 0, 0, Some(100))).unwrap();
    assert!(matches!(
        chain.push(add_data(Some(0), 1, 1, Some(50))),
        Err(ChainValidationError::WatermarkDecreased { .. })
    ));
}

#[test]
fn push_source_rules() {
    let source = |name: &str| {
        MetadataEvent::AddPushSource(AddPushSource {
            source_name: name.to_string(),
            read: ReadStep::NdJson(ReadStepNdJson {
                ddl_schema: None,
                date_format: None,
                encoding: None,
                timestamp_format: None,
                schema: None,
            }),
            preprocess: None,
            merge: MergeStrategy::Append(MergeStrategyAppend {}),
        })
    };
    let mut chain = Chain::new(DatasetKind::Root);
    chain.push(source("a")).unwrap();
    assert!(matches!(
        chain.push(source("a")),
        Err(ChainValidationError::DuplicatePushSource { .. })
    ));
    let disable = |name: &str| {
        MetadataEvent::DisablePushSource(DisablePushSource {
            source_name: name.to_string(),
        })
    };
    assert!(matches!(
        chain.push(disable("b")),
        Err(ChainValidationError::UnknownPushSource { .. })
    ));
    chain.push(disable("a")).unwrap();

    let mut derivative = Chain::new(DatasetKind::Derivative);
    assert!(matches!(
        derivative.push(source("a")),
        Err(ChainValidationError::WrongDatasetKind { .. })
    ));
}

#[test]
fn transform_inputs_must_be_dids() {
    let transform = |dataset_ref: &str| {
        MetadataEvent::SetTransform(SetTransform {
            inputs: vec![TransformInput {
                dataset_ref: dataset_ref.parse().unwrap(),
                alias: None,
            }],
            transform: Transform::Sql(TransformSql {
                engine: "datafusion".to_string(),
                version: None,
                query: Some("select 1".to_string()),
                queries: None,
                temporal_tables: None,
            }),
        })
    };
    let mut chain = Chain::new(DatasetKind::Derivative);
    assert!(matches!(
        chain.push(transform("some.name")),
        Err(ChainValidationError::TransformInputNotId { .. })
    ));
    let (_, id) = DatasetId::new_generated();
    chain.push(transform(&id.to_string())).unwrap();
    let mut root = Chain::new(DatasetKind::Root);
    assert!(matches!(
        root.push(transform(&id.to_string())),
        Err(ChainValidationError::WrongDatasetKind { .. })
    ));
}
