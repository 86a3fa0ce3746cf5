//! Manifests in both forms parse into the same definition; bad input names the path.

use weir_odf::manifest::{ManifestError, parse_dataset_manifest};
use weir_odf::*;

const RESOURCE: &str = r#"
$schema: https://opendatafabric.org/schemas/dataset/v1alpha1/Dataset
headers:
  name: sensor.temp
spec:
  kind: Root
  metadata:
    - kind: SetDataSchema
      schema:
        fields:
          - name: offset
            type: UInt64
          - name: event_time
            type:
              kind: Timestamp
              unit: Millisecond
          - name: temp
            type: Float32
    - kind: AddPushSource
      sourceName: default
      read:
        kind: NdJson
        schema:
          fields:
            - name: temp
              type: Float32
      merge:
        kind: Append
"#;

const LEGACY: &str = r#"
kind: DatasetSnapshot
version: 1
content:
  name: alice/sensor.temp
  kind: root
  metadata:
    - kind: addPushSource
      sourceName: default
      read:
        kind: csv
        header: true
      merge:
        kind: ledger
        primaryKey: [id]
    - kind: SetLicense
      shortName: CC0
      name: Public Domain
      websiteUrl: https://creativecommons.org/publicdomain/zero/1.0/
"#;

#[test]
fn resource_form_parses() {
    let definition = parse_dataset_manifest(RESOURCE).unwrap();
    assert_eq!(definition.alias.unwrap().to_string(), "sensor.temp");
    assert_eq!(definition.kind, DatasetKind::Root);
    assert_eq!(definition.metadata.len(), 2);
    let MetadataEvent::SetDataSchema(schema) = &definition.metadata[0] else {
        panic!("first event is SetDataSchema");
    };
    let fields = &schema.schema.as_ref().unwrap().fields;
    assert_eq!(fields[0].r#type, DataType::UInt64(DataTypeUInt64 {}));
    assert!(matches!(
        fields[1].r#type,
        DataType::Timestamp(DataTypeTimestamp {
            unit: Some(TimeUnit::Millisecond),
            ..
        })
    ));
}

#[test]
fn legacy_snapshot_parses_with_camel_case_kinds() {
    let definition = parse_dataset_manifest(LEGACY).unwrap();
    let alias = definition.alias.unwrap();
    assert_eq!(alias.account_name.unwrap().as_str(), "alice");
    assert!(
        matches!(&definition.metadata[0], MetadataEvent::AddPushSource(source) if matches!(source.merge, MergeStrategy::Ledger(_)))
    );
}

#[test]
fn unknown_field_names_its_path() {
    let bad = LEGACY.replace("header: true", "header: true\n        colour: blue");
    let error = parse_dataset_manifest(&bad).unwrap_err();
    let ManifestError::Invalid { path, message } = error else {
        panic!("expected an invalid-field error, got {error}");
    };
    assert!(path.starts_with("content.metadata[0]"), "{path}");
    assert!(message.contains("colour"), "{message}");
}

#[test]
fn bad_enum_value_names_its_path() {
    let bad = LEGACY.replace("kind: root", "kind: Sideways");
    let error = parse_dataset_manifest(&bad).unwrap_err();
    let ManifestError::Invalid { path, message } = error else {
        panic!("expected an invalid-field error, got {error}");
    };
    assert_eq!(path, "content.kind");
    assert!(message.contains("Sideways"), "{message}");
}

#[test]
fn bad_dataset_name_is_a_clear_error() {
    let bad = LEGACY.replace("alice/sensor.temp", "alice/sensor_temp!");
    let error = parse_dataset_manifest(&bad).unwrap_err().to_string();
    assert!(error.contains("content.name"), "{error}");
    assert!(error.contains("not allowed"), "{error}");
}

#[test]
fn yaml_syntax_errors_are_reported() {
    assert!(matches!(
        parse_dataset_manifest("a: [1"),
        Err(ManifestError::Syntax(_))
    ));
}

#[test]
fn a_snapshot_without_content_names_the_missing_field() {
    let error = parse_dataset_manifest("kind: DatasetSnapshot\nversion: 1\n")
        .unwrap_err()
        .to_string();
    assert!(error.contains("`content`"), "{error}");
}

#[test]
fn manifests_over_the_limits_are_refused_before_parsing() {
    let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
    let error = parse_dataset_manifest(&deep).unwrap_err().to_string();
    assert!(error.contains("nest deeper than 32"), "{error}");
    let quoted = format!("name: '{}'\n# {}\n", "[".repeat(40), "{".repeat(40));
    assert!(
        !parse_dataset_manifest(&quoted)
            .unwrap_err()
            .to_string()
            .contains("nest deeper")
    );
    let large = format!("# {}\n", "x".repeat(weir_odf::manifest::MAX_MANIFEST_BYTES));
    let error = parse_dataset_manifest(&large).unwrap_err().to_string();
    assert!(error.contains("limit"), "{error}");
}
