//! Engine protocol messages survive their FlatBuffers encoding, and malformed bytes are an
//! error, not a panic.

use chrono::{TimeZone, Utc};
use weir_odf::engine::*;
use weir_odf::{DatasetId, OffsetInterval, Transform, TransformSql};

fn request() -> TransformRequest {
    let id = |seed: u8| DatasetId::from_public_key([seed; 32]);
    let time = Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap();
    TransformRequest {
        dataset_id: id(1),
        dataset_alias: "alice/hourly".to_string(),
        system_time: time,
        vocab: DatasetVocabulary {
            offset_column: Some("off".to_string()),
            ..Default::default()
        },
        transform: Transform::Sql(TransformSql {
            engine: "datafusion".to_string(),
            version: Some("55".to_string()),
            query: Some("SELECT * FROM readings".to_string()),
            queries: None,
            temporal_tables: None,
        }),
        query_inputs: vec![TransformRequestInput {
            dataset_id: id(2),
            dataset_alias: "alice/readings".to_string(),
            query_alias: "readings".to_string(),
            vocab: DatasetVocabulary::default(),
            offset_interval: Some(OffsetInterval { start: 5, end: 9 }),
            data_paths: vec!["file:///a".to_string(), "file:///b".to_string()],
            schema_file: "file:///schema".to_string(),
            explicit_watermarks: vec![Watermark {
                system_time: time,
                event_time: time - chrono::Duration::hours(1),
            }],
        }],
        next_offset: 42,
        prev_checkpoint_path: None,
        new_checkpoint_path: "file:///checkpoint".to_string(),
        new_data_path: "file:///data".to_string(),
    }
}

#[test]
fn requests_and_responses_round_trip() {
    let request = request();
    let bytes = request.encode_message();
    assert_eq!(TransformRequest::decode_message(&bytes).unwrap(), request);

    for value in [
        TransformResponse::Progress(TransformResponseProgress {}),
        TransformResponse::Success(TransformResponseSuccess {
            new_offset_interval: Some(OffsetInterval { start: 42, end: 50 }),
            new_watermark: None,
        }),
        TransformResponse::Success(TransformResponseSuccess {
            new_offset_interval: None,
            new_watermark: Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()),
        }),
        TransformResponse::InvalidQuery(TransformResponseInvalidQuery {
            message: "no such column".to_string(),
        }),
        TransformResponse::InternalError(TransformResponseInternalError {
            message: "disk".to_string(),
            backtrace: None,
        }),
    ] {
        let root = TransformResponseRoot { value };
        assert_eq!(
            TransformResponseRoot::decode_message(&root.encode_message()).unwrap(),
            root
        );
    }
    let raw = RawQueryRequest {
        input_data_paths: vec!["s3://bucket/in".to_string()],
        transform: request.transform.clone(),
        output_data_path: "s3://bucket/out".to_string(),
    };
    assert_eq!(
        RawQueryRequest::decode_message(&raw.encode_message()).unwrap(),
        raw
    );
    let root = RawQueryResponseRoot {
        value: RawQueryResponse::Success(RawQueryResponseSuccess { num_records: 7 }),
    };
    assert_eq!(
        RawQueryResponseRoot::decode_message(&root.encode_message()).unwrap(),
        root
    );
}

#[test]
fn truncated_or_corrupted_bytes_are_errors() {
    let bytes = request().encode_message();
    for end in 0..bytes.len() {
        let _ = TransformRequest::decode_message(&bytes[..end]);
    }
    for index in 0..bytes.len() {
        let mut corrupted = bytes.clone();
        corrupted[index] ^= 0xff;
        let _ = TransformRequest::decode_message(&corrupted);
    }
    assert!(TransformRequest::decode_message(&[]).is_err());
    assert!(TransformResponseRoot::decode_message(b"\x07garbage").is_err());
}
